"""A newcomer's and a team's first week (issue 32): install lines, FTR305 on every install, lint/report outputs,
`ftr init` choosing the template and format."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import tomllib
import yaml
from click.testing import CliRunner
from paths import ROOT

from ft_recipes import __version__
from ft_recipes.cli.main import main


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def ftr(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def check_install():
    spec = importlib.util.spec_from_file_location("check_install", ROOT / "scripts" / "check_install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Install and CI -----------------------------------------------------------------------------------------------


def test_documented_install_lines_are_the_ones_ci_runs():
    docs = check_install().documented()  # raises when docs/ci.md and docs/install.md disagree
    assert docs["git"] == f'pip install "ft-recipes @ git+https://github.com/ft-recipes/ft-recipes@v{__version__}"'
    assert f"pip install dist/ft_recipes-{__version__}-py3-none-any.whl" in docs["wheel"]
    assert "python -m build" in docs["wheel"]


def test_pre_commit_example_pins_the_release_tag_of_this_version():
    config = yaml.safe_load(check_install().documented()["pre-commit"])
    repo = config["repos"][0]
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert repo["rev"] == f"v{__version__}"
    assert {h["id"] for h in repo["hooks"]} <= {h["id"] for h in hooks}
    assert f"git tag -a v{__version__}" in (ROOT / "docs" / "install.md").read_text()


def test_no_doc_installs_from_the_package_index():
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    offenders = [p.name for p in pages if re.search(r"pip install ft-recipes\b(?![\[@])", p.read_text())]
    assert offenders == []


def test_ci_runs_the_install_check():
    assert "python3 scripts/check_install.py" in (ROOT / ".ci" / "run").read_text()


def test_jinja2_is_a_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.lower().startswith("jinja2") for dep in project["dependencies"])


# Outputs: nothing written unasked, nothing overwritten that ftr did not write, counts that add up ---------------

RECIPE = """\
ftr: 1
extends: [lora-sft]
model: {base: meta-llama/Meta-Llama-3-8B-Instruct, template: llama3, pad_token: eos}
method: {lora: {r: 256}}
data:
  train:
    - {path: data.jsonl, format: alpaca}
"""


def recipe(tmp_path, text=RECIPE):
    rows = [{"instruction": f"say {w}", "input": "", "output": w} for w in ("tea", "rivers", "stars", "moss")]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "recipe.yaml").write_text(text)
    return tmp_path / "recipe.yaml"


def test_lint_output_writes_only_the_report(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    path = recipe(repo)
    before = {p.name for p in repo.iterdir()}
    assert ftr("lint", path, "--format", "sarif", "-o", "ftr.sarif").exit_code == 0
    assert {p.name for p in repo.iterdir()} - before == {"ftr.sarif"}
    assert ftr("lint", path, "--format", "sarif", "-o", "ftr.sarif").exit_code == 0  # its own report: replaced


def test_lint_output_never_replaces_a_file_ftr_did_not_write(tmp_path):
    path = recipe(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    result = ftr("lint", path, "-o", "notes.txt")
    assert result.exit_code == 2 and "ftr did not write it" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    ftr("lint", path, "-o", "report.txt")
    (tmp_path / "report.txt").write_text("edited by hand\n")  # changed since ftr wrote it: the user's now
    assert ftr("lint", path, "-o", "report.txt").exit_code == 2
    assert ftr("lint", path, "-o", "report.txt", "--force").exit_code == 0


def _run_dir(tmp_path):
    run = tmp_path / "run" / "checkpoint-2"
    run.mkdir(parents=True)
    history = [{"step": 1, "loss": 2.0, "learning_rate": 1e-4}, {"step": 2, "loss": 1.5, "learning_rate": 1e-4},
               {"step": 2, "eval_loss": 1.4}]
    (run / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    return run.parent


def test_report_output_never_replaces_a_file_ftr_did_not_write(tmp_path, monkeypatch):
    import ft_recipes.insight.report

    monkeypatch.setattr(ft_recipes.insight.report, "plot", lambda curves, out: out.write_bytes(b"png"))
    run = _run_dir(tmp_path)
    (tmp_path / "holiday.png").write_bytes(b"my photo")
    result = ftr("report", run, "-o", "holiday.png")
    assert result.exit_code == 2 and "ftr did not write it" in result.output
    assert (tmp_path / "holiday.png").read_bytes() == b"my photo"
    assert ftr("report", run, "-o", "loss.png").exit_code == 0
    assert ftr("report", run, "-o", "loss.png").exit_code == 0  # its own plot: replaced
    assert ftr("report", run, "-o", "holiday.png", "--force").exit_code == 0


def test_summary_counts_a_finding_in_a_preset_apart_from_the_linted_files(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "team.yaml").write_text("ftr: 1\nextends: [lora-sft]\ntrain: {micro_batch_size: 1}\n")
    result = ftr("lint", recipe(tmp_path, RECIPE.replace("[lora-sft]", "[presets/team.yaml]")))
    assert "FTR107" in result.output and "presets/team.yaml" in result.output
    assert result.output.splitlines()[-1].endswith("in 1 of 1 file linted and 1 file it extends.")


# ftr init: template from the model family, format from the rows ------------------------------------------------

ROWS = {
    "sharegpt": {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    "preference": {"instruction": "explain tea", "input": "", "chosen": "good", "rejected": "bad"},
    "alpaca": {"instruction": "say tea", "input": "", "output": "tea"},
    "text": {"text": "Tea grows on hills."},
    "messages": {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
}


def init(tmp_path, *args):
    out = tmp_path / "recipes" / "r.yaml"
    result = ftr("init", *args, "-o", out, "--force")
    assert result.exit_code == 0, result.output
    return yaml.safe_load(out.read_text()), out


@pytest.mark.parametrize("model, template", [
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"), ("meta-llama/Meta-Llama-3-8B-Instruct", "llama3"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama3"), ("Qwen/Qwen2.5-7B-Instruct", "qwen"),
    ("Qwen/Qwen3-8B", "qwen3"), ("google/gemma-2-9b-it", "gemma2"), ("some-org/unknown-model", "chatml")])
def test_init_picks_the_model_family_template(tmp_path, model, template):
    data, _ = init(tmp_path, "--model", model)
    assert data["model"]["template"] == template


@pytest.mark.parametrize("fmt", sorted(ROWS))
def test_init_reads_the_format_from_the_rows(tmp_path, fmt):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text(json.dumps(ROWS[fmt]) + "\n")
    data, _ = init(tmp_path, "--data", "data/train.jsonl")
    assert data["data"]["train"][0]["format"] == fmt


def test_init_template_and_format_options_win(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps(ROWS["alpaca"]) + "\n")
    data, _ = init(tmp_path, "--model", "meta-llama/Meta-Llama-3-8B-Instruct", "--template", "tokenizer",
                   "--data", "train.jsonl", "--format", "sharegpt")
    assert (data["model"]["template"], data["data"]["train"][0]["format"]) == ("tokenizer", "sharegpt")
    result = ftr("init", "--template", "chatlm")
    assert result.exit_code == 2 and "did you mean chatml?" in result.output


def test_init_schema_line_is_relative_to_the_recipe(tmp_path):
    _, out = init(tmp_path)
    ref = out.read_text().splitlines()[0].split("$schema=", 1)[1]
    assert not ref.startswith(("/", "file:")) and (out.parent / ref).resolve().is_file()


def test_a_starter_recipe_for_llama3_is_lint_clean(tmp_path):
    (tmp_path / "recipes" / "data").mkdir(parents=True)
    rows = [dict(ROWS["sharegpt"], conversations=[{"from": "human", "value": f"hi {i}"},
                                                  {"from": "gpt", "value": f"hello {i}"}]) for i in range(4)]
    (tmp_path / "recipes" / "data" / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, out = init(tmp_path, "--model", "meta-llama/Meta-Llama-3-8B-Instruct", "--data", "data/chat.jsonl")
    result = ftr("lint", out, "--select", "FTR3,FTR004")
    assert result.exit_code == 0 and "All checks passed" in result.output, result.output


def test_chatml_on_a_hub_llama3_instruct_model_is_reported(tmp_path):
    path = recipe(tmp_path, RECIPE.replace("template: llama3", "template: chatml"))
    result = ftr("lint", path, "--select", "FTR305")
    assert "FTR305" in result.output and "(llama3)" in result.output and "set model.template: llama3" in result.output


# Team presets ---------------------------------------------------------------------------------------------------


def test_a_team_lora_sft_does_not_break_the_builtin_qlora_sft(tmp_path, monkeypatch):
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "lora-sft.yaml").write_text("ftr: 1\ntrain: {lr: 5.0e-5}\n")
    monkeypatch.setenv("FTR_PRESET_PATH", str(tmp_path / "team"))
    path = recipe(tmp_path, RECIPE.replace("[lora-sft]", "[qlora-sft]").replace("r: 256", "r: 16"))
    result = ftr("lint", path, "--select", "FTR0,FTR1")
    assert result.exit_code == 0 and "more than one library" not in result.output, result.output


def test_a_preset_path_that_is_not_a_directory_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FTR_PRESET_PATH", str(tmp_path / "nonexistent"))
    result = ftr("presets", "list")
    assert result.exit_code == 2 and "nonexistent" in result.output and "not a directory" in result.output


def test_the_documented_team_library_layout_survives_another_library(tmp_path, monkeypatch):
    team, other = tmp_path / "team-presets", tmp_path / "other"
    for folder in (team, other):
        folder.mkdir()
        (folder / "team-base.yaml").write_text("ftr: 1\ntrain: {lr: 1.0e-4}\n")
    (team / "team-chat.yaml").write_text("ftr: 1\nextends: [team-presets:team-base, builtin:lora-sft]\n")
    monkeypatch.setenv("FTR_PRESET_PATH", f"{team}:{other}")
    path = recipe(tmp_path, RECIPE.replace("[lora-sft]", "[team-presets:team-chat]").replace("r: 256", "r: 16"))
    result = ftr("lint", path, "--select", "FTR0")
    assert result.exit_code == 0, result.output
