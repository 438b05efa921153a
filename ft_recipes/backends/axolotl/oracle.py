"""What Axolotl's validate_config + normalize_config should hold for the structural parts of a recipe."""

from __future__ import annotations

from ft_recipes.backends.axolotl.keys import RL


def structural(recipe):
    t, d, e, o, m = recipe.train, recipe.data, recipe.eval, recipe.output, recipe.method
    yield "stage", "rl", RL.get(recipe.stage)
    quant = m.quant
    if m.type in ("lora", "qlora"):
        yield "method.type", "adapter", "qlora" if m.type == "qlora" or (quant and quant.bits == 4) else "lora"
        yield "method.lora.target", "lora_target_linear", m.lora.target == "all-linear"
    else:
        yield "method.type", "adapter", None
    yield "method.quant.bits", "load_in_4bit", bool(quant and quant.bits == 4)
    yield "method.quant.bits", "load_in_8bit", bool(quant and quant.bits == 8)
    if m.freeze:
        yield "method.freeze.trainable_layers", "unfrozen_parameters.length", abs(m.freeze.trainable_layers)
    if recipe.preference and recipe.stage in RL and recipe.stage != "grpo":
        yield "preference.beta", "orpo_alpha" if recipe.stage == "orpo" else "rl_beta", recipe.preference.beta
    if t.scheduler == "cosine_with_min_lr":
        yield "train.min_lr", "cosine_min_lr_ratio.times_lr", t.min_lr
    yield "train.precision", "bf16", t.precision == "bf16"
    yield "train.precision", "fp16", t.precision == "fp16"
    yield "train.gradient_checkpointing", "gradient_checkpointing", bool(t.gradient_checkpointing)
    yield "train.gradient_checkpointing", "activation_offloading", t.gradient_checkpointing == "offload"
    if e.per_epoch and d.has_validation:
        yield "eval.per_epoch", "evals_per_epoch", e.per_epoch
    else:
        yield "eval.every", "eval_strategy", e.strategy if d.has_validation else "no"
        if e.strategy == "steps" and e.steps and d.has_validation:
            yield "eval.steps", "eval_steps", e.steps
    yield "eval.batch_size", "eval_batch_size", e.batch_size or t.micro_batch_size
    if o.per_epoch:
        yield "output.per_epoch", "saves_per_epoch", o.per_epoch
    else:
        yield "output.save", "save_strategy", o.save
        if o.save == "steps" and o.save_steps:
            yield "output.save_steps", "save_steps", o.save_steps
