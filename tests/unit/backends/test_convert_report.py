"""The fidelity report of `ftr convert` / `ftr import` (issue 26, item 6) and native lint in the native file's
own words (item 7)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.cli.main import main
from ft_recipes.lint import Options, lint_file

NATIVE = Path(__file__).resolve().parents[2] / "data" / "native"
STATUS = re.compile(r"^(carried|approximated|lost|refused|kept)  \S")
SUMMARY = re.compile(r"^carried \d+, approximated \d+, lost \d+, refused \d+, kept \d+$")


def ftr(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _report_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("wrote ")]


# --- convert ----------------------------------------------------------------------------------------------

def test_every_report_line_is_classified_and_summed(tmp_path):
    result = ftr("convert", NATIVE / "lf_lora.yaml", "--to", "axolotl", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    *lines, summary = _report_lines(result.stderr)
    assert lines and all(STATUS.match(line) for line in lines), lines
    assert SUMMARY.match(summary)
    counts = {s: sum(line.startswith(s + "  ") for line in lines) for s in ("carried", "approximated", "lost")}
    assert summary.startswith(f"carried {counts['carried']}, approximated {counts['approximated']}, "
                              f"lost {counts['lost']}, refused 0")
    assert "carried  learning_rate: 0.0001 -> learning_rate" in lines
    assert "carried  lora_rank: 8 -> lora_r" in lines
    assert "lost  ddp_timeout: 180000000 (llamafactory-only; not carried)" in lines
    assert any(line.startswith("approximated  val_size: 0.1 -> val_set_size (") for line in lines)


def test_the_recipe_is_written_beside_the_output_and_compiles_to_it(tmp_path):
    out = tmp_path / "out"
    assert ftr("convert", NATIVE / "lf_lora.yaml", "--to", "axolotl", "-o", out).exit_code == 0
    text = (out / "recipe.yaml").read_text()
    assert "change the recipe, then `ftr compile" in text.splitlines()[1]
    recipe = yaml.safe_load(text)
    assert recipe["ftr"] == 1 and "llamafactory" not in recipe.get("backends", {})
    converted = (out / "axolotl.yaml").read_text()
    result = ftr("compile", out / "recipe.yaml", "-b", "axolotl", "-o", out)  # the command its header gives
    assert result.exit_code == 0, result.output
    assert _body(converted) == _body((out / "axolotl.yaml").read_text())


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_json_goes_to_stdout_with_an_output_directory(tmp_path):
    result = ftr("convert", NATIVE / "ax_lora.yaml", "--to", "llamafactory", "-o", tmp_path / "out",
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["from"], report["to"]) == ("axolotl", "llamafactory")
    assert report["summary"] == {s: sum(line["status"] == s for line in report["lines"])
                                 for s in ("carried", "approximated", "lost", "refused", "kept")}
    pad = next(line for line in report["lines"] if line["key"] == "special_tokens.pad_token")
    assert pad["status"] == "approximated" and pad["recipe_key"] == "model.pad_token"
    lr = next(line for line in report["lines"] if line["key"] == "learning_rate")
    assert lr == {"status": "carried", "key": "learning_rate", "value": 0.0002, "detail": "",
                  "recipe_key": "train.lr", "target_key": "learning_rate"}
    assert str(tmp_path / "out" / "recipe.yaml") in report["written"]


def test_json_goes_to_stderr_when_stdout_holds_the_config():
    result = ftr("convert", NATIVE / "ax_lora.yaml", "--to", "llamafactory", "--format", "json")
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["model_name_or_path"]
    assert json.loads(result.stderr)["written"] == []


def test_strict_fails_on_an_approximation_and_writes_nothing(tmp_path):
    result = ftr("convert", NATIVE / "ax_lora.yaml", "--to", "llamafactory", "-o", tmp_path / "out", "--strict")
    assert result.exit_code == 1
    assert "approximated  sequence_len: 4096 -> cutoff_len" in result.stderr
    assert result.stderr.rstrip().endswith("nothing written")
    assert not (tmp_path / "out").exists()


def test_a_refusal_is_a_finding_and_a_refused_line(tmp_path):
    shutil.copytree(NATIVE / "data", tmp_path / "data")
    native = tmp_path / "dft.yaml"
    native.write_text((NATIVE / "lf_lora.yaml").read_text() + "use_dft_loss: true\n")
    line = len(native.read_text().splitlines())
    result = ftr("convert", native, "--to", "axolotl")
    assert result.exit_code == 1
    first, summary = result.stderr.strip().splitlines()
    assert first.startswith(f"{native}:{line}:1: FTR005 [error] use_dft_loss: True changes what LLaMA-Factory")
    assert SUMMARY.match(summary) and ", refused 1," in summary
    result = ftr("convert", native, "--to", "axolotl", "--format", "json", "-o", tmp_path / "out")
    refused = [entry for entry in json.loads(result.stdout)["lines"] if entry["status"] == "refused"]
    assert result.exit_code == 1 and [entry["key"] for entry in refused] == ["use_dft_loss"]
    assert not (tmp_path / "out").exists()


# --- import -----------------------------------------------------------------------------------------------

def test_import_reports_and_keeps(tmp_path):
    result = ftr("import", NATIVE / "lf_lora.yaml", "--strict")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "carried  learning_rate: 0.0001 -> train.lr" in lines
    assert "kept  ddp_timeout: 180000000 (no recipe key; under backends.llamafactory)" in lines
    assert SUMMARY.match(lines[-1]) and lines[-1].endswith("kept 3")
    assert yaml.safe_load(result.stdout)["backends"]["llamafactory"]["ddp_timeout"] == 180000000


def test_import_validates_what_it_writes(tmp_path):
    native = tmp_path / "bad.yaml"
    native.write_text((NATIVE / "lf_lora.yaml").read_text().replace("num_train_epochs: 3.0", "num_train_epochs: -2")
                      .replace("dataset_dir: data", f"dataset_dir: {NATIVE / 'data'}"))
    line = native.read_text().splitlines().index("num_train_epochs: -2") + 1
    result = ftr("import", native, "-o", tmp_path / "recipe.yaml")
    assert result.exit_code == 1
    assert f"bad.yaml:{line}:1: FTR002 [error] num_train_epochs: -2 is less than or equal to the minimum of 0" \
        in result.stderr
    assert not (tmp_path / "recipe.yaml").exists()


def test_import_json_on_stdout_with_an_output_file(tmp_path):
    result = ftr("import", NATIVE / "lf_lora.yaml", "-o", tmp_path / "recipe.yaml", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["to"] is None and report["summary"]["kept"] == 3
    assert report["written"] == [str(tmp_path / "recipe.yaml")] and (tmp_path / "recipe.yaml").is_file()


# --- native lint speaks native ----------------------------------------------------------------------------

AX_BASE = {"base_model": "NousResearch/Meta-Llama-3-8B", "adapter": "lora", "lora_r": 16, "lora_alpha": 32,
           "lora_target_linear": True, "sequence_len": 1024, "micro_batch_size": 2, "gradient_accumulation_steps": 8,
           "learning_rate": 2.0e-4, "output_dir": "out", "val_set_size": 0.1, "num_epochs": 2}


def _ax(tmp_path: Path, **keys) -> Path:
    (tmp_path / "data.jsonl").write_text(json.dumps({"instruction": "hi", "input": "", "output": "hello"}) + "\n")
    cfg = {**AX_BASE, "datasets": [{"path": str(tmp_path / "data.jsonl"), "type": "alpaca"}], **keys}
    path = tmp_path / "ax.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _no_hf_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


def _found(path: Path, code: str) -> list:
    return [f for f in lint_file(path, Options(), "axolotl") if f.code == code]


@pytest.mark.parametrize("kind", ["alpaca", "completion", "input_output", "alpaca_chat.load_qa", "messages"])
def test_no_ftr302_on_axolotl_prompt_types_with_a_fixed_prompt(tmp_path, kind):
    assert _found(_ax(tmp_path, datasets=[{"path": str(tmp_path / "data.jsonl"), "type": kind}]), "FTR302") == []


def test_ftr302_on_axolotl_chat_template_data_names_the_native_key(tmp_path):
    path = _ax(tmp_path, datasets=[{"path": str(tmp_path / "data.jsonl"), "type": "chat_template"}])
    (finding,) = _found(path, "FTR302")
    assert (finding.line, finding.col, finding.severity, finding.key, finding.recipe_key) == \
        (1, 1, "warning", "base_model", "model.base")
    assert finding.message == ("no chat template for messages data: chat_template is unset, so the tokenizer's own "
                               "template is used if it has one")
    assert finding.hint == "set chat_template, e.g. chatml, llama3 or qwen, to be explicit"
    named = _ax(tmp_path, chat_template="tokenizer_default",
                datasets=[{"path": str(tmp_path / "data.jsonl"), "type": "chat_template"}])
    assert _found(named, "FTR302") == []  # the file names its template


def test_epochs_and_max_steps_in_a_native_file_is_a_warning(tmp_path):
    (finding,) = _found(_ax(tmp_path, max_steps=100), "FTR007")
    line = (tmp_path / "ax.yaml").read_text().splitlines().index("max_steps: 100") + 1
    assert (finding.line, finding.col, finding.severity, finding.key) == (line, 1, "warning", "max_steps")
    assert finding.message == "both num_epochs (2) and max_steps (100) are set: the backend stops after 100 steps " \
                              "(max_steps wins)"
    assert finding.hint == "remove num_epochs, or max_steps to train by epochs"


def test_hints_name_native_keys(tmp_path):
    path = _ax(tmp_path, warmup_ratio=0.5, gradient_accumulation_steps=1, micro_batch_size=1)
    findings = {f.code: f for f in lint_file(path, Options(), "axolotl")}
    assert findings["FTR106"].key == "warmup_ratio" and findings["FTR106"].recipe_key == "train.warmup_ratio"
    assert findings["FTR106"].hint == "use warmup_ratio 0.03-0.1"
    assert findings["FTR301"].hint == "set special_tokens.pad_token to the tokenizer's pad token, or its eos token"
    assert findings["FTR107"].key == "gradient_accumulation_steps"


def test_json_and_sarif_carry_the_recipe_key(tmp_path):
    path = _ax(tmp_path, max_steps=100)
    rows = json.loads(ftr("lint", path, "--dialect", "axolotl", "--format", "json").stdout)
    row = next(r for r in rows if r["code"] == "FTR007")
    assert (row["key"], row["recipe_key"]) == ("max_steps", "train.max_steps")
    sarif = json.loads(ftr("lint", path, "--dialect", "axolotl", "--format", "sarif").stdout)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "FTR007")
    assert result["properties"] == {"key": "max_steps", "recipe_key": "train.max_steps"}


def test_a_dataset_finding_names_the_native_list_item(tmp_path):
    path = _ax(tmp_path, datasets=[{"path": str(tmp_path / "missing.jsonl"), "type": "alpaca"}])
    (finding,) = [f for f in lint_file(path, Options(), "axolotl") if f.code == "FTR004"]
    assert (finding.key, finding.recipe_key) == ("datasets[0].path", "data.train[0].path")
