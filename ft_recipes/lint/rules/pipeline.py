"""FTR6xx: across the stages of a pipeline (``stages:``). Each rule compares a stage with the stage it starts
from (``recipe.parent``, set by ft_recipes.recipe.stages); a recipe without stages has no parent and is not checked."""

from __future__ import annotations

from ft_recipes.lint.rule import Context, Rule, rule
from ft_recipes.lint.rules.hyper import method_group

SFT_STAGES = ("pt", "sft")


@rule
class PreferenceRateAfterSft(Rule):
    code = "FTR601"
    name = "preference-lr-not-below-sft"
    messages = ('not_below', 'out_of_range')
    options = ('stages', 'max_ratio', 'method_groups', 'ranges')
    severity = "warning"
    summary = "A preference stage after SFT whose learning rate is not well below the SFT stage's."
    what = ("For a dpo/orpo/kto/simpo stage that starts from a pt/sft stage: reports a `train.lr` above `max_ratio` "
            "times the SFT stage's rate, or outside the range for preference tuning after SFT (`ranges`, by method "
            "group: LoRA/QLoRA, full).")
    why = ("Preference optimisation refines the SFT policy with a loss whose gradients are large near the start: at "
           "the SFT rate it moves the policy far from the reference in a few steps and the chosen and rejected "
           "log-probabilities both collapse. The published DPO recipes use 10 to 100 times lower rates than SFT.")
    bad = ("stages:\n  - {name: sft, train: {lr: 1.0e-4}}\n"
           "  - {name: dpo, stage: dpo, train: {lr: 1.0e-4}}\n")
    good = ("stages:\n  - {name: sft, train: {lr: 1.0e-4}}\n"
            "  - {name: dpo, stage: dpo, train: {lr: 5.0e-6}}\n")
    fix = "Lower the preference stage's `train.lr` into the range quoted in the message."

    def check(self, ctx: Context) -> None:
        recipe, parent = ctx.recipe, ctx.recipe.parent
        if parent is None or recipe.stage not in ctx["stages"] or parent.stage not in SFT_STAGES:
            return
        lr, before = recipe.train.lr, parent.train.lr
        limits = ctx.get("ranges", {}).get(method_group(ctx, recipe.method.type))
        if lr > ctx["max_ratio"] * before:
            ctx.report(("train", "lr"), "not_below", lr=lr, sft_lr=before, parent=recipe.parent.stage_name or "sft")
        elif limits and not limits[0] <= lr <= limits[1]:
            ctx.report(("train", "lr"), "out_of_range", lr=lr, low=limits[0], high=limits[1],
                       method=recipe.method.type, stage=recipe.stage)


@rule
class PreferenceBeta(Rule):
    code = "FTR602"
    name = "preference-beta-out-of-range"
    messages = ('out_of_range',)
    options = ('min', 'max')
    severity = "warning"
    summary = "A DPO stage of a pipeline with preference.beta outside 0.01-0.5."
    what = "For a dpo stage of a pipeline: reports `preference.beta` outside `min` to `max`."
    why = ("beta weighs the KL penalty that keeps the policy near the SFT reference: far below 0.01 the policy drifts "
           "and over-optimises the pairs (reward hacking, degenerate answers); above 0.5 it barely moves.")
    bad = "stages:\n  - {name: sft}\n  - {name: dpo, stage: dpo, preference: {beta: 2.0}}\n"
    good = "stages:\n  - {name: sft}\n  - {name: dpo, stage: dpo, preference: {beta: 0.1}}\n"
    fix = "Use beta 0.1 (the DPO paper's default); 0.01-0.5 is the range the published recipes use."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        if recipe.stage_name is None or recipe.stage != "dpo" or recipe.preference is None:
            return
        beta = recipe.preference.beta
        if not ctx["min"] <= beta <= ctx["max"]:
            ctx.report(("preference", "beta"), "out_of_range", beta=beta)


@rule
class SharedAdapterTokenization(Rule):
    code = "FTR603"
    name = "stage-tokenization-drift"
    messages = ('template', 'pad_token', 'max_length')
    severity = "error"
    summary = "A stage that continues an earlier stage's adapter with another template, pad token or max length."
    what = ("For a stage that starts from an earlier stage's adapter: compares `model.template`, `model.pad_token` "
            "and `data.max_length` with that stage's.")
    why = ("The adapter learned the earlier stage's prompt format, pad id and sequence length. Another template "
           "trains the next stage on prompts the adapter has never seen and leaves the model answering in two "
           "formats; another pad token changes which positions are masked; another max length truncates differently "
           "than the adapter was trained on.")
    bad = ("model: {template: chatml}\nstages:\n  - {name: sft}\n"
           "  - {name: dpo, stage: dpo, model: {template: llama3}}\n")
    good = "model: {template: chatml}\nstages:\n  - {name: sft}\n  - {name: dpo, stage: dpo}\n"
    fix = "Write the template, pad token and max length once, at the top level, and not in the stages."

    FIELDS = ((("model", "template"), "template"), (("model", "pad_token"), "pad_token"),
              (("data", "max_length"), "max_length"))

    def check(self, ctx: Context) -> None:
        recipe, parent = ctx.recipe, ctx.recipe.parent
        if parent is None or recipe.model.adapter is None:
            return
        for path, name in self.FIELDS:
            now, before = _value(recipe, path), _value(parent, path)
            if now != before:
                ctx.report(path, name, now=now, before=before, parent=parent.stage_name)


@rule
class SharedAdapterQuantization(Rule):
    code = "FTR604"
    name = "stage-quantization-drift"
    messages = ('changed',)
    severity = "error"
    summary = "A stage that continues a quantized (QLoRA) adapter with another quantization, or none."
    what = ("For a stage that starts from an earlier stage's adapter: compares `method.quant` (bits, type, double "
            "quantization) with that stage's.")
    why = ("A QLoRA adapter is trained against the quantization error of the 4-bit base: the same adapter on a "
           "bf16 base or another quantization adds a different correction than it learned.")
    bad = ("method: {type: qlora}\nstages:\n  - {name: sft}\n"
           "  - {name: dpo, stage: dpo, method: {type: lora, quant: null}}\n")
    good = "method: {type: qlora}\nstages:\n  - {name: sft}\n  - {name: dpo, stage: dpo}\n"
    fix = "Keep `method.type` and `method.quant` of the stage that trained the adapter (write them at the top level)."

    def check(self, ctx: Context) -> None:
        recipe, parent = ctx.recipe, ctx.recipe.parent
        if parent is None or recipe.model.adapter is None or parent.method.quant == recipe.method.quant:
            return
        ctx.report(("method", "quant") if recipe.method.quant else ("method", "type"), "changed",
                   now=_quant(recipe), before=_quant(parent), parent=parent.stage_name)


@rule
class SharedAdapterShape(Rule):
    code = "FTR605"
    name = "stage-adapter-settings-ignored"
    messages = ('ignored',)
    severity = "warning"
    summary = "A stage that continues an adapter but sets another LoRA rank, alpha, dropout or target."
    what = ("For a stage that starts from an earlier stage's adapter: compares `method.lora` r, alpha, dropout and "
            "target with that stage's.")
    why = ("The backends load the saved adapter with its own adapter_config.json and train it further; the stage's "
           "own LoRA settings are not used, so the recipe says something the run does not do.")
    bad = "stages:\n  - {name: sft, method: {lora: {r: 16}}}\n  - {name: dpo, stage: dpo, method: {lora: {r: 64}}}\n"
    good = "method: {lora: {r: 16}}\nstages:\n  - {name: sft}\n  - {name: dpo, stage: dpo}\n"
    fix = "Write the LoRA settings once, at the top level (or give the earlier stage merge: true for a fresh adapter)."

    def check(self, ctx: Context) -> None:
        recipe, parent = ctx.recipe, ctx.recipe.parent
        if parent is None or recipe.model.adapter is None or not (recipe.method.lora and parent.method.lora):
            return
        for name in ("r", "alpha", "dropout", "target"):
            now, before = getattr(recipe.method.lora, name), getattr(parent.method.lora, name)
            if now != before:
                ctx.report(("method", "lora", name), "ignored", field=name, now=now, before=before,
                           parent=parent.stage_name)


def _value(recipe, path: tuple):
    node = recipe
    for part in path:
        node = getattr(node, part)
    return node


def _quant(recipe) -> str:
    q = recipe.method.quant
    return "none" if q is None else f"{q.bits}-bit {q.type}{' double' if q.double_quant else ''}"
