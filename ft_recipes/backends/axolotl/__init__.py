"""The axolotl backend: Axolotl 0.19 (``axolotl train``)."""

from __future__ import annotations

from pathlib import Path

from ...recipe import ADAPTER_METHODS
from ..base import Approximation, Backend, Capabilities
from .keys import TABLE
from .templates import TEMPLATES

HERE = Path(__file__).parent
CHATML_FAMILY = ("chatml", "qwen", "qwen2.5", "qwen3")


def _env():
    from ...envs import EnvSpec

    return EnvSpec(name="axolotl", version="0.19.0", python="3.11", lock=HERE / "lock.txt",
                   import_name="axolotl", cli="axolotl")


def _compute_dtype_differs(recipe) -> bool:
    quant = recipe.method.quant
    derived = {"bf16": "bf16", "fp16": "fp16"}.get(recipe.train.precision, "fp32")
    return bool(quant and quant.bits == 4 and quant.compute_dtype != derived)


APPROXIMATIONS = (
    Approximation("model.template", "LLaMA-Factory's qwen template adds Qwen's default system prompt to rows without "
                                    "one; Axolotl's qwen_25 renders the tokenizer's template",
                  lambda r: r.model.template == "qwen", fields=()),
    Approximation("model.template", "Axolotl masks the newline after <|im_end|> that LLaMA-Factory trains (one token "
                                    "per assistant turn; token ids are otherwise identical)",
                  lambda r: r.model.template in CHATML_FAMILY and r.stage == "sft", fields=()),
    Approximation("data.val.split", "Axolotl holds out validation rows without shuffling; LLaMA-Factory shuffles "
                                    "(seeded) first", lambda r: r.data.val_split > 0, fields=()),
    Approximation("method.quant.compute_dtype", "Axolotl derives the 4-bit compute dtype from the training "
                                                "precision, not from method.quant.compute_dtype",
                  _compute_dtype_differs),
)

BACKEND = Backend(
    name="axolotl", version="0.19.0", title="Axolotl", main="axolotl.yaml",
    capabilities=Capabilities(
        stages=frozenset({"pt", "sft", "rm", "dpo", "orpo", "simpo", "grpo"}),
        methods=frozenset({"full", "freeze", *ADAPTER_METHODS}),
        templates=frozenset(TEMPLATES)),
    keys=TABLE, emitter="ft_recipes.backends.axolotl.emit", approximations=APPROXIMATIONS,
    markers=("base_model", "datasets", "sequence_len", "micro_batch_size", "adapter", "lora_r"),
    importer="ft_recipes.backends.axolotl.importer", launcher="ft_recipes.backends.axolotl.launch",
    env=_env, folder=HERE, unknown_key_fate="Axolotl silently drops it")
