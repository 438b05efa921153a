"""Hand-written native LLaMA-Factory 0.9.5 configs, validated and trained on CPU with the tiny model.

These pin down what the emitter must produce for CPU runs (docs/backends/llamafactory.md copies these YAMLs)
and prove that the validation helper can fail.
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
pytestmark = pytest.mark.xdist_group("llamafactory-native")

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "ft_recipes" / "backends" / "llamafactory" / "validate_helper.py"

_ROLE_CONTENT = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}


def dataset_info(data: Path) -> dict:
    """The dataset_info.json entries that worked, one per tiny dataset (absolute file_name)."""
    return {
        "alpaca": {"file_name": str(data / "alpaca.jsonl"),
                   "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
        "sharegpt": {"file_name": str(data / "sharegpt.jsonl"), "formatting": "sharegpt",
                     "columns": {"messages": "conversations"}},
        "messages": {"file_name": str(data / "messages.jsonl"), "formatting": "sharegpt",
                     "columns": {"messages": "messages"}, "tags": _ROLE_CONTENT},
        "preference": {"file_name": str(data / "preference.jsonl"), "ranking": True,
                       "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen",
                                   "rejected": "rejected"}},
        "preference_messages": {"file_name": str(data / "preference_messages.jsonl"), "formatting": "sharegpt",
                                "ranking": True, "tags": _ROLE_CONTENT,
                                "columns": {"messages": "messages", "chosen": "chosen", "rejected": "rejected"}},
        "text": {"file_name": str(data / "text.jsonl"), "columns": {"prompt": "text"}},
    }


COMMON = """\
model_name_or_path: {model}
trust_remote_code: false
do_train: true
dataset_dir: {registry}
template: chatml
cutoff_len: 128
overwrite_cache: true
preprocessing_num_workers: 1
dataloader_num_workers: 0
dataloader_pin_memory: false
output_dir: {out}
overwrite_output_dir: true
logging_steps: 1
save_steps: 100
plot_loss: false
report_to: none
per_device_train_batch_size: 2
gradient_accumulation_steps: 1
max_steps: {steps}
lr_scheduler_type: cosine
warmup_steps: 0
bf16: false
fp16: false
seed: 42
"""

LORA = """\
finetuning_type: lora
lora_rank: 8
lora_alpha: 16
lora_dropout: 0.0
lora_target: all
"""

CONFIGS = {
    "lora_sft": COMMON + LORA + """\
stage: sft
dataset: alpaca
learning_rate: 1.0e-3
val_size: 0.1
per_device_eval_batch_size: 2
eval_strategy: steps
eval_steps: 2
""",
    "full_sft": COMMON + """\
stage: sft
finetuning_type: full
dataset: sharegpt
learning_rate: 1.0e-4
""",
    "dpo_lora": COMMON + LORA + """\
stage: dpo
dataset: preference
pref_beta: 0.1
pref_loss: sigmoid
learning_rate: 1.0e-4
""",
    "dpo_messages": COMMON + LORA + """\
stage: dpo
dataset: preference_messages
pref_beta: 0.1
pref_loss: sigmoid
learning_rate: 1.0e-4
""",
    "qlora_4bit": COMMON + LORA + """\
stage: sft
dataset: messages
quantization_bit: 4
quantization_method: bnb
quantization_type: nf4
double_quantization: true
learning_rate: 1.0e-4
""",
    "pt_text": COMMON + LORA + """\
stage: pt
dataset: text
learning_rate: 1.0e-4
""",
}

EXPORT = """\
model_name_or_path: {model}
adapter_name_or_path: {adapter}
template: chatml
finetuning_type: lora
trust_remote_code: false
export_dir: {out}
export_size: 1
export_device: cpu
export_legacy_format: false
"""


@pytest.fixture(scope="module")
def lf(lf_python, tiny_assets, backend_env, tmp_path_factory):
    """write(name) -> config path; train(path) / export(path) run llamafactory-cli in a scratch dir."""
    work = tmp_path_factory.mktemp("lf")
    registry = work / "registry"
    registry.mkdir()
    (registry / "dataset_info.json").write_text(json.dumps(dataset_info(tiny_assets.data), indent=2))
    cli = lf_python.parent / "llamafactory-cli"
    env = backend_env

    class LF:
        model = tiny_assets.model

        @staticmethod
        def write(name: str, text: str | None = None, steps: int = 3, **fmt) -> Path:
            text = text if text is not None else CONFIGS[name]
            values = {"model": tiny_assets.model, "registry": registry, "out": work / "out" / name, "steps": steps}
            path = work / f"{name}.yaml"
            path.write_text(text.format(**{**values, **fmt}))
            return path

        @staticmethod
        def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
            proc = subprocess.run([str(cli), *args], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=timeout)
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
            return proc

        @staticmethod
        def helper(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(lf_python), str(HELPER), *args], cwd=work, env=env, capture_output=True,
                                  text=True, timeout=300)

        out = work / "out"

    return LF


def _log(out: Path) -> list[dict]:
    path = out / "trainer_log.jsonl"
    assert path.is_file(), f"no {path}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _assert_trained(out: Path, steps: int) -> list[dict]:
    rows = _log(out)
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == steps, rows
    assert all(math.isfinite(x) for x in losses), losses
    return rows


def test_helper_accepts_and_rejects(lf):
    good = lf.write("lora_sft", steps=4)
    text = good.read_text().replace("bf16: false", "bf16: true")  # --cpu must switch it off
    good.write_text(text)
    bad = lf.write("misspelt", CONFIGS["lora_sft"].replace("learning_rate:", "learning_rte:"))
    proc = lf.helper("--cpu", str(good), str(bad))
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["ok"] for r in results] == [True, False], proc.stdout + proc.stderr[-3000:]
    assert results[0]["error"] is None and results[0]["path"] == str(good)
    assert "learning_rte" in results[1]["error"], results[1]
    assert proc.returncode == 1
    ok_only = lf.helper("--cpu", str(good))
    assert ok_only.returncode == 0, ok_only.stdout + ok_only.stderr[-3000:]


@pytest.fixture(scope="module")
def lora_run(lf) -> Path:
    lf.run("train", str(lf.write("lora_sft", steps=4)))
    return lf.out / "lora_sft"


def test_lora_sft_with_validation(lora_run):
    assert (lora_run / "adapter_model.safetensors").is_file()
    assert (lora_run / "adapter_config.json").is_file()
    rows = _assert_trained(lora_run, 4)
    evals = [r["eval_loss"] for r in rows if "eval_loss" in r]
    assert len(evals) == 2 and all(math.isfinite(x) for x in evals), rows  # eval_steps 2 of 4
    assert "eval_loss" in json.loads((lora_run / "all_results.json").read_text())


def test_export_merges_lora(lf, lora_run):
    lf.run("export", str(lf.write("export", EXPORT, adapter=lora_run, out=lf.out / "merged")))
    merged = lf.out / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert (merged / "tokenizer.json").is_file()
    assert not (merged / "adapter_config.json").exists()


def test_ftr_eval_base_against_tuned_on_the_output_folder(lora_run, tiny_assets, backend_env, eval_python, tmp_path):
    """`ftr eval --base` on LLaMA-Factory's own output folder (no ftr manifest): the adapter through peft= on the
    base its adapter_config.json names, with the tokenizer LLaMA-Factory saved beside it; the trained run is the
    module's, nothing trains again."""
    tasks = local_tasks(tmp_path / "tasks", tiny_assets.data)
    record = run_eval(lora_run, {**backend_env, "FTR_LM_EVAL_PYTHON": str(eval_python)}, "--base", "--tasks", tasks)
    target = record["target"]
    assert target["kind"] == "adapter" and target["tuned"]["peft"] == str(lora_run.resolve())
    assert target["tuned"]["tokenizer"] == str(lora_run.resolve())
    assert Path(target["base"]["pretrained"]).resolve() == tiny_assets.model.resolve()
    print("llamafactory:", json.dumps(assert_base_and_tuned_differ(record)), file=sys.stderr)


@pytest.mark.slow  # ftr's own full SFT runs LLaMA-Factory the same way (test_full_sft_llamafactory)
def test_full_sft(lf):
    lf.run("train", str(lf.write("full_sft")))
    out = lf.out / "full_sft"
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    _assert_trained(out, 3)


@pytest.mark.parametrize("name", ["dpo_lora", "dpo_messages"])
def test_dpo_lora(lf, name):
    lf.run("train", str(lf.write(name)))
    out = lf.out / name
    assert (out / "adapter_model.safetensors").is_file()
    rows = _assert_trained(out, 3)
    assert any("accuracy" in r for r in rows), rows  # DPO reward accuracy is logged


@pytest.mark.slow  # ftr's own QLoRA run covers it (test_qlora_llamafactory)
def test_qlora_4bit_cpu(lf):
    proc = lf.run("train", str(lf.write("qlora_4bit")))
    assert "Quantizing model to 4 bit with bitsandbytes" in proc.stdout + proc.stderr
    out = lf.out / "qlora_4bit"
    assert (out / "adapter_model.safetensors").is_file()
    _assert_trained(out, 3)


def test_pretraining_text(lf):
    lf.run("train", str(lf.write("pt_text")))
    _assert_trained(lf.out / "pt_text", 3)
