"""`ftr eval` without lm-eval: what it evaluates (adapter, merged, full), the held-out rows, the task files and
their hashes, the forgetting finding (FTR701), and the whole command against a stand-in for the lm-eval
environment (eval.json, the manifest's eval entry, the side-by-side table)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.cli.main import main
from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.loaded import load_recipe
from ft_recipes.run.evaluation import SPEC, compare, heldout, helper, runner, target


def rows(n: int) -> list[dict]:
    return [{"instruction": f"Say {i}.", "input": "" if i % 2 else "twice", "output": f"{i} {i}"} for i in range(n)]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def recipe_file(tmp: Path, data: str, extra: str = "") -> Path:
    path = tmp / "recipe.yaml"
    path.write_text(f"ftr: 1\nextends: [lora-sft]\nmodel: {{base: {tmp}/base, template: chatml}}\n"
                    f"data:\n  train: [{{path: {tmp}/train.jsonl, format: alpaca}}]\n{data}"
                    f"train: {{seed: 7}}\noutput: {{dir: {tmp}/run}}\n{extra}", encoding="utf-8")
    return path


def run_dir(tmp: Path, data: str = "  val: {split: 0.2}\n", files: tuple[str, ...] = ("adapter_config.json",)) -> Path:
    write_jsonl(tmp / "train.jsonl", rows(10))
    recipe = recipe_file(tmp, data)
    run = tmp / "run"
    run.mkdir()
    (run / "recipe.resolved.yaml").write_text(recipe.read_text(), encoding="utf-8")
    (run / "manifest.json").write_text(json.dumps({"backend": "trl", "run_dir": str(run), "exit_status": 0}))
    for name in files:
        (run / name).write_text(json.dumps({"base_model_name_or_path": "elsewhere"}), encoding="utf-8")
    return run


# --- what is evaluated -----------------------------------------------------------------------------------------

def test_an_adapter_run_is_its_recipe_base_plus_the_adapter(tmp_path):
    run = run_dir(tmp_path)
    found = target.resolve(run)
    assert found.kind == "adapter"
    assert found.tuned.pretrained == f"{tmp_path}/base" and found.tuned.peft == str(run)
    assert found.base.pretrained == f"{tmp_path}/base" and found.base.peft is None


def test_a_full_fine_tune_is_the_run_folder_itself(tmp_path):
    run = run_dir(tmp_path, files=("config.json",))
    found = target.resolve(run)
    assert (found.kind, found.tuned.pretrained, found.tuned.peft) == ("full", str(run), None)
    assert found.base.pretrained == f"{tmp_path}/base"


def test_merged_needs_a_merged_folder(tmp_path):
    run = run_dir(tmp_path)
    with pytest.raises(FtrError, match="ftr merge"):
        target.resolve(run, merged=True)
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    found = target.resolve(run, merged=True)
    assert (found.kind, found.tuned.pretrained, found.tuned.peft) == ("merged", str(run / "merged"), None)


def test_a_merged_folder_given_itself_is_evaluated_as_its_runs_merge(tmp_path):
    """RUN_DIR/merged (`ftr merge`'s default) and a pipeline's merge step both find the run they merged: its
    base model, recipe (held-out rows) and the template it trained with."""
    run = run_dir(tmp_path)
    for folder in (run / "merged", tmp_path / "merge-step"):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    (tmp_path / "pipeline.json").write_text(json.dumps({"stages": [
        {"name": "run", "kind": "train", "run_dir": str(run)},
        {"name": "merge-step", "kind": "merge", "run_dir": str(tmp_path / "merge-step"),
         "inputs": [{"stage": "run", "kind": "adapter", "path": str(run)}]}]}))
    for folder in (run / "merged", tmp_path / "merge-step"):
        found = target.resolve(folder)
        assert (found.kind, found.tuned.pretrained, found.run_dir) == ("merged", str(folder), run)
        assert found.base.pretrained == f"{tmp_path}/base" and found.recipe is not None


def test_a_folder_named_merged_outside_a_run_is_a_model_folder(tmp_path):
    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    found = target.resolve(folder)
    assert (found.kind, found.run_dir, found.base) == ("full", None, None)


def test_a_run_without_a_model_is_refused(tmp_path):
    with pytest.raises(FtrError, match="holds no trained model"):
        target.resolve(run_dir(tmp_path, files=()))


def test_an_adapter_folder_takes_its_base_from_its_config_unless_given(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base"}))
    assert target.resolve(folder).base.pretrained == "org/base"
    assert target.resolve(folder, base_model="other").tuned.pretrained == "other"


# --- held-out rows -----------------------------------------------------------------------------------------------

def test_a_validation_split_sends_the_training_rows_and_the_seeded_split(tmp_path):
    run = run_dir(tmp_path)
    held = heldout.held_out(load_recipe(run / "recipe.resolved.yaml").recipe)
    assert held.split == {"size": 0.2, "seed": 7} and len(held.rows) == 10
    assert held.rows[0] == {"prompt": [{"role": "user", "content": "Say 0.\ntwice"}], "answer": "0 0"}
    assert held.rows[1]["prompt"] == [{"role": "user", "content": "Say 1."}]


def test_validation_datasets_are_read_as_they_are_with_the_system_prompt(tmp_path):
    write_jsonl(tmp_path / "val.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                       {"role": "assistant", "content": "yo"}]},
                                         {"messages": [{"role": "user", "content": "no answer"}]}])
    run = run_dir(tmp_path,
        data=f"  val: {{split: null, datasets: [{{path: {tmp_path}/val.jsonl, format: messages}}]}}\n"
                                 f"  system_prompt: Be brief.\n")
    held = heldout.held_out(load_recipe(run / "recipe.resolved.yaml").recipe)
    assert held.split is None and held.source == "data.val datasets"
    assert held.rows == [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                          "answer": "yo"}]


# --- tasks -------------------------------------------------------------------------------------------------------

def task_folder(tmp: Path) -> Path:
    folder = tmp / "tasks"
    folder.mkdir()
    write_jsonl(folder / "mc.jsonl", [{"q": "a", "choices": ["x", "y"], "label": 0}])
    (folder / "mc.yaml").write_text("task: local_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                    "    test: mc.jsonl\nprocess_docs: !function utils.process\n")
    return folder


def test_task_values_are_files_folders_or_registry_names(tmp_path):
    folder = task_folder(tmp_path)
    entries = runner.task_entries((f"{folder}/mc.yaml,hellaswag", str(folder)))
    assert entries == [{"name": "local_mc", "yaml": str(folder / "mc.yaml")}, {"name": "hellaswag"},
                       {"name": "local_mc", "yaml": str(folder / "mc.yaml")}]
    with pytest.raises(FtrError, match="no such task YAML"):
        runner.task_entries((str(tmp_path / "missing.yaml"),))


def test_a_task_hash_follows_its_data_file(tmp_path):
    folder = task_folder(tmp_path)
    entry = {"name": "local_mc", "yaml": str(folder / "mc.yaml")}
    before = runner.task_hash(entry)
    write_jsonl(folder / "mc.jsonl", [{"q": "b", "choices": ["x", "y"], "label": 1}])
    assert runner.task_hash(entry) != before
    assert runner.task_hash({"name": "hellaswag"}) == "registry"


def test_the_helper_makes_relative_data_files_absolute_against_the_yaml(tmp_path):
    assert helper.absolute_files({"test": "mc.jsonl", "val": ["/abs/v.jsonl"]}, tmp_path) == \
        {"test": str(tmp_path / "mc.jsonl"), "val": ["/abs/v.jsonl"]}


def test_the_helper_keeps_metrics_and_drops_stderr_and_counts():
    values = {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1, "exact_match,strict": 0.25, "sample_len": 4}
    assert helper.metrics_of(values) == {"acc": 0.5, "exact_match,strict": 0.25}


# --- forgetting (FTR701) -----------------------------------------------------------------------------------------

def record(base_acc: float, tuned_acc: float, base_ppl=None) -> dict:
    better = {"general": {"acc": True, "word_perplexity": False}}
    return {"results": {
        "base": {"tasks": {"general": {"acc": base_acc, "word_perplexity": 10.0}}, "higher_is_better": better,
                 "held_out": {"perplexity": base_ppl}},
        "tuned": {"tasks": {"general": {"acc": tuned_acc, "word_perplexity": 30.0}}, "higher_is_better": better,
                  "held_out": {"perplexity": 3.0}}}}


def test_forgetting_fires_past_the_margin_only():
    (finding,) = runner.forgetting(record(0.60, 0.55), "eval.json")
    assert finding.code == "FTR701" and finding.severity == "warning" and finding.file == "eval.json"
    assert "general acc" in finding.message and "5.0 points below" in finding.message and "60.0" in finding.message
    assert runner.forgetting(record(0.60, 0.585), "eval.json") == []  # 1.5 points: within the default 2
    assert runner.forgetting(record(0.60, 0.70), "eval.json") == []


def test_forgetting_margin_comes_from_the_rule_pack(tmp_path):
    pack = tmp_path / "team.yaml"
    pack.write_text(yaml.safe_dump({"version": 1, "rules": {"FTR701": {"margin": 1.0}}}))
    assert [f.code for f in runner.forgetting(record(0.60, 0.585), "eval.json", (str(pack),))] == ["FTR701"]


def test_forgetting_needs_the_base_model():
    one = record(0.6, 0.1)
    del one["results"]["base"]
    assert runner.forgetting(one, "eval.json") == []


def test_the_table_puts_base_and_tuned_side_by_side():
    text = compare.table(record(0.5, 0.75, base_ppl=9.0)["results"])
    lines = {line.split("  ")[0].strip(): line.split() for line in text.splitlines()[1:]}
    assert lines["general acc"][-3:] == ["0.5", "0.75", "+0.25"]
    assert lines["held-out perplexity (lower is better)"][-3:] == ["9", "3", "-6"]


# --- the command, with a stand-in for the lm-eval environment ------------------------------------------------------

FAKE = """#!{python}
import json, sys
job = json.load(open(sys.argv[2]))
json.dump(job, open({seen!r}, "w"))
print("ftr eval: base: loading", file=sys.stderr)
models = {{}}
for i, m in enumerate(job["models"]):
    acc = 0.8 if m["label"] == "base" else 0.5
    models[m["label"]] = {{"tasks": {{t["name"]: {{"acc": acc}} for t in job["tasks"]}},
                          "higher_is_better": {{t["name"]: {{"acc": True}} for t in job["tasks"]}},
                          "held_out": {{"rows": 2, "perplexity": 9.0 - i, "bleu": 1.0 + i,
                                        "samples": [{{"prompt": [{{"role": "user", "content": "q"}}],
                                                     "reference": "r", "generated": "g"}}]}}}}
json.dump({{"lm_eval_version": "0.4.13", "models": models}}, open(sys.argv[3], "w"))
"""


@pytest.fixture
def fake_lm_eval(tmp_path, monkeypatch) -> Path:
    seen = tmp_path / "job-seen.json"
    python = tmp_path / "fake-python"
    python.write_text(FAKE.format(python=sys.executable, seen=str(seen)))
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv(SPEC.env_var, str(python))
    return seen


def test_eval_with_base_writes_eval_json_the_manifest_and_the_finding(tmp_path, fake_lm_eval):
    run = run_dir(tmp_path)
    folder = task_folder(tmp_path)
    result = CliRunner().invoke(main, ["eval", str(run), "--base", "--tasks", str(folder / "mc.yaml"),
                                       "--limit", "5", "--num-fewshot", "1", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    job = json.loads(fake_lm_eval.read_text())
    assert [m["label"] for m in job["models"]] == ["base", "tuned"]
    assert job["models"][1]["peft"] == str(run) and job["models"][0]["peft"] is None
    assert (job["limit"], job["num_fewshot"], job["batch_size"], job["seed"]) == (5, 1, 2, 7)
    assert job["held_out"]["split"] == {"size": 0.2, "seed": 7} and job["held_out"]["generate"] is True
    saved = json.loads((run / "eval.json").read_text())
    assert saved["results"]["base"]["tasks"]["local_mc"]["acc"] == 0.8
    assert saved["settings"]["task_hashes"]["local_mc"] == runner.task_hash(job["tasks"][0])
    assert saved["settings"]["lm_eval_version"] == "0.4.13" and [f["code"] for f in saved["findings"]] == ["FTR701"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["eval"]["results"]["tuned"]["tasks"]["local_mc"]["acc"] == 0.5
    assert "samples" not in manifest["eval"]["results"]["tuned"]["held_out"]
    assert "local_mc acc" in result.output and "FTR701" in result.output and "ftr eval: base: loading" in result.output


def test_eval_json_format_and_no_base(tmp_path, fake_lm_eval):
    run = run_dir(tmp_path)
    result = CliRunner().invoke(main, ["eval", str(run), "--format", "json", "--no-held-out", "--tasks", "hellaswag"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output[result.output.index("{"):result.output.rindex("}") + 1])
    assert list(printed["results"]) == ["tuned"] and printed["findings"] == []
    assert json.loads(fake_lm_eval.read_text())["held_out"] is None


def test_eval_without_the_environment_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv(SPEC.env_var, str(tmp_path / "missing-python"))
    result = CliRunner().invoke(main, ["eval", str(run_dir(tmp_path)), "--tasks", "hellaswag"])
    assert result.exit_code == 1 and "ftr eval --install" in result.output


def test_eval_with_nothing_to_evaluate_is_a_usage_error(tmp_path, fake_lm_eval):
    result = CliRunner().invoke(main, ["eval", str(run_dir(tmp_path)), "--base", "--no-held-out"])
    assert result.exit_code == 2 and "nothing to evaluate" in result.output


def test_the_lock_pins_every_package_and_the_environment_has_its_own_variable():
    lines = [line for line in SPEC.lock.read_text().splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in lines)
    names = {line.split("==")[0].lower() for line in lines}
    assert {"lm-eval", "torch", "transformers", "peft", "sacrebleu", "rouge-score"} <= names
    assert SPEC.env_var == "FTR_LM_EVAL_PYTHON"
    assert os.path.basename(SPEC.lock) == "lock.txt"


def test_the_recipe_eval_section_says_what_ftr_eval_runs(tmp_path, fake_lm_eval):
    """eval.tasks / limit / num_fewshot in the recipe (a task YAML relative to the recipe) are what `ftr eval RUN`
    runs; the command line still wins."""
    run = run_dir(tmp_path)
    folder = task_folder(tmp_path)
    recipe = (run / "recipe.resolved.yaml").read_text()
    relative = os.path.relpath(folder / "mc.yaml", run)  # a task file relative to the recipe that names it
    (run / "recipe.resolved.yaml").write_text(recipe + f"eval: {{tasks: ['{relative}'], limit: 3, num_fewshot: 2}}\n",
                                              encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(run), "--no-held-out"])
    assert result.exit_code == 0, result.output
    job = json.loads(fake_lm_eval.read_text())
    assert [t["name"] for t in job["tasks"]] == ["local_mc"] and (job["limit"], job["num_fewshot"]) == (3, 2)
    result = CliRunner().invoke(main, ["eval", str(run), "--no-held-out", "--limit", "4"])
    assert result.exit_code == 0 and json.loads(fake_lm_eval.read_text())["limit"] == 4


def test_eval_settings_configure_ftr_only(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows(4))
    recipe = recipe_file(tmp_path, "", "eval: {tasks: [hellaswag], limit: 10}\n")
    for backend in ("llamafactory", "axolotl", "trl"):
        result = CliRunner().invoke(main, ["compile", str(recipe), "-b", backend, "-o", str(tmp_path / backend)])
        assert result.exit_code == 0, result.output
        assert "hellaswag" not in "".join(p.read_text() for p in (tmp_path / backend).rglob("*") if p.is_file())
