"""`ftr data`'s optimizer steps per epoch against each backend's own trainer: one epoch of a tiny recipe (26 rows,
val.split 0.2, micro batch 2, grad accum 2, unpacked) through `ftr run`, and the trainer's own step count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = 26  # 0.2 of 26 is 5.2: the backends hold out ceil(5.2) = 6 rows, 20 train in 5 steps (rounding: 21, 6)
FTR = [sys.executable, "-m", "ft_recipes"]


@pytest.fixture(scope="module")
def env(backend_env, lf_python, ax_python, trl_python):
    return {**backend_env, "FTR_LLAMAFACTORY_PYTHON": str(lf_python), "FTR_AXOLOTL_PYTHON": str(ax_python),
            "FTR_TRL_PYTHON": str(trl_python)}


def recipe(tmp: Path, assets, backend: str) -> Path:
    rows = (assets.data / "alpaca.jsonl").read_text().splitlines()[:ROWS]
    data = tmp / "alpaca.jsonl"
    data.write_text("\n".join(rows) + "\n")
    path = tmp / f"steps-{backend}.yaml"
    path.write_text(f"""ftr: 1
extends: [lora-sft]
model: {{base: {assets.model}, template: chatml, pad_token: "<|endoftext|>"}}
data:
  train: [{{path: {data}, format: alpaca}}]
  val: {{split: 0.2}}
  max_length: 128
  packing: false
train: {{epochs: 1, micro_batch_size: 2, grad_accum: 2, warmup_ratio: 0.0, precision: fp32,
        gradient_checkpointing: false, logging_steps: 1}}
eval: {{every: "no"}}
output: {{dir: {tmp}/runs/{backend}, save: epoch}}
hardware: {{gpus: 0}}
lint: {{ignore: [FTR1, FTR206]}}
""")
    return path


def ftr_steps(path: Path, backend: str, env: dict) -> int:
    proc = subprocess.run([*FTR, "data", str(path), "-b", backend, "--no-eos", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=300)
    training = json.loads(proc.stdout)["training"]
    assert training["packed"] is False and training["effective_batch"] == 4, training
    assert training["backend_steps"][backend] == training["steps_per_epoch"], training  # it reads every row
    return training["steps_per_epoch"]


def trainer_steps(run_dir: Path) -> tuple[int, int]:
    """The trainer's planned and taken optimizer steps (trainer_state.json, the latest one written)."""
    states = [json.loads(p.read_text()) for p in run_dir.rglob("trainer_state.json")]
    assert states, sorted(str(p) for p in run_dir.rglob("*"))[:40]
    last = max(states, key=lambda s: s["global_step"])
    return last["max_steps"], last["global_step"]


@pytest.mark.parametrize("backend", ["llamafactory", "axolotl", "trl"])
def test_steps_per_epoch_match_the_backends_trainer(backend, tiny_assets, env, tmp_path):
    path = recipe(tmp_path, tiny_assets, backend)
    expected = ftr_steps(path, backend, env)
    proc = subprocess.run([*FTR, "run", str(path), "-b", backend], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert trainer_steps(tmp_path / "runs" / backend) == (expected, expected)
