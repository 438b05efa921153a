"""Axolotl import fidelity (issues 26 and 31): what only Axolotl understands is carried verbatim under
backends.axolotl for Axolotl -> Axolotl and refused (FTR005, naming the key) for another backend; nothing is
dropped as "cosmetic" that changes the training."""

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "data" / "realworld" / "axolotl"
DPO = "examples/llama-3/instruct-dpo-lora-8b.yml"

BASE = {"base_model": "org/model", "adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True,
        "sequence_len": 512, "micro_batch_size": 2, "num_epochs": 1, "learning_rate": 2e-4, "output_dir": "out"}
CHAT = [{"path": "org/chat", "type": "chat_template"}]


def _write(tmp_path: Path, **keys) -> Path:
    native = tmp_path / "ax.yaml"
    native.write_text(yaml.safe_dump({**BASE, "datasets": CHAT, **keys}, sort_keys=False))
    return native


def _convert(native, target: str, cwd: Path, out: Path | None = None):
    """``ftr convert`` run from ``cwd`` (where Axolotl runs), written to ``out`` (default: beside cwd)."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        args = ["convert", str(native), "--to", target]
        return CliRunner().invoke(main, args + ["-o", str(out or cwd / f"out-{target}")])
    finally:
        os.chdir(old)


def _axolotl(tmp_path: Path, native: Path) -> dict:
    result = _convert(native, "axolotl", tmp_path)
    assert result.exit_code == 0, result.output
    return yaml.safe_load((tmp_path / "out-axolotl" / "axolotl.yaml").read_text())


def _refused(tmp_path: Path, native: Path, key: str):
    result = _convert(native, "llamafactory", tmp_path)
    assert result.exit_code == 1, result.output
    assert "FTR005" in result.output and f"{key}:" in result.output, result.output
    assert not (tmp_path / "out-llamafactory").exists()
    return result


def test_unfrozen_parameters_of_another_shape_are_carried_to_axolotl_and_refused_elsewhere(tmp_path):
    patterns = [r"model\.embed_tokens\..*", r"lm_head\..*"]
    native = _write(tmp_path, adapter=None, unfrozen_parameters=patterns)
    assert _axolotl(tmp_path, native)["unfrozen_parameters"] == patterns
    _refused(tmp_path, native, "unfrozen_parameters")


def test_tf32_and_bf16_auto_are_kept_as_written(tmp_path):
    cfg = _axolotl(tmp_path, _write(tmp_path, tf32=True, bf16="auto"))
    assert cfg["tf32"] is True and cfg["bf16"] == "auto"
    result = _convert(_write(tmp_path, tf32=True), "llamafactory", tmp_path)
    assert result.exit_code == 0 and "lost  tf32: True" in result.output  # no recipe key: listed, never silent


@pytest.mark.parametrize("entry", [{"path": "tatsu-lab/alpaca", "type": "alpaca"},
                                   {"path": "org/io", "type": "input_output"},
                                   {"path": "org/text", "type": "completion", "field": "body", "shards": 4}])
def test_a_native_prompt_format_is_carried_verbatim_and_never_guessed_for_llamafactory(tmp_path, entry):
    native = _write(tmp_path, datasets=[entry])
    assert _axolotl(tmp_path, native)["datasets"] == [entry]
    key = "type" if entry["type"] != "completion" else "shards"
    _refused(tmp_path, native, f"datasets[0].{key}")


def test_a_chat_dataset_still_converts_to_both(tmp_path):
    native = _write(tmp_path, datasets=[{"path": "org/chat", "type": "chat_template", "field_messages": "turns"}])
    assert _axolotl(tmp_path, native)["datasets"][0]["field_messages"] == "turns"
    result = _convert(native, "llamafactory", tmp_path)
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "out-llamafactory" / "dataset_info.json").read_text())
    assert [entry["columns"]["messages"] for entry in info.values()] == ["turns"]


def test_a_dpo_chat_template_dataset_is_carried_exactly_or_refused(tmp_path):
    """chat_template.default with field_messages: conversation is no alpaca column mapping."""
    source = yaml.safe_load((CORPUS / DPO).read_text())
    result = _convert(DPO, "llamafactory", CORPUS, tmp_path / "lf")
    assert result.exit_code == 1 and "datasets[0].type: 'chat_template.default'" in result.output
    assert not (tmp_path / "lf").exists()
    result = _convert(DPO, "axolotl", CORPUS, tmp_path / "ax")
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "ax" / "axolotl.yaml").read_text())
    assert cfg["datasets"] == source["datasets"] and cfg["special_tokens"] == source["special_tokens"]
    assert "kept verbatim under backends.axolotl" in result.output


@pytest.mark.parametrize("keys", [{"rl": "ebft", "ebft": {"mode": "strided"}},
                                  {"lr_scheduler": "rex"}, {"optimizer": "muon"}])
def test_an_axolotl_only_value_converts_to_axolotl_and_is_refused_elsewhere(tmp_path, keys):
    native = _write(tmp_path, **keys)
    cfg = _axolotl(tmp_path, native)
    assert {key: cfg[key] for key in keys} == keys
    _refused(tmp_path, native, next(iter(keys)))


def test_null_reads_as_axolotl_reads_it(tmp_path):
    cfg = _axolotl(tmp_path, _write(tmp_path, lr_scheduler=None, wandb_entity=None))
    assert cfg["lr_scheduler"] == "cosine"  # Axolotl's trainer builder: `lr_scheduler or "cosine"`
    result = _convert(_write(tmp_path, lr_scheduler=None, wandb_entity=None), "llamafactory", tmp_path)
    assert result.exit_code == 0 and "wandb_entity" not in result.output


def test_named_modules_beyond_the_linear_layers_are_not_dropped(tmp_path):
    native = _write(tmp_path, lora_target_modules=["q_proj", "lm_head"])
    assert _axolotl(tmp_path, native)["lora_target_modules"] == ["q_proj", "lm_head"]
    _refused(tmp_path, native, "lora_target_modules")


def test_other_special_tokens_and_bnb_settings_stay_whole(tmp_path):
    tokens = {"pad_token": "<pad>", "eos_token": "<|eot|>"}
    kwargs = {"bnb_4bit_quant_type": "fp4", "bnb_4bit_compute_dtype": "bfloat16"}
    cfg = _axolotl(tmp_path, _write(tmp_path, special_tokens=tokens, load_in_4bit=True, adapter="qlora",
                                    bnb_config_kwargs=kwargs))
    assert cfg["special_tokens"] == tokens and cfg["bnb_config_kwargs"] == kwargs


def test_the_accepted_corpus_converts_to_axolotl(tmp_path):
    """Issue 31: every file Axolotl accepts converts back to Axolotl (the target is 98%)."""
    verdicts = json.loads((CORPUS.parent / "verdicts.json").read_text())["axolotl"]["files"]
    files = [path for path, entry in verdicts.items() if entry["verdict"] == "ok"]
    refused = [path for i, path in enumerate(files)
               if _convert(path, "axolotl", CORPUS, tmp_path / str(i)).exit_code != 0]
    assert len(refused) <= len(files) * 0.02, refused


def test_a_module_regex_stays_a_regex(tmp_path):
    """PEFT matches a string as a regular expression and a list by names: the string is kept as written."""
    regex = r"model\.layers\.\d+\.(mlp|self_attn)\.(up|down|q)_proj"
    native = _write(tmp_path, lora_target_linear=None, lora_target_modules=regex)
    cfg = _axolotl(tmp_path, native)
    assert cfg["lora_target_modules"] == regex and not cfg["lora_target_linear"]
    _refused(tmp_path, native, "lora_target_modules")


def test_no_lora_target_is_refused_elsewhere(tmp_path):
    """No target at all: PEFT's per-model default modules, which is not all-linear."""
    _refused(tmp_path, _write(tmp_path, lora_target_linear=None), "lora_target_modules")


def test_a_streamed_pretraining_dataset_is_kept_as_written(tmp_path):
    stream = [{"path": "allenai/c4", "name": "en", "type": "pretrain", "split": "train"}]
    native = _write(tmp_path, datasets=None, pretraining_dataset=stream, max_steps=10)
    cfg = _axolotl(tmp_path, native)
    assert cfg["pretraining_dataset"] == stream and "datasets" not in cfg
    _refused(tmp_path, native, "pretraining_dataset")


def test_a_mistral_common_tokenizer_gets_no_chat_template(tmp_path):
    """Axolotl refuses any chat_template with tokenizer_use_mistral_common, tokenizer_default included."""
    cfg = _axolotl(tmp_path, _write(tmp_path, tokenizer_use_mistral_common=True))
    assert "chat_template" not in cfg and cfg["tokenizer_use_mistral_common"] is True
