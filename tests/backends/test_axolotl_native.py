"""Hand-written native Axolotl 0.19.0 configs, validated and trained on CPU with the tiny model.

These pin down what the emitter must write for CPU runs (docs/backends/axolotl.md copies these YAMLs) and prove
that the validation helper fails on a broken config and reports a silently dropped key.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from .test_eval_backend import assert_base_and_tuned_differ, local_tasks, run_eval

# with pytest -n: this module on one worker (its module-scoped training run is shared)
pytestmark = [pytest.mark.backends, pytest.mark.xdist_group("axolotl-native")]

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "ft_recipes" / "backends" / "axolotl" / "validate_helper.py"

# Everything a CPU run needs; without the bf16/fp16 lines Axolotl resolves bf16 "auto" -> false and turns
# fp16 on, and without the kernel lines it auto-enables the Triton LoRA kernels (CUDA only) for LoRA/QLoRA.
CPU = """\
bf16: false
fp16: false
tf32: false
gradient_checkpointing: false
dataloader_num_workers: 0
dataloader_pin_memory: false
dataset_num_proc: 1
"""
LORA = """\
lora_r: 8
lora_alpha: 16
lora_dropout: 0.0
lora_target_linear: true
lora_mlp_kernel: false
lora_qkv_kernel: false
lora_o_kernel: false
lora_embedding_kernel: false
"""
TRAIN = """\
sequence_len: 128
micro_batch_size: 2
gradient_accumulation_steps: 1
num_epochs: 1
max_steps: 4
learning_rate: 0.001
optimizer: adamw_torch
lr_scheduler: cosine
warmup_steps: 0
logging_steps: 1
save_steps: 4
seed: 42
"""

LORA_SFT = """\
base_model: {model}
chat_template: tokenizer_default
datasets:
  - path: {data}/messages.jsonl
    ds_type: json
    type: chat_template
    field_messages: messages
    message_property_mappings:
      role: role
      content: content
val_set_size: 0.1
eval_steps: 2
dataset_prepared_path: {out}/prepared
output_dir: {out}
adapter: lora
""" + LORA + TRAIN + CPU

QLORA_SFT = """\
base_model: {model}
chat_template: tokenizer_default
datasets:
  - path: {data}/sharegpt.jsonl
    ds_type: json
    type: chat_template
    field_messages: conversations
    message_property_mappings:
      role: from
      content: value
    roles:
      user: [human]
      assistant: [gpt]
val_set_size: 0.0
dataset_prepared_path: {out}/prepared
output_dir: {out}
adapter: qlora
load_in_4bit: true
""" + LORA + TRAIN + CPU

DPO_LORA = """\
base_model: {model}
chat_template: tokenizer_default
rl: dpo
rl_beta: 0.1
datasets:
  - path: {data}/preference_messages.jsonl
    split: train
    type: chat_template.default
    field_messages: messages
    field_chosen: chosen
    field_rejected: rejected
val_set_size: 0.0
dataset_prepared_path: {out}/prepared
output_dir: {out}
adapter: lora
""" + LORA + TRAIN + CPU


def _write(path: Path, template: str, **kw) -> Path:
    path.write_text(template.format(**{k: str(v) for k, v in kw.items()}), encoding="utf-8")
    return path


def _run(argv: list, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=timeout)


def _axolotl(ax_python: Path, *args) -> list:
    # `axolotl train` defaults to the accelerate launcher, which execs `accelerate` from PATH; the in-process
    # python launcher needs neither PATH nor accelerate's CLI.
    return [ax_python, "-m", "axolotl.cli.main", *args]


def _train(ax_python: Path, cfg: Path, env: dict) -> None:
    proc = _run(_axolotl(ax_python, "train", cfg, "--launcher", "python"), env)
    assert proc.returncode == 0, (proc.stdout[-4000:] + proc.stderr[-6000:])


def _log_history(out: Path) -> list[dict]:
    states = sorted(out.glob("checkpoint-*/trainer_state.json"))
    assert states, f"no trainer_state.json under {out}"
    return json.loads(states[-1].read_text())["log_history"]


# --- validation helper ------------------------------------------------------------------------------------------

def test_helper_rejects_broken_and_reports_dropped(ax_python, backend_env, tmp_path):
    kw = dict(model="/nonexistent/tiny-model", data="/nonexistent/data", out=tmp_path / "out")
    good = _write(tmp_path / "good.yaml", LORA_SFT, **kw)
    broken = _write(tmp_path / "broken.yaml", LORA_SFT.replace("lora_r: 8", "lora_r: eight"), **kw)
    typo = _write(tmp_path / "typo.yaml", LORA_SFT.replace("    type: chat_template", "    typ: chat_template"), **kw)
    qlora_no4bit = _write(tmp_path / "qlora.yaml", LORA_SFT.replace("adapter: lora", "adapter: qlora"), **kw)
    dpo = _write(tmp_path / "dpo.yaml", DPO_LORA.replace("    split: train", "    ds_type: json"), **kw)
    liger = _write(tmp_path / "liger.yaml", LORA_SFT + "liger_rope: true\n", **kw)
    files = [good, broken, typo, qlora_no4bit, dpo, liger]
    proc = _run([ax_python, HELPER, "--cpu", *files], backend_env, timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    rows = {Path(r["path"]).stem: r for r in map(json.loads, proc.stdout.strip().splitlines())}
    assert set(rows) == {p.stem for p in files}
    assert rows["good"] == {"path": str(good), "ok": True, "error": None, "dropped": []}
    assert not rows["broken"]["ok"] and "lora_r" in rows["broken"]["error"]
    assert rows["typo"]["ok"] and rows["typo"]["dropped"] == ["datasets[0].typ"]
    assert not rows["qlora"]["ok"] and "load_in_4bit" in rows["qlora"]["error"]
    # rl: dpo turns every dataset entry into a DPODataset, which has no ds_type
    assert rows["dpo"]["ok"] and rows["dpo"]["dropped"] == ["datasets[0].ds_type"]
    # plugin keys are only known when the plugin is listed under `plugins:`
    assert rows["liger"]["ok"] and rows["liger"]["dropped"] == ["liger_rope"]


# --- training on CPU --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lora_run(ax_python, backend_env, tiny_assets, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ax-lora")
    cfg = _write(root / "lora.yaml", LORA_SFT, model=tiny_assets.model, data=tiny_assets.data, out=root / "out")
    _train(ax_python, cfg, backend_env)
    return cfg, root / "out"


def test_lora_sft_trains_and_evaluates(lora_run):
    _, out = lora_run
    assert (out / "adapter_model.safetensors").is_file()
    assert (out / "adapter_config.json").is_file()
    history = _log_history(out)
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    # eval_on_start (default when eval is on) + every eval_steps: 0, 2, 4
    assert len(evals) >= 2 and all(math.isfinite(x) for x in evals)


def test_merge_lora(lora_run, ax_python, backend_env):
    cfg, out = lora_run
    proc = _run(_axolotl(ax_python, "merge-lora", cfg), backend_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    merged = out / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert (merged / "tokenizer.json").is_file()


def test_ftr_eval_base_against_tuned_on_the_output_folder(lora_run, tiny_assets, backend_env, eval_python, tmp_path):
    """`ftr eval --base` on Axolotl's own output folder (no ftr manifest): the adapter through peft= on the base
    its adapter_config.json names, with the tokenizer Axolotl saved beside it; the module's run, not a new one."""
    _, out = lora_run
    tasks = local_tasks(tmp_path / "tasks", tiny_assets.data)
    record = run_eval(out, {**backend_env, "FTR_LM_EVAL_PYTHON": str(eval_python)}, "--base", "--tasks", tasks)
    target = record["target"]
    assert target["kind"] == "adapter" and target["tuned"]["peft"] == str(out.resolve())
    assert target["tuned"]["tokenizer"] == str(out.resolve())
    assert Path(target["base"]["pretrained"]).resolve() == tiny_assets.model.resolve()
    print("axolotl:", json.dumps(assert_base_and_tuned_differ(record)), file=sys.stderr)


def test_qlora_4bit_sharegpt_trains(ax_python, backend_env, tiny_assets, tmp_path):
    cfg = _write(tmp_path / "qlora.yaml", QLORA_SFT, model=tiny_assets.model, data=tiny_assets.data,
                 out=tmp_path / "out")
    _train(ax_python, cfg, backend_env)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    losses = [h["loss"] for h in _log_history(tmp_path / "out") if "loss" in h]
    assert losses and all(math.isfinite(x) for x in losses)


@pytest.mark.slow  # ftr's own Axolotl DPO run covers it (test_dpo_lora[axolotl])
def test_dpo_lora_trains(ax_python, backend_env, tiny_assets, tmp_path):
    cfg = _write(tmp_path / "dpo.yaml", DPO_LORA, model=tiny_assets.model, data=tiny_assets.data,
                 out=tmp_path / "out")
    _train(ax_python, cfg, backend_env)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    history = [h for h in _log_history(tmp_path / "out") if "loss" in h]
    assert history and all(math.isfinite(h["loss"]) for h in history)
    assert abs(history[0]["loss"] - math.log(2)) < 0.05  # DPO starts at ln 2 (policy == reference)
    assert "rewards/margins" in history[0]
