"""FTR4xx: precision, quantization and memory."""

from __future__ import annotations

from ft_recipes.lint.rule import Context, Rule, rule


def is_qlora(ctx: Context) -> bool:
    quant = ctx.recipe.method.quant
    return ctx.recipe.method.is_adapter and quant is not None and quant.bits == 4


@rule
class QloraOptimizer(Rule):
    code = "FTR401"
    name = "qlora-optimizer"
    messages = ('optimizer',)
    options = ('optimizers',)
    severity = "info"
    summary = "QLoRA without a paged or 8-bit optimizer."
    what = "For 4-bit LoRA, reports an optimizer not in `optimizers` (paged or 8-bit ones)."
    why = "QLoRA = NF4 + double quantization + paged optimizers: paging absorbs the memory spikes of long sequences."
    bad = "method: {type: qlora}\ntrain: {optimizer: adamw_torch}\n"
    good = "method: {type: qlora}\ntrain: {optimizer: paged_adamw_8bit}\n"
    fix = "Use `train.optimizer: paged_adamw_8bit`."

    def check(self, ctx: Context) -> None:
        optimizer = ctx.recipe.train.optimizer
        if is_qlora(ctx) and optimizer not in ctx["optimizers"]:
            ctx.report(("train", "optimizer"), "optimizer", optimizer=optimizer)


@rule
class QloraQuant(Rule):
    code = "FTR402"
    name = "qlora-quant-settings"
    messages = ('quant_type', 'double_quant', 'compute_dtype')
    severity = "warning"
    summary = "QLoRA quant type not nf4, double quantization off, or compute dtype fp32."
    what = "For 4-bit quantization, checks `method.quant.type`, `double_quant` and `compute_dtype`."
    why = ("The QLoRA paper shows NF4 beats FP4 for normally distributed weights, double quantization saves ~0.37 bits "
           "per parameter at no cost, and bf16 compute is as accurate as fp32 and much faster.")
    bad = "method:\n  type: qlora\n  quant: {bits: 4, type: fp4, double_quant: false}\n"
    good = "method:\n  type: qlora\n  quant: {bits: 4, type: nf4, double_quant: true, compute_dtype: bf16}\n"
    fix = "Use `type: nf4`, `double_quant: true` and `compute_dtype: bf16` (fp16 on GPUs without bf16)."

    def check(self, ctx: Context) -> None:
        quant = ctx.recipe.method.quant
        if quant is None or quant.bits != 4:
            return
        if quant.type != "nf4":
            ctx.report(("method", "quant", "type"), "quant_type", qtype=quant.type)
        if not quant.double_quant:
            ctx.report(("method", "quant", "double_quant"), "double_quant")
        if quant.compute_dtype == "fp32":
            ctx.report(("method", "quant", "compute_dtype"), "compute_dtype")


@rule
class GradientCheckpointing(Rule):
    code = "FTR403"
    name = "gradient-checkpointing-off"
    messages = ('disabled',)
    options = ('min_params_b',)
    severity = "warning"
    summary = "Gradient checkpointing off for full fine-tuning of a >= 7B model."
    what = ("For full fine-tuning, reports `train.gradient_checkpointing: false` when the model size is known "
            "(config.json, the bundled table, or `model.params`) and at least `min_params_b` billion.")
    why = "Activations of every layer are kept for the backward pass; at 7B and above they alone exceed a GPU."
    bad = "model: {base: meta-llama/Meta-Llama-3-8B}\nmethod: {type: full}\ntrain: {gradient_checkpointing: false}\n"
    good = "model: {base: meta-llama/Meta-Llama-3-8B}\nmethod: {type: full}\ntrain: {gradient_checkpointing: true}\n"
    fix = "Set `train.gradient_checkpointing: true` (about 20-30% slower, far less memory)."

    def check(self, ctx: Context) -> None:
        from ft_recipes.insight.vram import dims_for

        recipe = ctx.recipe
        if recipe.method.type != "full" or recipe.train.gradient_checkpointing:
            return
        dims = dims_for(recipe)
        if dims is not None and dims.params / 1e9 >= ctx["min_params_b"]:
            ctx.report(("train", "gradient_checkpointing"), "disabled", params=dims.params / 1e9)


@rule
class VramEstimate(Rule):
    code = "FTR404"
    name = "vram-exceeds-gpu"
    messages = ('exceeds',)
    options = ('margin',)
    severity = "warning"
    summary = "Estimated peak VRAM per GPU exceeds the declared hardware.gpu_memory_gb."
    what = ("Compares the `ftr explain` estimate (weights, adapters, gradients, optimizer states, activations, "
            "ZeRO sharding) with `hardware.gpu_memory_gb`, when both the model size and the GPU memory are known.")
    why = ("An out-of-memory error comes minutes into a run, after the model and data are loaded; the estimate "
           "is accurate to roughly +-20%, so the rule only fires with `margin` to spare.")
    bad = "model: {base: Qwen/Qwen2.5-7B-Instruct}\nmethod: {type: full}\nhardware: {gpu_memory_gb: 24}\n"
    good = "model: {base: Qwen/Qwen2.5-7B-Instruct}\nmethod: {type: qlora}\nhardware: {gpu_memory_gb: 24}\n"
    fix = ("Use QLoRA or LoRA, lower micro_batch_size or max_length, turn on gradient checkpointing, use an 8-bit "
           "optimizer, or shard with DeepSpeed ZeRO-3 over more GPUs.")

    def check(self, ctx: Context) -> None:
        from ft_recipes.insight.vram import estimate

        recipe = ctx.recipe
        if recipe.hardware.gpu_memory_gb is None:
            return
        est = estimate(recipe)
        if est is not None and est.total_gb > recipe.hardware.gpu_memory_gb * ctx["margin"]:
            ctx.report(("hardware", "gpu_memory_gb"), "exceeds", need=est.total_gb,
                       have=recipe.hardware.gpu_memory_gb)


@rule
class Precision(Rule):
    code = "FTR405"
    name = "precision-unsupported"
    messages = ('fp16_model', 'bf16_hardware')
    options = ('bf16_only',)
    severity = "error"
    summary = "fp16 with a bf16-only model family, or bf16 on hardware declared without bf16."
    what = ("Reports `train.precision: fp16` for families in `bf16_only`, and bf16 precision or bf16 quant compute "
            "dtype when `hardware.bf16: false` is declared.")
    why = ("Gemma 2/3 activations overflow the fp16 range and the loss becomes NaN. GPUs before Ampere (V100, T4) have "
           "no bf16: the run fails at start-up or falls back to slow emulation.")
    bad = "model: {base: google/gemma-2-9b}\ntrain: {precision: fp16}\n"
    good = "model: {base: google/gemma-2-9b}\ntrain: {precision: bf16}\n"
    fix = "Use bf16 on Ampere or newer GPUs; fp16 (or fp32) only for families trained in fp16, on older GPUs."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        base = recipe.model.base.lower()
        if recipe.train.precision == "fp16" and any(f in base for f in ctx["bf16_only"]):
            ctx.report(("train", "precision"), "fp16_model", base=recipe.model.base)
        if recipe.hardware.bf16:
            return
        if recipe.train.precision == "bf16":
            ctx.report(("train", "precision"), "bf16_hardware")
        quant = recipe.method.quant
        if quant is not None and quant.compute_dtype == "bf16" and recipe.train.precision != "bf16":
            ctx.report(("method", "quant", "compute_dtype"), "bf16_hardware")
