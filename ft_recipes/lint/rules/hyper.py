"""FTR1xx: hyperparameters, judged by method and stage with the ranges of the rule pack."""

from __future__ import annotations

from ft_recipes.lint.rule import Context, Rule, rule


def method_group(ctx: Context, method: str) -> str | None:
    return ctx.get("method_groups", {}).get(method)


@rule
class LearningRate(Rule):
    code = "FTR101"
    name = "learning-rate-out-of-range"
    messages = ('error_low', 'warn_low', 'warn_high', 'error_high')
    options = ('method_groups', 'stage_groups', 'ranges')
    severity = "warning"
    summary = "Learning rate outside the range for the method and stage (LoRA vs full, SFT vs DPO)."
    what = ("Checks `train.lr` against the range for the method (LoRA/QLoRA, full, freeze) and the stage "
            "(pt/sft/rm use the SFT ranges; dpo/orpo/kto/simpo the preference ranges). The same rate can be right "
            "for one and wrong for another: 5e-6 is a good full DPO rate and a useless LoRA SFT rate. Prompt-learning "
            "methods and the RL stages (ppo, grpo) are not checked.")
    why = ("LoRA updates a small low-rank delta and needs about 10x the full fine-tuning rate: at <= 1e-5 the adapter "
           "barely moves and the run is wasted (error). Full fine-tuning at >= 1e-4 destroys the pretrained weights "
           "(error). Preference optimisation runs an order of magnitude lower than SFT (upstream DPO examples use "
           "5e-6 to 5e-7).")
    bad = "method: {type: lora}\nstage: sft\ntrain: {lr: 1.0e-5}\n"
    good = "method: {type: lora}\nstage: sft\ntrain: {lr: 1.0e-4}\n"
    fix = "Set `train.lr` inside the recommended range quoted in the message; override ranges in a rule pack."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        group = method_group(ctx, recipe.method.type)
        stage = ctx.get("stage_groups", {}).get(recipe.stage)
        limits = ctx.get("ranges", {}).get(group, {}).get(stage) if group and stage else None
        if not limits:
            return
        lr = recipe.train.lr
        low, high = (limits.get("recommended") or [0, 0])[:2]
        kind = _lr_kind(lr, limits)
        if kind:
            ctx.report(("train", "lr"), kind, lr=lr, low=low, high=high, method=recipe.method.type, stage=recipe.stage)


def _lr_kind(lr: float, limits: dict) -> str | None:
    tests = (("error_at_or_below", "error_low", lambda v: lr <= v),
             ("error_at_or_above", "error_high", lambda v: lr >= v),
             ("warn_below", "warn_low", lambda v: lr < v),
             ("warn_above", "warn_high", lambda v: lr > v))
    for key, kind, test in tests:
        if limits.get(key) is not None and test(limits[key]):
            return kind
    return None


@rule
class LoraRank(Rule):
    code = "FTR102"
    name = "lora-rank-out-of-range"
    messages = ('too_high', 'too_low')
    options = ('max', 'min')
    severity = "warning"
    summary = "LoRA rank above 64 or below 2."
    what = "Checks `method.lora.r` of LoRA and QLoRA recipes against `min` and `max` of the rule pack."
    why = ("Rank 8-32 covers most tasks: the LoRA paper finds r 1-8 match r 64 on GPT-3, and the project seeds forbid "
           "r > 64 (overfits, VRAM grows, no gain over 32). Math and code sometimes use 64-128, so this is a warning.")
    bad = "method:\n  type: lora\n  lora: {r: 256, alpha: 512}\n"
    good = "method:\n  type: lora\n  lora: {r: 16, alpha: 32}\n"
    fix = "Use r 8-32 with alpha = 2r; raise it only when the validation loss shows underfitting."

    def check(self, ctx: Context) -> None:
        lora = ctx.recipe.method.lora
        if lora is None:
            return
        if lora.r > ctx["max"]:
            ctx.report(("method", "lora", "r"), "too_high", r=lora.r)
        elif lora.r < ctx["min"]:
            ctx.report(("method", "lora", "r"), "too_low", r=lora.r)


@rule
class LoraAlpha(Rule):
    code = "FTR103"
    name = "lora-alpha-ratio"
    messages = ('too_low', 'too_high')
    options = ('min_ratio', 'max_ratio')
    severity = "warning"
    summary = "LoRA alpha below r or above 4r (updates under- or over-scaled)."
    what = "Checks `method.lora.alpha / method.lora.r` against `min_ratio` and `max_ratio`; skipped with rsLoRA."
    why = ("The LoRA update is scaled by alpha/r. alpha = r or 2r is the convention; alpha < r shrinks every update "
           "(the run behaves as if the learning rate were lower), alpha > 4r inflates it. rsLoRA scales by "
           "alpha/sqrt(r), so the ratio means something else there.")
    bad = "method:\n  type: lora\n  lora: {r: 32, alpha: 8}\n"
    good = "method:\n  type: lora\n  lora: {r: 32, alpha: 64}\n"
    fix = "Set alpha to r or 2r (or enable rslora: true and keep alpha as it is)."

    def check(self, ctx: Context) -> None:
        lora = ctx.recipe.method.lora
        if lora is None or lora.rslora:
            return
        ratio = lora.alpha / lora.r
        fields = {"alpha": lora.alpha, "r": lora.r, "ratio": ratio, "twice": 2 * lora.r}
        causes = (("method", "lora", "r"),)
        if ratio < ctx["min_ratio"]:
            ctx.report(("method", "lora", "alpha"), "too_low", causes=causes, **fields)
        elif ratio > ctx["max_ratio"]:
            ctx.report(("method", "lora", "alpha"), "too_high", causes=causes, **fields)


@rule
class LoraDropout(Rule):
    code = "FTR104"
    name = "lora-dropout-out-of-range"
    messages = ('too_high',)
    options = ('max',)
    severity = "warning"
    summary = "LoRA dropout above 0.5."
    what = "Checks `method.lora.dropout` against `max` of the rule pack (the schema refuses values outside 0-1)."
    why = ("Above 0.5 most of each adapter update is dropped and training stalls; 0.05-0.1 is usual, "
           "0.1-0.2 for small data.")
    bad = "method:\n  type: lora\n  lora: {r: 16, alpha: 32, dropout: 0.7}\n"
    good = "method:\n  type: lora\n  lora: {r: 16, alpha: 32, dropout: 0.05}\n"
    fix = "Use 0.05-0.1 (0.1-0.2 for small datasets)."

    def check(self, ctx: Context) -> None:
        lora = ctx.recipe.method.lora
        if lora is not None and lora.dropout > ctx["max"]:
            ctx.report(("method", "lora", "dropout"), "too_high", dropout=lora.dropout)


@rule
class WeightDecay(Rule):
    code = "FTR105"
    name = "weight-decay-out-of-range"
    messages = ('too_high',)
    options = ('max',)
    severity = "warning"
    summary = "Weight decay above 0.1."
    what = "Checks `train.weight_decay` against `max` of the rule pack."
    why = ("Fine-tuning starts from good weights; strong decay pulls them towards zero. "
           "0.01-0.1 is the usual AdamW range.")
    bad = "train: {weight_decay: 0.5}\n"
    good = "train: {weight_decay: 0.01}\n"
    fix = "Use 0.01-0.1, or 0 for short LoRA runs."

    def check(self, ctx: Context) -> None:
        wd = ctx.recipe.train.weight_decay
        if wd > ctx["max"]:
            ctx.report(("train", "weight_decay"), "too_high", wd=wd)


@rule
class Warmup(Rule):
    code = "FTR106"
    name = "warmup-out-of-range"
    messages = ('none', 'too_low', 'too_high')
    options = ('min_ratio', 'max_ratio')
    severity = "warning"
    summary = "No learning-rate warmup, or a warmup ratio outside 0.01-0.2."
    what = ("Checks `train.warmup_ratio` (or `train.warmup_steps / train.max_steps` when the step count is known) "
            "against `min_ratio` and `max_ratio`; no warmup at all is reported too.")
    why = ("Adam's first steps use poor second-moment estimates; without warmup the first updates at the peak rate can "
           "damage the pretrained weights. A long warmup wastes the run below the peak rate.")
    bad = "train: {warmup_ratio: 0.0}\n"
    good = "train: {warmup_ratio: 0.03}\n"
    fix = "Set `train.warmup_ratio` to 0.03-0.1."

    def check(self, ctx: Context) -> None:
        train = ctx.recipe.train
        if train.warmup_steps is not None:
            if train.warmup_steps == 0:
                ctx.report(("train", "warmup_steps"), "none")
            elif train.max_steps:
                self._ratio(ctx, train.warmup_steps / train.max_steps, ("train", "warmup_steps"))
            return
        if not train.warmup_ratio:
            ctx.report(("train", "warmup_ratio"), "none")
        else:
            self._ratio(ctx, train.warmup_ratio, ("train", "warmup_ratio"))

    @staticmethod
    def _ratio(ctx: Context, ratio: float, path: tuple) -> None:
        if ratio < ctx["min_ratio"]:
            ctx.report(path, "too_low", ratio=ratio)
        elif ratio > ctx["max_ratio"]:
            ctx.report(path, "too_high", ratio=ratio)


@rule
class BatchSize(Rule):
    code = "FTR107"
    name = "batch-size-out-of-range"
    messages = ('small', 'large', 'accum', 'micro_one')
    options = ('min_effective', 'max_effective', 'max_grad_accum')
    severity = "warning"
    summary = "Effective batch size below 8 or above 1024; grad_accum above 32; micro batch 1 without packing."
    what = ("Computes the effective batch (micro batch x grad_accum x GPUs x nodes) and checks it against "
            "`min_effective` and `max_effective`; checks grad_accum against `max_grad_accum`; an info for micro "
            "batch 1 without packing.")
    why = ("Below 8 the gradient is noisy and the run unstable at fine-tuning learning rates; above 1024 an epoch has "
           "few optimizer steps. Large accumulation makes steps slow for no memory gain over a larger micro batch.")
    bad = "train: {micro_batch_size: 1, grad_accum: 2}\n"
    good = "train: {micro_batch_size: 4, grad_accum: 4}\n"
    fix = "Aim for an effective batch of 16-64: raise grad_accum when memory is tight, the micro batch otherwise."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        train = recipe.train
        batch = recipe.effective_batch
        devices = max(recipe.hardware.gpus, 1) * recipe.hardware.nodes
        fields = {"batch": batch, "micro": train.micro_batch_size, "accum": train.grad_accum, "devices": devices,
                  "min": ctx["min_effective"], "max": ctx["max_effective"]}
        if batch < ctx["min_effective"]:
            ctx.report(("train", "grad_accum"), "small", **fields)
        elif batch > ctx["max_effective"]:
            ctx.report(("train", "grad_accum"), "large", **fields)
        if train.grad_accum > ctx["max_grad_accum"]:
            ctx.report(("train", "grad_accum"), "accum", **fields)
        if train.micro_batch_size == 1 and not recipe.data.packing and not recipe.is_preference:
            ctx.report(("train", "micro_batch_size"), "micro_one", **fields)


@rule
class Epochs(Rule):
    code = "FTR108"
    name = "epochs-out-of-range"
    messages = ('many', 'under_one')
    options = ('max_epochs',)
    severity = "warning"
    summary = "Too many epochs for the method (full > 5, LoRA > 20); an info below one epoch."
    what = "Checks `train.epochs` against `max_epochs` per method group; skipped when `train.max_steps` decides."
    why = ("Repeated passes over a fine-tuning set make the model memorise it: full fine-tuning overfits after a few "
           "epochs, LoRA somewhat later.")
    bad = "method: {type: full}\ntrain: {epochs: 10}\n"
    good = "method: {type: full}\ntrain: {epochs: 3}\n"
    fix = "Use 1-3 epochs for full fine-tuning and 3-10 for LoRA, and watch the validation loss."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        epochs = recipe.train.epochs
        if epochs is None or recipe.train.max_steps is not None:
            return
        group = {"lora": "adapter", "qlora": "adapter", "oft": "adapter"}.get(recipe.method.type, recipe.method.type)
        limit = ctx.get("max_epochs", {}).get(group)
        if limit is not None and epochs > limit:
            ctx.report(("train", "epochs"), "many", epochs=epochs, method=recipe.method.type, max=limit)
        elif epochs < 1:
            ctx.report(("train", "epochs"), "under_one", epochs=epochs)


@rule
class LoraTargets(Rule):
    code = "FTR109"
    name = "lora-target-unknown"
    messages = ('unknown', 'embeddings')
    options = ('llama_like', 'modules', 'embeddings')
    severity = "warning"
    summary = "LoRA target modules that cannot exist in the model family; info for embeddings/lm_head."
    what = ("For Llama-like families (Llama, Qwen, Mistral, Gemma ...), checks each name in `method.lora.target` "
            "against the family's module names. Attention-only vs all-linear is a choice and is not reported. "
            "Unknown families are not checked.")
    why = "PEFT raises only when no target matches at all; a misspelt name among valid ones is silently not adapted."
    bad = "model: {base: Qwen/Qwen2.5-7B}\nmethod:\n  lora: {target: [q_proj, v_porj]}\n"
    good = "model: {base: Qwen/Qwen2.5-7B}\nmethod:\n  lora: {target: [q_proj, v_proj]}\n"
    fix = ("Use `all-linear`, or the module names of the family "
           "(q_proj k_proj v_proj o_proj gate_proj up_proj down_proj).")

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        lora = recipe.method.lora
        if lora is None or isinstance(lora.target, str):
            return
        base = recipe.model.base.lower()
        family = next((f for f in ctx["llama_like"] if f in base), None)
        for i, module in enumerate(lora.target):
            path = ("method", "lora", "target", i)
            if module in ctx["embeddings"]:
                ctx.report(path, "embeddings", module=module)
            elif family and module not in ctx["modules"]:
                ctx.report(path, "unknown", module=module, family=family.strip("-"),
                           known=" ".join(ctx["modules"][:7]))


@rule
class ConstantSchedule(Rule):
    code = "FTR110"
    name = "no-lr-decay"
    messages = ('constant',)
    options = ('schedulers',)
    severity = "info"
    summary = "Constant learning rate on a multi-epoch run."
    what = "Reports `train.scheduler` constant or constant_with_warmup when the run is longer than one epoch."
    why = ("Decaying the rate (cosine, linear) lets later epochs refine instead of oscillate; "
           "all upstream examples decay.")
    bad = "train: {epochs: 3, scheduler: constant}\n"
    good = "train: {epochs: 3, scheduler: cosine}\n"
    fix = "Use `scheduler: cosine` (or linear)."

    def check(self, ctx: Context) -> None:
        train = ctx.recipe.train
        if train.scheduler in ctx["schedulers"] and train.epochs is not None and train.epochs > 1 \
                and train.max_steps is None:
            ctx.report(("train", "scheduler"), "constant", scheduler=train.scheduler, epochs=train.epochs)
