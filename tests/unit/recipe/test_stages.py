"""Pipelines (``stages:``) without a backend: expansion, errors, lint, compile, and skipping finished stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ft_recipes.core.findings import FtrError
from ft_recipes.lint import Options, lint_file
from ft_recipes.recipe.stages import load_pipeline
from ft_recipes.run import pipelines as pipeline_run
from ft_recipes.run.launchers.options import LaunchOptions

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "recipes" / "examples" / "sft-dpo-merge.yaml"
ALPACA = "".join(f'{{"instruction": "say {w}", "input": "", "output": "{w}"}}\n' for w in ("tea", "sun", "rain", "sky"))
PAIRS = "".join(f'{{"instruction": "explain {w}", "chosen": "good", "rejected": "bad"}}\n' for w in ("tea", "sun",
    "rain", "sky"))

TOP = """ftr: 1
model: {base: Qwen/Qwen2.5-0.5B-Instruct, template: chatml, pad_token: eos}
data: {max_length: 1024}
train: {precision: fp32}
output: {dir: runs}
"""
SFT = "  - name: sft\n    extends: [lora-sft]\n    data: {train: [{path: alpaca.jsonl, format: alpaca}]}\n"
DPO = "  - name: dpo\n    extends: [dpo-lora]\n    data: {train: [{path: pairs.jsonl, format: preference}]}\n"


@pytest.fixture(autouse=True)
def _here(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "alpaca.jsonl").write_text(ALPACA)
    (tmp_path / "pairs.jsonl").write_text(PAIRS)


def write(tmp_path: Path, stages: str, top: str = TOP) -> Path:
    path = tmp_path / "pipe.yaml"
    path.write_text(top + "stages:\n" + stages)
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_stages_merge_over_the_top_level_and_chain_adapters(tmp_path):
    path = write(tmp_path, SFT + DPO + "  - name: merged\n    stage: merge\n")
    pipeline = load_pipeline(path)
    sft, dpo, merged = pipeline.stages
    assert [s.source for s in pipeline.stages] == ["base", "sft", "dpo"]
    assert sft.run_dir == tmp_path / "runs" / "sft" and pipeline.dir == tmp_path / "runs"
    assert (sft.recipe.stage, dpo.recipe.stage) == ("sft", "dpo")
    assert (sft.recipe.train.lr, dpo.recipe.train.lr) == (1e-4, 5e-6)  # each stage's preset
    assert sft.recipe.train.precision == dpo.recipe.train.precision == "fp32"  # written once, beats the presets
    assert dpo.recipe.model.template == "chatml" and dpo.recipe.data.max_length == 1024
    assert sft.recipe.model.adapter is None and dpo.recipe.model.adapter == sft.run_dir
    assert dpo.recipe.output.dir == tmp_path / "runs" / "dpo" and dpo.recipe.parent is sft.recipe
    assert merged.is_merge_step and merged.result == tmp_path / "runs" / "merged"
    file, line, _ = dpo.recipe.where(("data", "train", 0, "format"))
    assert (file, line) == (str(path), line_of(path, "pairs.jsonl"))


def test_from_base_a_named_stage_and_a_merged_stage(tmp_path):
    stages = (SFT.replace("extends: [lora-sft]", "extends: [lora-sft]\n    merge: true") + DPO +
              "  - name: again\n    from: base\n    data: {train: [{path: alpaca.jsonl, format: alpaca}]}\n"
              "  - name: dpo2\n    from: sft\n    stage: dpo\n    train: {lr: 5.0e-6}\n"
              "    data: {train: [{path: pairs.jsonl, format: preference}]}\n")
    pipeline = load_pipeline(write(tmp_path, stages))
    sft, dpo, again, dpo2 = pipeline.stages
    merged = str(tmp_path / "runs" / "sft" / "merged")
    assert sft.result_kind == "merged" and dpo.recipe.model.base == merged and dpo.recipe.model.adapter is None
    assert again.recipe.model.base == "Qwen/Qwen2.5-0.5B-Instruct" and again.recipe.parent is None
    assert dpo2.source == "sft" and dpo2.recipe.model.base == merged


def test_stage_backend_and_hashes_chain(tmp_path):
    path = write(tmp_path, SFT.replace("  - name: sft\n", "  - name: sft\n    backend: axolotl\n") + DPO)
    pipeline = load_pipeline(path)
    assert [s.backend_for("llamafactory") for s in pipeline.stages] == ["axolotl", "llamafactory"]
    before = pipeline_run.stage_hashes(pipeline, "llamafactory")
    (tmp_path / "alpaca.jsonl").write_text(ALPACA + ALPACA)  # the SFT data changed: both stages change
    after = pipeline_run.stage_hashes(load_pipeline(path), "llamafactory")
    assert before["sft"] != after["sft"] and before["dpo"] != after["dpo"]
    path.write_text(path.read_text().replace("format: preference}]}", "format: preference}]}\n    train: {lr: 1.0e-5}"))
    changed = pipeline_run.stage_hashes(load_pipeline(path), "llamafactory")
    assert changed["sft"] == after["sft"] and changed["dpo"] != after["dpo"]
    from ft_recipes import backends

    with backends.targeting({"axolotl": "0.21.0"}):  # another Axolotl version: its stage and the next run again
        newer = pipeline_run.stage_hashes(load_pipeline(path), "llamafactory")
    assert newer["sft"] != changed["sft"] and newer["dpo"] != changed["dpo"]


@pytest.mark.parametrize("stages,text,message", [
    ("  - name: sft\n    trian: {lr: 1}\n", "trian", "unknown key 'trian' in stage sft (did you mean train?)"),
    ("  - name: sft\n  - {name: sft}\n", "{name: sft}", "used twice"),
    ("  - name: sft\n    from: dpo\n  - name: dpo\n", "from: dpo", "not an earlier stage"),
    ("  - name: sft\n    from: nowhere\n", "from: nowhere", "is no stage"),
    ("  - name: sft\n    backend: nemo\n", "backend: nemo", "unknown backend 'nemo'"),
    ("  - name: sft\n    output: {dir: elsewhere}\n", "elsewhere", "output.dir/<name>"),
    ("  - name: m\n    stage: merge\n", "stage: merge", "needs from: an earlier stage"),
    ("  - {name: sft, method: {type: full}, data: {train: [{path: alpaca.jsonl, format: alpaca}]}}\n"
     "  - {name: m, stage: merge}\n",
     "name: m", "not an adapter"),
    ("  - name: sft\n    train: {lr: fast}\n", "lr: fast", "stage sft: train.lr"),
])
def test_invalid_stages_point_at_the_stage(tmp_path, stages, text, message):
    path = write(tmp_path, stages, TOP.replace("max_length: 1024", "max_length: 1024, train: [{path: alpaca.jsonl}]"))
    with pytest.raises(FtrError) as info:
        load_pipeline(path)
    found = [f for f in info.value.findings if message in f.message + f" ({f.hint})"]
    assert found, [f.text() for f in info.value.findings]
    assert found[0].file == str(path) and found[0].line == line_of(path, text)


def test_adapter_stage_with_full_method_is_refused(tmp_path):
    path = write(tmp_path, SFT + DPO.replace("extends: [dpo-lora]", "extends: [dpo-lora]\n    method: {type: full}"))
    with pytest.raises(FtrError) as info:
        load_pipeline(path)
    assert "starts from sft's adapter but trains full" in info.value.findings[0].message


def test_lint_names_the_broken_later_stage(tmp_path):
    path = write(tmp_path, SFT + DPO.replace("pairs.jsonl, format: preference", "alpaca.jsonl, format: alpaca"))
    errors = [f for f in lint_file(path, Options()) if f.severity == "error"]
    assert [f.code for f in errors] == ["FTR205"], [f.text() for f in errors]
    assert errors[0].message.startswith("stage dpo: ") and errors[0].line == line_of(path, "name: dpo") + 2
    proc = subprocess.run([sys.executable, "-m", "ft_recipes", "lint", str(path)], capture_output=True, text=True,
                          cwd=tmp_path, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and "FTR205 [error] stage dpo:" in proc.stdout, proc.stdout + proc.stderr


def test_cross_stage_rules_fire_only_across_stages(tmp_path):
    drift = DPO.replace("extends: [dpo-lora]", "extends: [dpo-lora]\n    model: {template: qwen, pad_token: '<pad>'}\n"
                        "    method: {lora: {r: 64, alpha: 128}}\n    train: {lr: 1.0e-4}\n"
                        "    preference: {beta: 2.0}")
    codes = sorted(f.code for f in lint_file(write(tmp_path, SFT + drift), Options()))
    assert codes == ["FTR601", "FTR602", "FTR603", "FTR603", "FTR605", "FTR605"], codes
    assert not [f for f in lint_file(write(tmp_path, SFT + DPO), Options())]


def test_qlora_adapter_keeps_its_quantization(tmp_path):
    top = TOP.replace("train: {precision: fp32}", "method: {type: qlora}\ntrain: {precision: bf16}")
    lora = DPO.replace("extends: [dpo-lora]", "extends: [dpo-lora]\n    method: {type: lora, quant: null}")
    assert "FTR604" in [f.code for f in lint_file(write(tmp_path, SFT + lora, top), Options())]
    assert "FTR604" not in [f.code for f in lint_file(write(tmp_path, SFT + DPO, top), Options())]


def test_compile_writes_a_folder_per_stage_and_pipeline_json(tmp_path):
    path = write(tmp_path, SFT + DPO + "  - name: merged\n    stage: merge\n")
    out = tmp_path / "out"
    _, written, _ = pipeline_run.compile_pipeline(str(path), "llamafactory", out)
    assert out / "sft" / "llamafactory.yaml" in written and out / "pipeline.json" in written
    dpo_cfg = yaml.safe_load((out / "dpo" / "llamafactory.yaml").read_text())
    assert dpo_cfg["adapter_name_or_path"] == str(tmp_path / "runs" / "sft") and dpo_cfg["stage"] == "dpo"
    doc = json.loads((out / "pipeline.json").read_text())
    assert doc["order"] == ["sft", "dpo", "merged"]
    sft, dpo, merged = doc["stages"]
    assert dpo["inputs"] == [{"stage": "sft", "kind": "adapter", "path": str(tmp_path / "runs" / "sft"),
                              "hash": sft["hash"]}]
    assert merged["kind"] == "merge" and merged["inputs"][0]["stage"] == "dpo"
    assert set(dpo["data"]) == {str(tmp_path / "pairs.jsonl")}
    ax_cfg = pipeline_run.compile_pipeline(str(path), "axolotl", tmp_path / "ax")[0]
    assert yaml.safe_load((tmp_path / "ax" / "dpo" / "axolotl.yaml").read_text())["lora_model_dir"] == \
        str(ax_cfg.stages[0].run_dir)


def test_compile_never_overwrites_a_foreign_file(tmp_path):
    path = write(tmp_path, SFT + DPO)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "pipeline.json").write_text("mine\n")
    with pytest.raises(FtrError, match="--force"):
        pipeline_run.compile_pipeline(str(path), "llamafactory", tmp_path / "out")
    assert (tmp_path / "out" / "pipeline.json").read_text() == "mine\n"
    pipeline_run.compile_pipeline(str(path), "llamafactory", tmp_path / "out", force=True)


def test_compile_cli_needs_an_output_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ft_recipes", "compile", str(write(tmp_path, SFT + DPO)), "-b",
                           "llamafactory"], capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "pass -o DIR" in proc.stderr


class FakeBackend:
    """Stands in for the backends: a stage 'trains' by writing its manifest and adapter (or fails)."""

    trained = 0  # every adapter written differs from the ones before

    def __init__(self, fail: str | None = None):
        self.ran: list[str] = []
        self.fail = fail

    def __call__(self, stage, pipeline, default_backend, opts, resume, argv) -> int:
        self.ran.append(stage.name)
        stage.run_dir.mkdir(parents=True, exist_ok=True)
        code = 1 if stage.name == self.fail else 0
        if stage.is_merge_step:
            (stage.run_dir / "config.json").write_text("{}")
            return code
        FakeBackend.trained += 1
        (stage.run_dir / "adapter_model.safetensors").write_bytes(f"{stage.name}-{FakeBackend.trained}".encode())
        (stage.run_dir / "manifest.json").write_text(json.dumps({"exit_status": code, "interrupted": False}))
        return code


def run(path: Path, monkeypatch, fake: FakeBackend, **kw) -> int:
    monkeypatch.setattr(pipeline_run, "_run_stage", fake)
    return pipeline_run.run_pipeline(load_pipeline(path), "llamafactory", LaunchOptions(gpus=0), False, False, [],
                                     **kw)


def test_run_skips_finished_stages_and_reruns_what_changed(tmp_path, monkeypatch, capsys):
    path = write(tmp_path, SFT + DPO + "  - name: merged\n    stage: merge\n")
    first = FakeBackend()
    assert run(path, monkeypatch, first) == 0 and first.ran == ["sft", "dpo", "merged"]
    again = FakeBackend()
    assert run(path, monkeypatch, again) == 0 and again.ran == []
    assert capsys.readouterr().err.count("finished and unchanged") == 3
    (tmp_path / "pairs.jsonl").write_text(PAIRS + PAIRS)
    changed = FakeBackend()
    assert run(path, monkeypatch, changed) == 0 and changed.ran == ["dpo", "merged"]
    only = FakeBackend()
    assert run(path, monkeypatch, only, only="dpo") == 0 and only.ran == ["dpo"]
    later = FakeBackend()  # dpo re-trained by --only: the merge of its old result is out of date
    assert run(path, monkeypatch, later) == 0 and later.ran == ["merged"]
    tail = FakeBackend()
    assert run(path, monkeypatch, tail, from_stage="dpo") == 0 and tail.ran == ["dpo", "merged"]


def test_a_failed_stage_stops_the_run_and_keeps_the_finished_ones(tmp_path, monkeypatch, capsys):
    path = write(tmp_path, SFT + DPO + "  - name: merged\n    stage: merge\n")
    failing = FakeBackend(fail="dpo")
    assert run(path, monkeypatch, failing) == 1 and failing.ran == ["sft", "dpo"]
    assert "stage dpo failed (exit status 1); kept the finished stages (sft)" in capsys.readouterr().err
    state = {s["name"]: s["status"] for s in json.loads((tmp_path / "runs" / "pipeline.json").read_text())["stages"]
             if "status" in s}
    assert state == {"sft": "finished", "dpo": "failed"}
    resumed = FakeBackend()
    assert run(path, monkeypatch, resumed) == 0 and resumed.ran == ["dpo", "merged"]


def test_only_a_stage_whose_input_is_missing_is_refused(tmp_path, monkeypatch):
    path = write(tmp_path, SFT + DPO)
    with pytest.raises(FtrError, match="starts from sft, which has not finished"):
        run(path, monkeypatch, FakeBackend(), only="dpo")


def test_example_pipeline_loads_lints_clean_and_compiles(tmp_path):
    pipeline = load_pipeline(EXAMPLE)
    assert pipeline.names == ["sft", "dpo", "merged"]
    assert not [f for f in lint_file(EXAMPLE, Options()) if f.severity == "error"]
    pipeline_run.compile_pipeline(str(EXAMPLE), "axolotl", tmp_path / "out")


def test_recipe_without_stages_rejects_stage_options(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(TOP.replace("max_length: 1024", "max_length: 1024, train: [{path: alpaca.jsonl}]"))
    proc = subprocess.run([sys.executable, "-m", "ft_recipes", "run", str(path), "-b", "llamafactory", "--only",
                           "sft", "--dry-run"], capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "has no stages" in proc.stderr


def _env() -> dict:
    import os

    return dict(os.environ)


def test_axolotl_dpo_on_an_adapter_gets_the_plugin_that_loads_it(tmp_path):
    """Axolotl hands DPO a fresh LoRA config and ignores lora_model_dir: ftr writes a plugin that loads it."""
    path = write(tmp_path, SFT + DPO)
    pipeline_run.compile_pipeline(str(path), "axolotl", tmp_path / "out")
    sft = yaml.safe_load((tmp_path / "out" / "sft" / "axolotl.yaml").read_text())
    dpo = yaml.safe_load((tmp_path / "out" / "dpo" / "axolotl.yaml").read_text())
    assert "plugins" not in sft and not (tmp_path / "out" / "sft" / "ftr_continue_adapter.py").exists()
    assert dpo["plugins"] == ["ftr_continue_adapter.ContinueAdapter"]
    plugin = (tmp_path / "out" / "dpo" / "ftr_continue_adapter.py").read_text()
    assert "class ContinueAdapter(BasePlugin)" in plugin and "set_peft_model_state_dict" in plugin
    orpo = write(tmp_path, SFT + DPO.replace("extends: [dpo-lora]", "extends: [orpo-lora]"))
    pipeline_run.compile_pipeline(str(orpo), "axolotl", tmp_path / "orpo")
    assert "plugins" not in yaml.safe_load((tmp_path / "orpo" / "dpo" / "axolotl.yaml").read_text())


def test_report_reads_a_pipeline_folder_as_its_stages(tmp_path, monkeypatch):
    path = write(tmp_path, SFT + DPO + "  - name: merged\n    stage: merge\n")
    assert run(path, monkeypatch, FakeBackend()) == 0
    assert pipeline_run.stage_dirs(tmp_path / "runs") == [tmp_path / "runs" / "sft", tmp_path / "runs" / "dpo"]
    assert pipeline_run.stage_dirs(tmp_path / "runs" / "sft") is None


def test_an_invalid_stage_does_not_blame_the_stages_after_it(tmp_path):
    path = write(tmp_path, SFT.replace("format: alpaca", "format: alpacca") + DPO + "  - name: m\n    stage: merge\n")
    with pytest.raises(FtrError) as info:
        load_pipeline(path)
    assert [f.message.split(":")[0] for f in info.value.findings] == ["stage sft"], info.value.render()


def test_a_merge_step_uses_the_backend_of_the_stage_it_merges(tmp_path):
    path = write(tmp_path, SFT + DPO.replace("  - name: dpo\n", "  - name: dpo\n    backend: axolotl\n")
                 + "  - name: merged\n    stage: merge\n")
    stages = pipeline_run.describe_stages(load_pipeline(path), "llamafactory")
    assert [s["backend"] for s in stages] == ["llamafactory", "axolotl", "axolotl"]
