"""What LLaMA-Factory's parser should hold for the structural parts of a recipe (the oracle tests compare it
with ``get_train_args``'s effective values; the plain keys' expectations come from keys.py)."""

from __future__ import annotations

from ft_recipes.backends.llamafactory.emit import FINETUNING, STAGES, _ratio, _strategy, reference


def structural(recipe):
    t, d, e, o = recipe.train, recipe.data, recipe.eval, recipe.output
    stage, loss = STAGES[recipe.stage]
    yield "stage", "finetuning.stage", stage
    if loss:
        yield "stage", "finetuning.pref_loss", loss
    for key, value in reference(recipe).items():
        yield "model.adapter", f"finetuning.{key}", value
    yield "method.type", "finetuning.finetuning_type", FINETUNING[recipe.method.type]
    yield "train.max_steps", "training.max_steps", t.max_steps if t.max_steps is not None else -1
    yield "train.warmup_steps", "training.warmup_steps", t.warmup_steps if t.warmup_steps is not None \
        else t.warmup_ratio or 0.0
    yield "train.precision", "training.bf16", t.precision == "bf16"
    yield "train.precision", "training.fp16", t.precision == "fp16"
    yield "train.gradient_checkpointing", "model.disable_gradient_checkpointing", not t.gradient_checkpointing
    yield "train.gradient_checkpointing", "model.use_unsloth_gc", t.gradient_checkpointing == "offload"
    yield "data.packing", "data.packing", d.packing
    strategy = _strategy(e.strategy, e.per_epoch) if d.has_validation else "no"
    yield "eval.every", "training.eval_strategy", strategy
    if strategy == "steps" and (e.steps or _ratio(e.per_epoch, t)):
        yield "eval.steps", "training.eval_steps", e.steps or _ratio(e.per_epoch, t)
    yield "eval.batch_size", "training.per_device_eval_batch_size", e.batch_size or t.micro_batch_size
    yield "output.save", "training.save_strategy", _strategy(o.save, o.per_epoch)
    if _strategy(o.save, o.per_epoch) == "steps":
        yield "output.save_steps", "training.save_steps", o.save_steps or _ratio(o.per_epoch, t) or 500
    if recipe.method.quant:  # None: bitsandbytes' own default, float32
        yield "method.quant.compute_dtype", "model.compute_dtype", \
            {"bf16": "torch.bfloat16", "fp16": "torch.float16", "fp32": None}[recipe.method.quant.compute_dtype]
