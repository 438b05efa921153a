"""The axolotl backend: Axolotl 0.19.0 (the default) or 0.21.0 (``axolotl train``)."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.axolotl.keys import CHANGES_TRAINING, IGNORED_SYSTEM, TABLE
from ft_recipes.backends.axolotl.templates import known
from ft_recipes.backends.base import Approximation, Backend, Capabilities, NativeCheck, compute_dtype_differs
from ft_recipes.recipe.model import ADAPTER_METHODS

HERE = Path(__file__).parent


# version -> (Python, lock file); each lock builds its own environment (the cache is keyed by the lock's hash)
ENVIRONMENTS = {"0.19.0": ("3.11", "lock.txt"), "0.21.0": ("3.12", "lock-0.21.0.txt")}


def _env(version: str):
    from ft_recipes.backends.interface import EnvSpec

    python, lock = ENVIRONMENTS[version]
    return EnvSpec(name="axolotl", version=version, python=python, lock=HERE / lock, import_name="axolotl",
                   cli="axolotl")


def _trains_empty_thought(recipe) -> bool:
    """The recipe's reference template (a reasoning template, e.g. LLaMA-Factory's qwen3) trains the empty thought
    block it puts before a reply that has none; Axolotl's chat_template strategy trains the reply and its end of
    turn only, so there the block is masked (measured by the conversion oracle's data check)."""
    from ft_recipes.recipe import templates

    reference = templates.reference(recipe.model.template)
    return bool(reference and templates.thought(reference))


APPROXIMATIONS = (
    Approximation("model.template", "the template puts an empty thought block (e.g. <think></think>) before each "
                                    "reply without one, and its reference (LLaMA-Factory) trains that block; "
                                    "Axolotl does not train it (it trains the reply and its end of turn)",
                  _trains_empty_thought, fields=()),
    Approximation("data.val.split", "Axolotl holds out validation rows without shuffling; LLaMA-Factory shuffles "
                                    "(seeded) first", lambda r: r.data.val_split > 0, fields=(), cross=True),
    Approximation("method.quant.compute_dtype", "Axolotl derives the 4-bit compute dtype from the training "
                                                "precision, not from method.quant.compute_dtype",
                  compute_dtype_differs),
    Approximation("stage", "KTO's KL term pairs each prompt with another row's completion: trl (inside Axolotl) "
                           "rotates the completions within each training batch, LLaMA-Factory within each "
                           "preprocessing batch of 1000 rows. Both start from the same loss, 0.5",
                  lambda r: r.stage == "kto", fields=()),
    # measured with `ftr tokens --diff` (docs/commands/tokens.md): its chat_template strategy trains turn spans only
    Approximation("data.train_on_prompt", "Axolotl (train_on_inputs) trains the text and end of every turn but not "
                                          "the chat template's role headers (<|im_start|>user ...); LLaMA-Factory "
                                          "and trl train every token", lambda r: r.data.train_on_prompt, fields=()),
)

def _fsdp2_bnb_8bit(cfg: dict) -> bool:
    """Axolotl's check_fsdp2_w_8bit_optimizer (utils/schemas/validation.py): bitsandbytes' 8-bit AdamW with
    FSDP2 (fsdp_version 2 at the top level or in fsdp_config) is refused."""
    fsdp = cfg.get("fsdp_config")
    if not isinstance(fsdp, dict) or not fsdp:
        return False
    version = cfg.get("fsdp_version", fsdp.get("fsdp_version"))
    return str(version) == "2" and cfg.get("optimizer") in ("adamw_8bit", "adamw_bnb_8bit")


NATIVE_CHECKS = (
    NativeCheck("optimizer", "FSDP2 is not compatible with bitsandbytes' 8-bit AdamW: Axolotl refuses the file",
                "use optimizer: adamw_torch_8bit", _fsdp2_bnb_8bit),
    NativeCheck("default_system_message", IGNORED_SYSTEM,
                "put the system turn in the data (LLaMA-Factory's default_system applies one)",
                lambda cfg: bool(cfg.get("default_system_message"))),
)

BACKEND = Backend(
    name="axolotl", version="0.19.0", title="Axolotl", main="axolotl.yaml",
    capabilities=Capabilities(
        stages=frozenset({"pt", "sft", "rm", "dpo", "orpo", "simpo", "kto", "grpo"}),
        methods=frozenset({"full", "freeze", *ADAPTER_METHODS}),
        templates=frozenset(known())),  # issue 17: any LF name, axolotl:NAME, tokenizer
    keys=TABLE, emitter="ft_recipes.backends.axolotl.emit", oracle="ft_recipes.backends.axolotl.oracle",
    templates="ft_recipes.backends.axolotl.templates", approximations=APPROXIMATIONS,
    decides={"datasets": "data.train"},
    markers=("base_model", "datasets", "sequence_len", "micro_batch_size", "adapter", "lora_r"),
    importer="ft_recipes.backends.axolotl.importer", launcher="ft_recipes.backends.axolotl.launch",
    env=_env, folder=HERE, unknown_key_fate="Axolotl silently drops it", versions=tuple(ENVIRONMENTS),
    native_checks=NATIVE_CHECKS,
    changes_training=CHANGES_TRAINING)
