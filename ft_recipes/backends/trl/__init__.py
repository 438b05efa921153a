"""The trl backend: plain transformers + peft + trl through an emitted script."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.base import Approximation, Backend, Capabilities
from ft_recipes.backends.keys import seed_set
from ft_recipes.backends.trl.keys import TABLE
from ft_recipes.recipe.model import ADAPTER_METHODS, PROMPT_METHODS

HERE = Path(__file__).parent


def _known() -> set[str]:
    from ft_recipes.recipe.templates import known

    return known()


def _marked(name) -> bool:
    from ft_recipes.backends.trl.templates import marked

    return marked(name)


def _env(version: str):
    from ft_recipes.backends.interface import EnvSpec

    return EnvSpec(name="trl", version=version, python="3.11", lock=HERE / "lock.txt", import_name="trl",
                   cli="python")


def _replies_required(recipe) -> tuple[str, ...]:
    """train.py's assistant role names when SFT on chat rows trains only the replies (``assistant_only_loss``: a
    template with generation markers, the prompt not trained): trl's SFTTrainer then stops the whole run on a row
    with no assistant turn ("at least one example has no assistant tokens")."""
    from ft_recipes.backends.trl.emit import chat_rows

    try:
        needed = chat_rows(recipe) and not recipe.data.train_on_prompt and _marked(recipe.model.template)
    except KeyError:  # a template trl has no rendering for (FTR1xx reports it)
        return ()
    return ("gpt", "assistant") if needed else ()


APPROXIMATIONS = (
    Approximation("train.seed", "train.seed is unset (an Axolotl config without seed, whose data shuffles are "
                                "unseeded): trl seeds its trainer and data shuffles with 42",
                  lambda r: not seed_set(r)),
    Approximation("data.train", "without a template ftr generates (the tokenizer's own, or an Axolotl template), "
                                "multi-turn rows train on the last assistant turn only (prompt/completion form)",
                  lambda r: r.stage == "sft" and not _marked(r.model.template), fields=()),
    Approximation("train.gradient_checkpointing", "virtual-token methods do not support gradient checkpointing: "
                                                  "the trl backend switches it off",
                  lambda r: r.method.type in PROMPT_METHODS and r.train.gradient_checkpointing),
)

BACKEND = Backend(
    name="trl", version="1.9.0", title="the trl backend", main="trl.json",
    capabilities=Capabilities(stages=frozenset({"sft", "pt", "dpo"}),
                              methods=frozenset({"full", "oft", *ADAPTER_METHODS, *PROMPT_METHODS}),
                              templates=frozenset(_known())),  # the names trl gets a template for
    keys=TABLE, emitter="ft_recipes.backends.trl.emit", oracle="ft_recipes.backends.trl.oracle",
    templates="ft_recipes.backends.trl.templates", approximations=APPROXIMATIONS,
    launcher="ft_recipes.backends.trl.launch", env=_env, folder=HERE, replies_required=_replies_required)
