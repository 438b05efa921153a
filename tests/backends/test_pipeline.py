"""Pipelines (``stages:``) on the tiny CPU model through the real backends: SFT -> DPO -> merge through
LLaMA-Factory, through Axolotl, and mixed; the DPO stage starts from the SFT adapter; a second run skips the
finished stages; a run killed during DPO reuses the SFT result."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .test_ftr_backends import FTR, ftr, read_log, run_env  # noqa: F401  (run_env is a fixture)

# The DPO stage warms up over 2 steps, so its first optimizer step runs at learning rate 0 and checkpoint-1 holds
# exactly the weights the stage started from; its later steps train.
PIPELINE = """ftr: 1
model: {{base: {model}, template: chatml, pad_token: "<|endoftext|>"}}
data: {{val: {{split: 0.2}}, max_length: 128}}
train: {{max_steps: 3, micro_batch_size: 2, grad_accum: 1, precision: fp32, gradient_checkpointing: false,
        logging_steps: 1}}
eval: {{steps: 2}}
output: {{dir: {out}, save: steps, save_steps: 1, save_total_limit: 10}}
hardware: {{gpus: 0}}
lint: {{ignore: [FTR1, FTR206, FTR601]}}
stages:
  - name: sft
    backend: {sft}
    extends: [lora-sft]
    train: {{lr: 1.0e-3, warmup_ratio: 0.0}}
    data: {{train: [{{path: {data}/alpaca.jsonl, format: alpaca}}]}}
  - name: dpo
    backend: {dpo}
    extends: [dpo-lora]
    train: {{lr: 1.0e-4, warmup_ratio: null, warmup_steps: 2}}
    data: {{train: [{{path: {data}/preference.jsonl, format: preference}}]}}
{merge}"""
MERGE = "  - name: merged\n    stage: merge\n"

COMPARE = """
import json, sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
print(json.dumps({"same_keys": sorted(a) == sorted(b), "keys": len(a),
                  "max_diff": max(float((a[k] - b[k]).abs().max()) for k in a if k in b),
                  "nonzero": max(float(t.abs().max()) for k, t in a.items() if "lora_B" in k)}))
"""

LOAD_MERGED = """
import sys, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
out = model(torch.tensor([[1, 2, 3]]))
print("loaded", type(model).__name__, tuple(out.logits.shape))
"""


def write_pipeline(tmp: Path, assets, sft: str, dpo: str, merge: bool = True) -> Path:
    path = tmp / f"pipeline-{sft}-{dpo}.yaml"
    path.write_text(PIPELINE.format(model=assets.model, data=assets.data, out=tmp / "runs", sft=sft, dpo=dpo,
                                    merge=MERGE if merge else ""))
    return path


def compare(python: Path, a: Path, b: Path, env) -> dict:
    proc = subprocess.run([str(python), "-c", COMPARE, str(a), str(b)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_dpo_started_from_sft(python: Path, runs: Path, env) -> dict:
    """The DPO stage's weights before any update (checkpoint-1, learning rate 0) equal the SFT adapter exactly;
    its final adapter differs (it trained)."""
    sft = runs / "sft" / "adapter_model.safetensors"
    start = compare(python, sft, runs / "dpo" / "checkpoint-1" / "adapter_model.safetensors", env)
    assert start["same_keys"] and start["keys"] > 0 and start["nonzero"] > 0, start
    assert start["max_diff"] == 0.0, start
    end = compare(python, sft, runs / "dpo" / "adapter_model.safetensors", env)
    assert end["same_keys"] and end["max_diff"] > 0.0, end
    return {"start": start, "end": end}


def assert_reference_is_sft(runs: Path) -> float:
    """The DPO paper's reference is the SFT policy: at the first step the policy still equals it, so every
    log-ratio is 0 and the loss is -log(sigmoid(0)) = log 2. A reference with the adapter disabled (the base
    model) gives another value, since the SFT adapter is not zero."""
    first = read_log(runs / "dpo")[0][0]
    assert abs(first - math.log(2)) < 1e-4, f"first DPO loss {first}: the reference is not the SFT policy"
    return first


def assert_merged_loads(python: Path, folder: Path, env) -> None:
    proc = subprocess.run([str(python), "-c", LOAD_MERGED, str(folder)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr[-2000:]


def kill_during(stage_log: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    """SIGINT to ftr once the stage's backend has written to its log (ftr forwards it to the backend)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if stage_log.is_file() and stage_log.stat().st_size > 0:
            time.sleep(2)
            proc.send_signal(signal.SIGINT)
            return
        time.sleep(0.5)
    raise AssertionError(f"{stage_log} never started (ftr exit status {proc.poll()})")


def test_llamafactory_pipeline_killed_resumed_skipped(tiny_assets, run_env, tmp_path, lf_python):
    recipe = write_pipeline(tmp_path, tiny_assets, "llamafactory", "llamafactory")
    runs = tmp_path / "runs"
    proc = subprocess.Popen([*FTR, "run", str(recipe), "-b", "llamafactory"], env=run_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    kill_during(runs / "dpo" / "logs" / "train.log", proc)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, output[-3000:]
    assert "stage dpo failed" in output, output[-3000:]
    state = {s["name"]: s for s in json.loads((runs / "pipeline.json").read_text())["stages"]}
    assert state["sft"]["status"] == "finished" and state["dpo"]["status"] == "failed", state
    sft_adapter = (runs / "sft" / "adapter_model.safetensors").read_bytes()

    again = ftr("run", recipe, "-b", "llamafactory", env=run_env)
    assert "stage sft: finished and unchanged" in again.stderr, again.stderr[-3000:]
    assert (runs / "sft" / "adapter_model.safetensors").read_bytes() == sft_adapter  # the SFT result reused
    assert list(runs.glob("dpo.old-*")), "the interrupted DPO run is moved aside, not deleted"
    evidence = assert_dpo_started_from_sft(lf_python, runs, run_env)
    print("adapter evidence (llamafactory):", evidence, "first DPO loss:", assert_reference_is_sft(runs))
    assert_merged_loads(lf_python, runs / "merged", run_env)

    before = stage_files(runs)
    started = time.perf_counter()
    third = ftr("run", recipe, "-b", "llamafactory", env=run_env)
    print(f"second run of a finished pipeline: {time.perf_counter() - started:.2f} s")
    assert all(f"stage {name}: finished and unchanged" in third.stderr for name in ("sft", "dpo", "merged"))
    assert stage_files(runs) == before, "a finished stage was run again (a file of it was written)"


def stage_files(runs: Path) -> dict[str, int]:
    """Every file under the stages' run folders -> its modification time (ns): no backend ran if none changed."""
    return {str(path): path.stat().st_mtime_ns for name in ("sft", "dpo", "merged")
            for path in (runs / name).rglob("*") if path.is_file()}


# Axolotl's SFT and DPO stages both run in the mixed pipelines below: its one-backend pipeline is `slow`.
@pytest.mark.parametrize("backend", [pytest.param("axolotl", marks=pytest.mark.slow), "trl"])
def test_pipeline_on_one_backend(backend, tiny_assets, run_env, tmp_path, lf_python, eval_python):
    recipe = write_pipeline(tmp_path, tiny_assets, backend, backend)
    proc = ftr("run", recipe, "-b", backend, env=run_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = tmp_path / "runs"
    print(f"adapter evidence ({backend}):", assert_dpo_started_from_sft(lf_python, runs, run_env),
          "first DPO loss:", assert_reference_is_sft(runs))
    assert_merged_loads(lf_python, runs / "merged", run_env)
    print(f"ftr eval of the pipeline's merge ({backend}):", assert_merged_step_evaluates(runs, tiny_assets, run_env,
                                                                                      eval_python))


def assert_merged_step_evaluates(runs: Path, assets, env: dict, eval_python: Path) -> dict:
    """`ftr eval --base` on the merge step's folder: the merged model against the pipeline's base, on the DPO
    stage's held-out rows (it merged that stage); the result lands in the DPO run's manifest."""
    env = {**env, "FTR_LM_EVAL_PYTHON": str(eval_python)}
    proc = ftr("eval", runs / "merged", "--base", "--format", "json", env=env, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    assert record["target"]["kind"] == "merged" and record["target"]["run_dir"] == str((runs / "dpo").resolve())
    assert Path(record["target"]["base"]["pretrained"]).resolve() == assets.model.resolve()
    base, tuned = (record["results"][label]["held_out"] for label in ("base", "tuned"))
    assert base["rows"] == tuned["rows"] == 10 and base["perplexity"] != tuned["perplexity"], (base, tuned)
    assert json.loads((runs / "dpo" / "manifest.json").read_text())["eval"]["results"]["tuned"]["held_out"]
    return {"base": base["perplexity"], "tuned": tuned["perplexity"], "seconds": record["seconds"]}


@pytest.mark.parametrize("sft,dpo", [("axolotl", "llamafactory"), ("llamafactory", "axolotl")])
def test_mixed_pipeline(sft, dpo, tiny_assets, run_env, tmp_path, lf_python):
    recipe = write_pipeline(tmp_path, tiny_assets, sft, dpo, merge=False)
    proc = ftr("run", recipe, "-b", "trl", env=run_env, check=False)  # every stage names its own backend
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = tmp_path / "runs"
    manifests = {name: json.loads((runs / name / "manifest.json").read_text())["backend"] for name in ("sft", "dpo")}
    assert manifests == {"sft": sft, "dpo": dpo}
    print(f"adapter evidence (mixed {sft} -> {dpo}):", assert_dpo_started_from_sft(lf_python, runs, run_env),
          "first DPO loss:", assert_reference_is_sft(runs))
