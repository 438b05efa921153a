"""A pipeline with `stage: eval` steps on the tiny model, CPU, offline: LoRA SFT on trl, an eval step (a local
multiple-choice task over local JSONL and the held-out rows, base against tuned), a merge step and an eval step
of the merged model (held-out rows only). A second `ftr run` skips every step; `ftr report` on the pipeline shows
the scores. Then the lm-eval environment's helper loads the SFT adapter on the 4-bit base (bitsandbytes on CPU),
as a QLoRA adapter is evaluated."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, TINY
from .test_eval_backend import mc_task
from .test_ftr_backends import ftr

PIPELINE = """ftr: 1
model: {{base: {model}, template: chatml, pad_token: "<|endoftext|>"}}
data: {{val: {{split: 0.2}}, max_length: 128}}
train: {{max_steps: 20, micro_batch_size: 2, grad_accum: 1, precision: fp32, gradient_checkpointing: false,
        logging_steps: 1}}
eval: {{steps: 10, tasks: [{tasks}/tiny_mc.yaml], limit: 5}}
output: {{dir: {out}, save: steps, save_steps: 20}}
hardware: {{gpus: 0}}
lint: {{ignore: [FTR1, FTR206]}}
stages:
  - name: sft
    backend: trl
    extends: [lora-sft]
    train: {{lr: 2.0e-3, warmup_ratio: 0.0}}
    data: {{train: [{{path: {data}/alpaca.jsonl, format: alpaca}}]}}
  - name: sft-eval
    stage: eval
  - name: merged
    stage: merge
  - name: merged-eval
    stage: eval
    eval: {{tasks: null}}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, trl_python, backend_env):
    """The tiny model and its data sets, built with the trl environment (the only backend this module needs)."""
    root = tmp_path_factory.mktemp("tiny-eval")
    proc = subprocess.run([str(trl_python), str(TINY), str(root / "model"), str(root / "data")], capture_output=True,
                          text=True, env=backend_env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "model", root / "data"


@pytest.fixture(scope="module")
def env(backend_env, trl_python, eval_python) -> dict:
    return {**backend_env, "FTR_TRL_PYTHON": str(trl_python), "FTR_LM_EVAL_PYTHON": str(eval_python)}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny, env):
    """The pipeline run once: (recipe, runs folder, ftr run's output, seconds)."""
    model, data = tiny
    tmp = tmp_path_factory.mktemp("eval-stage")
    mc_task(tmp / "tasks", data / "preference.jsonl")
    recipe = tmp / "pipeline.yaml"
    recipe.write_text(PIPELINE.format(model=model, data=data, tasks=tmp / "tasks", out=tmp / "runs"))
    started = time.perf_counter()
    proc = ftr("run", recipe, "-b", "trl", env=env, check=False, timeout=1500)
    seconds = round(time.perf_counter() - started, 1)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return recipe, tmp / "runs", proc, seconds


def test_eval_steps_score_base_against_tuned_and_record_it(pipeline, tiny):
    recipe, runs, proc, seconds = pipeline
    model, _ = tiny
    assert "ftr: stage sft-eval (2/4): eval" in proc.stderr and "ftr eval: tuned: lm-eval on tiny_mc" in proc.stderr
    assert "tiny_mc acc_norm" in proc.stdout  # the table, printed by the step

    sft = json.loads((runs / "sft-eval" / "eval.json").read_text())
    assert sft["target"]["kind"] == "adapter" and sft["target"]["tuned"]["peft"] == str(runs / "sft")
    assert Path(sft["target"]["base"]["pretrained"]).resolve() == model.resolve()
    assert sft["settings"]["limit"] == 5 and sft["settings"]["tasks"] == ["tiny_mc"]
    assert sft["settings"]["quantization"] is None and sft["notes"] == []
    base, tuned = sft["results"]["base"], sft["results"]["tuned"]
    for scores in (base, tuned):
        assert 0 <= scores["tasks"]["tiny_mc"]["acc_norm"] <= 1 and scores["held_out"]["generated"] == 5
    # the adapter is applied: the tuned model fits the held-out answers better than the base
    assert tuned["held_out"]["perplexity"] < 0.9 * base["held_out"]["perplexity"], (base, tuned)

    merged = json.loads((runs / "merged-eval" / "eval.json").read_text())
    assert merged["target"]["kind"] == "merged" and merged["target"]["tuned"]["pretrained"] == str(runs / "merged")
    assert merged["settings"]["tasks"] == [] and merged["results"]["tuned"]["tasks"] == {}
    held = merged["results"]["tuned"]["held_out"]
    # the merged model is the SFT adapter folded in: its held-out perplexity is the adapter's (to rounding)
    assert abs(held["perplexity"] - tuned["held_out"]["perplexity"]) < 1e-2 * tuned["held_out"]["perplexity"]

    state = {s["name"]: s for s in json.loads((runs / "pipeline.json").read_text())["stages"]}
    for name in ("sft-eval", "merged-eval"):
        assert state[name]["status"] == "finished" and state[name]["kind"] == "eval"
        assert state[name]["eval"]["results"]["tuned"]["held_out"]["perplexity"] > 1
    assert state["merged"]["from"] == "sft"  # a step after an eval step starts from what it evaluated
    manifest = json.loads((runs / "sft" / "manifest.json").read_text())
    assert manifest["eval"]["file"] == str(runs / "merged-eval" / "eval.json")  # the latest evaluation of the run
    print(json.dumps({"pipeline_seconds": seconds, "sft_eval_seconds": sft["seconds"],
                      "merged_eval_seconds": merged["seconds"],
                      "sft": {label: {"tasks": m["tasks"], **{k: v for k, v in m["held_out"].items() if k != "samples"}}
                              for label, m in sft["results"].items()},
                      "merged": {label: m["held_out"]["perplexity"] for label, m in merged["results"].items()}}),
          file=sys.stderr)


def test_a_second_run_skips_the_eval_steps_and_report_shows_them(pipeline, env):
    recipe, runs, _, _ = pipeline
    before = (runs / "sft-eval" / "eval.json").stat().st_mtime_ns
    started = time.perf_counter()
    again = ftr("run", recipe, "-b", "trl", env=env)
    print(f"second run of the finished pipeline: {time.perf_counter() - started:.2f} s", file=sys.stderr)
    for name in ("sft", "sft-eval", "merged", "merged-eval"):
        assert f"stage {name}: finished and unchanged" in again.stderr, again.stderr[-3000:]
    assert (runs / "sft-eval" / "eval.json").stat().st_mtime_ns == before
    report = ftr("report", runs, env=env)
    block = report.stdout[report.stdout.index(str(runs / "sft-eval")):]
    assert "ftr eval (base against tuned):" in block and "tiny_mc acc_norm" in block
    assert str(runs / "merged-eval") in report.stdout


HELPER_JOB = {"tasks": [], "limit": None, "num_fewshot": None, "batch_size": None, "seed": 42,
              "trust_remote_code": False}


def test_a_qlora_adapter_is_evaluated_on_its_4bit_base_on_cpu(pipeline, tiny, env, eval_python, tmp_path):
    """bitsandbytes 0.50 quantizes on CPU: the helper loads the base 4-bit (nf4, double quantization, as QLoRA
    trains) with the adapter on it; the scores move a little from the full-precision ones, and the adapter still
    helps."""
    _, runs, _, _ = pipeline
    model, data = tiny
    rows = [json.loads(line) for line in (data / "alpaca.jsonl").read_text().splitlines()][:10]
    held = {"rows": [{"prompt": [{"role": "user", "content": r["instruction"]}], "answer": r["output"]} for r in rows],
            "split": None, "template": None, "generate": False, "max_rows": None, "max_new_tokens": 8, "samples": 0}
    quant = {"bits": 4, "type": "nf4", "double_quant": True}
    models = [{"label": "base", "pretrained": str(model)},
              {"label": "tuned", "pretrained": str(model), "peft": str(runs / "sft"), "tokenizer": str(runs / "sft")},
              {"label": "base4", "pretrained": str(model), "quantization": quant},
              {"label": "tuned4", "pretrained": str(model), "peft": str(runs / "sft"), "tokenizer": str(runs / "sft"),
               "quantization": quant}]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({**HELPER_JOB, "models": models, "held_out": held}))
    helper = ROOT / "ft_recipes" / "run" / "evaluation" / "helper.py"
    proc = subprocess.run([str(eval_python), str(helper), str(job), str(tmp_path / "out.json")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())["models"]
    assert out["tuned4"]["quantization"] == {**quant, "applied": True}, out["tuned4"]["quantization"]
    assert out["tuned"]["quantization"] is None
    ppl = {label: out[label]["held_out"]["perplexity"] for label in out}
    assert ppl["tuned4"] != ppl["tuned"] and ppl["base4"] != ppl["base"], ppl  # the 4-bit weights are used
    assert ppl["tuned4"] < 0.9 * ppl["base4"], ppl  # and the adapter on them
    print("held-out perplexity, full precision vs 4-bit base:", json.dumps(ppl), file=sys.stderr)
