"""ftr explain (provenance, native keys) and the VRAM estimator against published anchors."""

import json

from click.testing import CliRunner

from ft_recipes.cli.main import main
from ft_recipes.insight.vram import estimate
from ft_recipes.recipe.loaded import load_recipe

DATA = "data:\n  train:\n    - {path: d.jsonl, format: alpaca}\n  val: {split: 0.1}\n"


def _recipe(write, body: str, max_length: int | None = None):
    write("d.jsonl", "{}\n")
    data = DATA + (f"  max_length: {max_length}\n" if max_length else "")
    return load_recipe(write("r.yaml", "ftr: 1\n" + body + data)).recipe


def test_full_ft_7b_needs_over_100gb(write):
    r = _recipe(write, "extends: [full-sft]\nmodel: {base: Qwen/Qwen2.5-7B-Instruct}\n"
                       "train: {micro_batch_size: 1}\n")
    assert estimate(r).total_gb > 100


def test_qlora_65b_fits_48gb(write):
    # QLoRA paper (Dettmers et al. 2023): a 65B model fine-tunes on one 48 GB GPU (r 64, all layers, paged AdamW).
    r = _recipe(write, "extends: [qlora-sft]\nmodel: {base: huggyllama/llama-65b}\n"
                       "method: {lora: {r: 64, alpha: 16}}\ntrain: {micro_batch_size: 1}\n", 512)
    est = estimate(r)
    assert 33 < est.total_gb < 48


def test_qlora_7b_fits_24gb(write):
    r = _recipe(write, "extends: [qlora-sft]\nmodel: {base: Qwen/Qwen2.5-7B-Instruct}\n"
                       "train: {micro_batch_size: 1}\n", 2048)
    assert estimate(r).total_gb < 24


def test_zero3_shards_weights_and_states(write):
    base = "extends: [full-sft]\nmodel: {base: Qwen/Qwen2.5-7B-Instruct}\ntrain: {micro_batch_size: 1}\n"
    single = estimate(_recipe(write, base))
    sharded = estimate(_recipe(write, base + "hardware: {gpus: 8, deepspeed: zero3}\n"))
    assert sharded.total_gb < single.total_gb / 4


def test_gradient_checkpointing_saves_activations(write):
    on = estimate(_recipe(write, "extends: [lora-sft]\nmodel: {base: Qwen/Qwen2.5-7B-Instruct}\n"))
    off = estimate(_recipe(write, "extends: [lora-sft]\nmodel: {base: Qwen/Qwen2.5-7B-Instruct}\n"
                                  "train: {gradient_checkpointing: false}\n"))
    assert off.activations_gb > 3 * on.activations_gb


def test_unknown_model_uses_params_or_stays_silent(write):
    assert estimate(_recipe(write, "extends: [lora-sft]\nmodel: {base: acme/mystery}\n")) is None
    est = estimate(_recipe(write, "extends: [lora-sft]\nmodel: {base: acme/mystery, params: 7}\n"))
    assert est is not None and est.dims_source == "model.params"


def test_local_config_json_wins(write, tmp_path):
    write("m/config.json", json.dumps({"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
                                       "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512}))
    est = estimate(_recipe(write, "extends: [lora-sft]\nmodel: {base: ./m}\n"))
    assert est.dims_source == "config.json" and est.total_gb < 2


def test_explain_provenance_and_native_keys(write):
    write("d.jsonl", "{}\n")
    path = write("r.yaml", "ftr: 1\nextends: [qlora-sft]\nmodel: {base: Qwen/Qwen2.5-7B-Instruct}\n" + DATA +
                 "train: {epochs: 2}\n")
    result = CliRunner().invoke(main, ["explain", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    values = {v["key"]: v for v in out["values"]}
    assert values["train.epochs"]["source"] == f"{path}:8"
    assert values["train.lr"]["source"].endswith("qlora-sft.yaml:8")
    assert values["train.max_grad_norm"]["source"] == "ftr default"
    assert values["train.lr"]["native"] == {"llamafactory": "learning_rate", "axolotl": "learning_rate",
                                            "trl": "args.learning_rate"}
    assert values["method.lora.r"]["native"]["llamafactory"] == "lora_rank"
    assert out["vram_gb_per_gpu"]["total_gb"] > 0


def test_explain_text(write):
    write("d.jsonl", "{}\n")
    path = write("r.yaml", "ftr: 1\nextends: [lora-sft]\nmodel: {base: acme/x}\n" + DATA)
    result = CliRunner().invoke(main, ["explain", str(path), "-b", "axolotl"])
    assert result.exit_code == 0
    assert "lora_r" in result.output and "unknown model size" in result.output
