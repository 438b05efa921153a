"""What the trl backend's train.py builds for the structural parts of a recipe."""

from __future__ import annotations

from ft_recipes.backends.trl.emit import chat_rows
from ft_recipes.backends.trl.templates import chat_template, marked
from ft_recipes.recipe.model import PROMPT_METHODS


def structural(recipe):
    t, d, e = recipe.train, recipe.data, recipe.eval
    yield "stage", "config.stage", "dpo" if recipe.stage == "dpo" else "sft"
    yield "method.type", "config.method.type", recipe.method.type
    yield "model.template", "config.chat_template", chat_template(recipe.model.template)
    if chat_rows(recipe):
        replies = not d.train_on_prompt
        yield "data.train_on_prompt", "args.assistant_only_loss", replies and marked(recipe.model.template)
        yield "data.train_on_prompt", "args.completion_only_loss", replies and not marked(recipe.model.template)
    yield "train.warmup_steps", "args.warmup_steps", t.warmup_steps if t.warmup_steps is not None \
        else t.warmup_ratio or 0.0
    yield "train.precision", "args.bf16", t.precision == "bf16"
    yield "train.precision", "args.fp16", t.precision == "fp16"
    checkpointing = bool(t.gradient_checkpointing) and recipe.method.type not in PROMPT_METHODS
    yield "train.gradient_checkpointing", "args.gradient_checkpointing", checkpointing
    yield ("train.gradient_checkpointing", "args.activation_offloading",
           checkpointing and t.gradient_checkpointing == "offload")
    yield "eval.every", "args.eval_strategy", e.strategy if d.has_validation else "no"
    if e.strategy == "steps" and e.steps and d.has_validation:
        yield "eval.steps", "args.eval_steps", e.steps
    yield "eval.batch_size", "args.per_device_eval_batch_size", e.batch_size or t.micro_batch_size
    if t.max_steps is None:
        yield "train.max_steps", "args.max_steps", -1
