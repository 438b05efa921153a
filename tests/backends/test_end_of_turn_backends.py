"""FTR212 through each backend's own preprocessing (`ftr data`, the `ftr tokens` machinery) on the tiny ChatML
model: ChatML's <|im_end|> is trained by all three; the `empty` template writes no end of turn, and every backend's
labels then end with the answer's last word."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BACKENDS = ("llamafactory", "axolotl", "trl")


@pytest.fixture(scope="module")
def env(backend_env, lf_python, ax_python, trl_python, tmp_path_factory):
    return {**backend_env, "FTR_LLAMAFACTORY_PYTHON": str(lf_python), "FTR_AXOLOTL_PYTHON": str(ax_python),
            "FTR_TRL_PYTHON": str(trl_python), "FTR_ENV_DIR": str(tmp_path_factory.mktemp("cache") / "envs")}


def data(tmp: Path, assets, template: str, env: dict) -> tuple[dict, list, subprocess.CompletedProcess]:
    recipe = tmp / f"{template}.yaml"
    recipe.write_text(f"""ftr: 1
extends: [lora-sft]
model: {{base: {assets.model}, template: {template}, pad_token: "<|endoftext|>"}}
data:
  train: [{{path: {assets.data}/sharegpt.jsonl, format: sharegpt}}]
  val: {{split: 0.2}}
  max_length: 128
hardware: {{gpus: 0}}
lint: {{ignore: [FTR1, FTR206]}}
""")
    proc = subprocess.run([sys.executable, "-m", "ft_recipes", "data", str(recipe), "--format", "json",
                           "--eos-rows", "4"], capture_output=True, text=True, env=env, timeout=900)
    out = json.loads(proc.stdout)
    return out["end_of_turn"], [f for f in out["findings"] if f["code"] == "FTR212"], proc


def test_chatml_end_of_turn_is_trained_by_every_backend(tiny_assets, env, tmp_path):
    ends, findings, proc = data(tmp_path, tiny_assets, "chatml", env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for backend in BACKENDS:
        assert ends[backend]["turns"] == 4 and ends[backend]["untrained"] == 0, ends
        assert "<|im_end|>" in ends[backend]["end_tokens"]
    assert findings == []


def test_an_end_of_turn_no_backend_trains_is_reported_per_backend(tiny_assets, env, tmp_path):
    ends, findings, proc = data(tmp_path, tiny_assets, "empty", env)
    for backend in BACKENDS:
        assert ends[backend]["untrained"] == ends[backend]["turns"] == 4, ends
        assert "no end-of-turn token follows" in ends[backend]["examples"][0][1]
    assert sorted(f["message"].split(" does not train")[0] for f in findings) == sorted(BACKENDS), findings
    # lint, in another process, reports the verdicts `ftr data` left, starting no backend
    lint = subprocess.run([sys.executable, "-m", "ft_recipes", "lint", str(tmp_path / "empty.yaml"), "--select",
                           "FTR212"], capture_output=True, text=True, env=env, timeout=60)
    assert lint.stdout.count("does not train the end of turn") == 3, lint.stdout
