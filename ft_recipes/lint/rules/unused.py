"""FTR008: a written value that no backend would use for this recipe."""

from __future__ import annotations

from ft_recipes.lint.rule import Context, Rule, rule


@rule
class UnusedValue(Rule):
    code = "FTR008"
    name = "unused-value"
    messages = ('unused', 'unused_native')
    severity = "error"
    summary = "A written value that no backend uses for this recipe's stage or method (it would be dropped)."
    what = ("Reports a value whose field no backend reads for this recipe: a section the stage or method does not "
            "use (`method.lora` in a full fine-tune), or a field every backend uses only under another setting "
            "(`preference.simpo_gamma` outside `stage: simpo`). `ftr compile` refuses it (FTR005) for the backend "
            "chosen. On a native file it is a warning: the backend accepts the file and ignores the value.")
    why = "A value that is silently ignored looks like part of the training and is not: the run differs from the file."
    bad = "stage: dpo\npreference: {beta: 0.1, simpo_gamma: 2.0}\n"
    good = "stage: simpo\npreference: {beta: 2.0, simpo_gamma: 0.5}\n"
    fix = "Remove the value, or set the stage or method that uses it."

    def check(self, ctx: Context) -> None:
        from ft_recipes.backends import unused_values

        for dotted, path, why in unused_values(ctx.recipe):
            ctx.report(path, "unused_native" if ctx.is_native else "unused", key=dotted, why=why)
