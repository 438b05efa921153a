"""The axolotl backend: Axolotl 0.19.0 (the default) or 0.21.0 (``axolotl train``)."""

from __future__ import annotations

from pathlib import Path

from ...recipe import ADAPTER_METHODS
from ..base import Approximation, Backend, Capabilities, compute_dtype_differs
from .keys import TABLE
from .templates import known

HERE = Path(__file__).parent


# version -> (Python, lock file); each lock builds its own environment (the cache is keyed by the lock's hash)
ENVIRONMENTS = {"0.19.0": ("3.11", "lock.txt"), "0.21.0": ("3.12", "lock-0.21.0.txt")}


def _env(version: str):
    from ...envs import EnvSpec

    python, lock = ENVIRONMENTS[version]
    return EnvSpec(name="axolotl", version=version, python=python, lock=HERE / lock, import_name="axolotl",
                   cli="axolotl")


APPROXIMATIONS = (
    Approximation("data.val.split", "Axolotl holds out validation rows without shuffling; LLaMA-Factory shuffles "
                                    "(seeded) first", lambda r: r.data.val_split > 0, fields=()),
    Approximation("method.quant.compute_dtype", "Axolotl derives the 4-bit compute dtype from the training "
                                                "precision, not from method.quant.compute_dtype",
                  compute_dtype_differs),
)

BACKEND = Backend(
    name="axolotl", version="0.19.0", title="Axolotl", main="axolotl.yaml",
    capabilities=Capabilities(
        stages=frozenset({"pt", "sft", "rm", "dpo", "orpo", "simpo", "grpo"}),
        methods=frozenset({"full", "freeze", *ADAPTER_METHODS}),
        templates=frozenset(known())),  # issue 17: any LF name, axolotl:NAME, tokenizer
    keys=TABLE, emitter="ft_recipes.backends.axolotl.emit", approximations=APPROXIMATIONS,
    markers=("base_model", "datasets", "sequence_len", "micro_batch_size", "adapter", "lora_r"),
    importer="ft_recipes.backends.axolotl.importer", launcher="ft_recipes.backends.axolotl.launch",
    env=_env, folder=HERE, unknown_key_fate="Axolotl silently drops it", versions=tuple(ENVIRONMENTS))
