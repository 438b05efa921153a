"""A pipeline's `stage: eval` step without a backend or lm-eval: what it evaluates and with which settings, the
errors that point at the stage's line, running and skipping it (a stand-in for the lm-eval environment), the
scores in eval.json, pipeline.json and the evaluated run's manifest, `ftr report` on the pipeline, and a QLoRA
adapter's quantized base (asked for, and said so when a model loaded unquantized)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ft_recipes.backends.emitted import to_yaml
from ft_recipes.cli.main import main
from ft_recipes.core.findings import FtrError
from ft_recipes.lint import Options, lint_file
from ft_recipes.recipe.normalise import to_data
from ft_recipes.recipe.stages import load_pipeline
from ft_recipes.run import pipelines as pipeline_run
from ft_recipes.run.evaluation import SPEC
from ft_recipes.run.evaluation import target as targets
from ft_recipes.run.launchers.options import LaunchOptions

ALPACA = "".join(f'{{"instruction": "say {w}", "input": "", "output": "{w}"}}\n'
                 for w in ("tea", "sun", "rain", "sky", "sea", "hill", "tree", "moon", "star", "snow"))
PAIRS = "".join(f'{{"instruction": "explain {w}", "chosen": "good", "rejected": "bad"}}\n' for w in ("tea", "sun",
                "rain", "sky"))
TOP = """ftr: 1
model: {base: Qwen/Qwen2.5-0.5B-Instruct, template: chatml, pad_token: eos}
data: {max_length: 1024}
train: {precision: fp32}
eval: {tasks: [tasks/mc.yaml], limit: 8}
output: {dir: runs}
"""
SFT = ("  - name: sft\n    extends: [lora-sft]\n"
       "    data: {train: [{path: alpaca.jsonl, format: alpaca}], val: {split: 0.2}}\n")
DPO = "  - name: dpo\n    extends: [dpo-lora]\n    data: {train: [{path: pairs.jsonl, format: preference}]}\n"
EVAL = "  - name: check\n    stage: eval\n"
MC = """task: local_mc
dataset_path: json
dataset_kwargs: {data_files: {test: mc.jsonl}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: "{{choices}}"
doc_to_target: label
"""


@pytest.fixture(autouse=True)
def _here(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "alpaca.jsonl").write_text(ALPACA)
    (tmp_path / "pairs.jsonl").write_text(PAIRS)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "mc.yaml").write_text(MC)
    (tmp_path / "tasks" / "mc.jsonl").write_text('{"question": "q", "choices": ["a", "b"], "label": 0}\n')


def write(tmp_path: Path, stages: str, top: str = TOP) -> Path:
    path = tmp_path / "pipe.yaml"
    path.write_text(top + "stages:\n" + stages)
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def refused(path: Path) -> list:
    with pytest.raises(FtrError) as info:
        load_pipeline(path)
    return info.value.findings


# --- what an eval step evaluates ------------------------------------------------------------------------------

def test_an_eval_step_evaluates_the_stage_before_it_with_the_recipes_eval_settings(tmp_path):
    path = write(tmp_path, SFT + EVAL + "    eval: {limit: 3, num_fewshot: 1}\n" + DPO)
    sft, check, dpo = load_pipeline(path).stages
    assert check.is_eval_step and check.kind == "eval" and check.loaded is None and check.recipe is None
    assert (check.source, check.evaluates) == ("sft", "sft")
    ev = check.evaluation
    assert ev.tasks == (str(tmp_path / "tasks" / "mc.yaml"),)  # relative to the recipe
    assert (ev.limit, ev.num_fewshot) == (3, 1)  # the step's own keys over the recipe's eval:
    assert sft.recipe.eval.limit == 8  # ... and only for the step
    assert check.result == tmp_path / "runs" / "check" / "eval.json" and check.result_kind == "eval"
    # the stage after an eval step starts from what the step evaluated
    assert dpo.source == "sft" and dpo.recipe.model.adapter == sft.run_dir and dpo.recipe.parent is sft.recipe


def test_an_eval_step_after_a_merge_step_evaluates_the_merged_model_with_the_merged_stages_rows(tmp_path):
    path = write(tmp_path, SFT + "  - name: merged\n    stage: merge\n" + EVAL)
    sft, merged, check = load_pipeline(path).stages
    assert (check.source, check.evaluates) == ("merged", "sft")
    assert pipeline_run.describe_stages(load_pipeline(path), "trl")[2]["inputs"][0]["path"] == str(merged.result)


def test_the_held_out_rows_alone_are_enough_to_evaluate(tmp_path):
    top = TOP.replace("eval: {tasks: [tasks/mc.yaml], limit: 8}\n", "")
    check = load_pipeline(write(tmp_path, SFT + EVAL, top)).stages[1]
    assert check.evaluation.tasks == () and check.is_eval_step


# --- errors, at the stage's line ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stages,text,message", [
    (EVAL + SFT, "stage: eval", "stage check: stage: eval has nothing to evaluate: it is the first stage"),
    (SFT + "  - name: check\n    from: base\n    stage: eval\n", "from: base",
     "stage check: stage: eval has nothing to evaluate: it starts from base"),
    (SFT + EVAL + "    data: {train: [{path: alpaca.jsonl}]}\n", "data: {train: [{path: alpaca.jsonl}]}",
     "stage check: an eval step takes name, from, eval and description, not data"),
    (SFT + EVAL + "    backend: trl\n", "backend: trl", "not backend"),
    (SFT + EVAL + "    eval: {limit: -1}\n", "limit: -1", "stage check:"),
    (SFT + EVAL + "    eval: {tasks: hellaswag}\n", "tasks: hellaswag", "stage check:"),
    (SFT + EVAL + "    eval: {taks: [hellaswag]}\n", "taks", "unknown key"),
])
def test_an_invalid_eval_step_is_an_error_at_its_line(tmp_path, stages, text, message):
    path = write(tmp_path, stages)
    findings = refused(path)
    assert any(f.code in ("FTR001", "FTR002") and f.severity == "error" and message in f.message
               and f.file == str(path) and f.line == line_of(path, text) for f in findings), findings


def test_nothing_to_evaluate_no_tasks_and_no_validation_rows(tmp_path):
    top = TOP.replace("eval: {tasks: [tasks/mc.yaml], limit: 8}\n", "")
    path = write(tmp_path, SFT.replace("val: {split: 0.2}", "val: null") + EVAL.replace("eval\n", "eval  # here\n"),
                 top.replace("train: {precision: fp32}", "train: {precision: fp32}\neval: {every: \"no\"}"))
    [finding] = refused(path)
    assert "nothing to evaluate: no eval.tasks, and sft holds no validation rows" in finding.message
    assert finding.line == line_of(path, "stage: eval  # here")


def test_a_reward_model_is_not_evaluated(tmp_path):
    path = write(tmp_path, SFT.replace("extends: [lora-sft]", "extends: [lora-sft]\n    stage: rm") + EVAL)
    assert any("trains a reward model" in f.message for f in refused(path))


def test_ftr_lint_and_the_cli_report_the_eval_step_with_file_and_line(tmp_path):
    path = write(tmp_path, EVAL + SFT)
    findings = [f for f in lint_file(path, Options()) if f.severity == "error"]
    assert [(f.line, f.code) for f in findings] == [(line_of(path, "stage: eval"), "FTR002")]
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 1 and f"{path}:{line_of(path, 'stage: eval')}" in result.output


def test_schema_knows_the_eval_stage(tmp_path):
    from ft_recipes.recipe.validate import recipe_schema

    assert "eval" in recipe_schema()["$defs"]["stage"]["properties"]["stage"]["enum"]


def test_compile_writes_no_config_for_an_eval_step(tmp_path):
    path = write(tmp_path, SFT + EVAL)
    pipeline_run.compile_pipeline(str(path), "trl", tmp_path / "out")
    assert not (tmp_path / "out" / "check").exists()
    doc = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    check = doc["stages"][1]
    assert (check["kind"], check["stage"], check["evaluates"], check["from"]) == ("eval", "eval", "sft", "sft")
    assert check["eval_settings"] == {"tasks": [str(tmp_path / "tasks" / "mc.yaml")], "limit": 8, "num_fewshot": None}


# --- running it, with stand-ins for the backend and the lm-eval environment ---------------------------------------

FAKE = """#!{python}
import json, sys
job = json.load(open(sys.argv[2]))
with open({seen!r}, "a") as fh:
    fh.write(json.dumps(job) + "\\n")
print("ftr eval: tuned: lm-eval on local_mc", file=sys.stderr)
models = {{}}
for i, m in enumerate(job["models"]):
    quant = m.get("quantization")
    models[m["label"]] = {{"tasks": {{t["name"]: {{"acc": 0.5 + i / 4}} for t in job["tasks"]}},
                          "higher_is_better": {{t["name"]: {{"acc": True}} for t in job["tasks"]}},
                          "held_out": {{"rows": 2, "perplexity": 9.0 - i}},
                          "quantization": quant and {{**quant, "applied": False,
                                                      "note": "bitsandbytes is not installed in the lm-eval "
                                                              "environment: evaluated on the unquantized base model"}}}}
json.dump({{"lm_eval_version": "0.4.13", "models": models}}, open(sys.argv[3], "w"))
"""


@pytest.fixture
def fake_lm_eval(tmp_path, monkeypatch) -> Path:
    seen = tmp_path / "jobs.jsonl"
    python = tmp_path / "fake-python"
    python.write_text(FAKE.format(python=sys.executable, seen=str(seen)))
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv(SPEC.env_var, str(python))
    return seen


class FakeBackend:
    """Training stages 'train' (a manifest, an adapter, the resolved recipe as ftr run writes it); eval steps run
    for real (against the stand-in lm-eval environment)."""

    def __init__(self):
        self.ran: list[str] = []

    def __call__(self, stage, pipeline, default_backend, opts, resume, argv) -> int:
        self.ran.append(stage.name)
        if stage.is_eval_step:
            return pipeline_run.run_eval_step(stage, pipeline)
        stage.run_dir.mkdir(parents=True, exist_ok=True)
        if stage.is_merge_step:
            (stage.run_dir / "config.json").write_text("{}")
            return 0
        (stage.run_dir / "adapter_model.safetensors").write_bytes(stage.name.encode())
        (stage.run_dir / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x"}))
        (stage.run_dir / "recipe.resolved.yaml").write_text(to_yaml(to_data(stage.recipe)))
        (stage.run_dir / "manifest.json").write_text(json.dumps({"exit_status": 0, "interrupted": False}))
        return 0


def run(path: Path, monkeypatch, fake: FakeBackend, **kw) -> int:
    monkeypatch.setattr(pipeline_run, "_run_stage", fake)
    return pipeline_run.run_pipeline(load_pipeline(path), "trl", LaunchOptions(gpus=0), False, False, [], **kw)


def test_an_eval_step_runs_records_its_scores_and_is_not_run_again(tmp_path, monkeypatch, capsys, fake_lm_eval):
    path = write(tmp_path, SFT + EVAL + DPO)
    first = FakeBackend()
    assert run(path, monkeypatch, first) == 0 and first.ran == ["sft", "check", "dpo"]
    out = capsys.readouterr()
    assert "ftr: stage check (2/3): eval" in out.err and "ftr eval: tuned: lm-eval on local_mc" in out.err
    assert "local_mc acc" in out.out  # the table
    [job] = [json.loads(line) for line in fake_lm_eval.read_text().splitlines()]
    assert [m["label"] for m in job["models"]] == ["base", "tuned"]  # always against the base
    assert job["models"][1]["peft"] == str(tmp_path / "runs" / "sft") and job["limit"] == 8
    assert job["models"][0]["pretrained"] == "Qwen/Qwen2.5-0.5B-Instruct" and job["held_out"]["split"]
    record = json.loads((tmp_path / "runs" / "check" / "eval.json").read_text())
    assert record["results"]["tuned"]["tasks"]["local_mc"]["acc"] == 0.75
    assert record["settings"]["quantization"] is None and record["notes"] == []
    assert (tmp_path / "runs" / "check" / "logs" / "eval.log").is_file()
    state = {s["name"]: s for s in json.loads((tmp_path / "runs" / "pipeline.json").read_text())["stages"]}
    assert state["check"]["status"] == "finished" and state["check"]["kind"] == "eval"
    assert state["check"]["eval"]["results"]["base"]["tasks"]["local_mc"]["acc"] == 0.5
    assert state["check"]["eval"]["settings"]["limit"] == 8
    manifest = json.loads((tmp_path / "runs" / "sft" / "manifest.json").read_text())
    assert manifest["eval"]["file"] == str(tmp_path / "runs" / "check" / "eval.json")

    again = FakeBackend()
    assert run(path, monkeypatch, again) == 0 and again.ran == []
    assert "stage check: finished and unchanged" in capsys.readouterr().err

    path.write_text(path.read_text().replace("limit: 8", "limit: 4"))  # other settings: evaluated again, and
    changed = FakeBackend()  # nothing trained again (no backend reads them)
    assert run(path, monkeypatch, changed) == 0 and changed.ran == ["check"]
    (tmp_path / "tasks" / "mc.jsonl").write_text('{"question": "r", "choices": ["a", "b"], "label": 1}\n')
    task_changed = FakeBackend()  # the task's data changed: evaluated again, nothing trained again
    assert run(path, monkeypatch, task_changed) == 0 and task_changed.ran == ["check"]


def test_a_retrained_input_is_evaluated_again(tmp_path, monkeypatch, fake_lm_eval):
    path = write(tmp_path, SFT + EVAL)
    assert run(path, monkeypatch, FakeBackend()) == 0
    (tmp_path / "runs" / "sft" / "adapter_model.safetensors").write_bytes(b"other weights")
    again = FakeBackend()
    assert run(path, monkeypatch, again) == 0 and again.ran == ["check"]


def test_a_failed_evaluation_stops_the_pipeline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(SPEC.env_var, str(tmp_path / "missing-python"))
    path = write(tmp_path, SFT + EVAL + DPO)
    fake = FakeBackend()
    assert run(path, monkeypatch, fake) == 1 and fake.ran == ["sft", "check"]
    err = capsys.readouterr().err
    assert "ftr eval --install" in err and "stage check failed" in err


def test_report_on_the_pipeline_shows_the_eval_steps_scores(tmp_path, monkeypatch, fake_lm_eval):
    path = write(tmp_path, SFT + EVAL)
    assert run(path, monkeypatch, FakeBackend()) == 0
    runs = tmp_path / "runs"
    (runs / "sft" / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": 1, "loss": 2.0}]}))
    assert pipeline_run.stage_dirs(runs) == [runs / "sft", runs / "check"]
    result = CliRunner().invoke(main, ["report", str(runs)])
    assert result.exit_code == 0, result.output
    block = result.output[result.output.index(str(runs / "check")):]
    assert "ftr eval (base against tuned):" in block and "local_mc acc" in block and "steps" not in block
    data = json.loads(CliRunner().invoke(main, ["report", str(runs), "--format", "json"]).output)
    assert data[1]["scores"][0] == {"score": "local_mc acc", "base": 0.5, "tuned": 0.75}


def test_dry_run_names_what_the_eval_step_evaluates(tmp_path, capsys):
    pipeline = load_pipeline(write(tmp_path, SFT + EVAL))
    assert pipeline_run.run_pipeline(pipeline, "trl", LaunchOptions(gpus=0), False, True, []) == 0
    assert f"eval:     {tmp_path / 'runs' / 'sft'} against its base" in capsys.readouterr().out


# --- QLoRA: the adapter on its quantized base -------------------------------------------------------------------

def test_a_qlora_adapter_is_asked_for_on_its_quantized_base_and_a_plain_load_is_said(tmp_path, monkeypatch, capsys,
                                                                                    fake_lm_eval):
    path = write(tmp_path, SFT.replace("lora-sft", "qlora-sft") + EVAL)
    assert run(path, monkeypatch, FakeBackend()) == 0
    [job] = [json.loads(line) for line in fake_lm_eval.read_text().splitlines()]
    asked = {"bits": 4, "type": "nf4", "double_quant": True}
    assert [m["quantization"] for m in job["models"]] == [asked, asked]  # the base it is compared with too
    err = capsys.readouterr().err
    assert "note: tuned: the QLoRA base was not loaded 4-bit: bitsandbytes is not installed" in err
    settings = json.loads((tmp_path / "runs" / "check" / "eval.json").read_text())["settings"]
    assert settings["quantization"]["applied"] == {"base": False, "tuned": False}
    assert "evaluated on the unquantized base model" in settings["quantization"]["notes"][0]


def test_a_merged_qlora_model_is_not_quantized(tmp_path):
    path = write(tmp_path, SFT.replace("lora-sft", "qlora-sft"))
    sft = load_pipeline(path).stages[0]
    assert targets.quantization(sft.recipe) == {"bits": 4, "type": "nf4", "double_quant": True}
    run_dir = tmp_path / "runs" / "sft"
    (run_dir / "merged").mkdir(parents=True)
    (run_dir / "merged" / "config.json").write_text("{}")
    (run_dir / "adapter_config.json").write_text("{}")
    (run_dir / "recipe.resolved.yaml").write_text(to_yaml(to_data(sft.recipe)))
    (run_dir / "manifest.json").write_text(json.dumps({"exit_status": 0}))
    assert targets.resolve(run_dir).tuned.quantization == targets.resolve(run_dir).base.quantization is not None
    merged = targets.resolve(run_dir, merged=True)
    assert merged.kind == "merged" and merged.tuned.quantization is None and merged.base.quantization is None


def test_an_older_helper_that_does_not_quantize_is_said_too():
    from ft_recipes.run.evaluation.runner import quantization_record

    target = targets.Target(targets.Model("tuned", "b", peft="a", quantization={"bits": 4}), None, "adapter")
    record, notes = quantization_record(target, {"tuned": {"tasks": {}}})
    assert record["applied"] == {"tuned": False} and "older environment" in notes[0]
