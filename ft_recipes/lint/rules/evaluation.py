"""FTR7xx: what ``ftr eval`` finds when it compares the tuned model with its base model."""

from __future__ import annotations

from dataclasses import dataclass

from ft_recipes.core.findings import Finding
from ft_recipes.lint.rule import Context, Rule, rule


@dataclass(frozen=True)
class At:
    """Where an eval finding points: the eval.json it was found in (a stand-in for a recipe's ``where``)."""

    file: str

    def where(self, path: tuple) -> tuple[str, int, int]:
        return self.file, 1, 1


@rule
class Forgetting(Rule):
    code = "FTR701"
    name = "forgetting"
    messages = ('lost',)
    options = ('margin',)
    severity = "warning"
    status = "run"
    summary = "The tuned model scores more than a margin below its base model on an lm-eval task (`ftr eval --base`)."
    what = ("Reported by `ftr eval --base` for every lm-eval task metric where higher is better and the score is a "
            "fraction (accuracy, exact match ...): the tuned model's score more than `margin` points (hundredths) "
            "below the base model's, with the same tasks, limit, few-shot and seed.")
    why = ("Fine-tuning on a narrow data set can overwrite general ability (catastrophic forgetting): the training "
           "loss falls while the model gets worse at everything else. Only a general task set, scored before and "
           "after, shows it.")
    fix = ("Lower train.lr or the number of epochs, use a smaller LoRA rank, or mix general data into the "
           "training set; then evaluate again.")

    @classmethod
    def compare(cls, base: dict, tuned: dict, better: dict, section: dict, file: str) -> list[Finding]:
        """Findings for each task metric of ``tuned`` that lost more than the margin against ``base``.
        ``better``: lm-eval's higher_is_better, task -> metric -> bool."""
        ctx = Context(recipe=At(file), rule=cls, pack=section)
        for task, metrics in sorted(tuned.items()):
            for metric, value in sorted(metrics.items()):
                before = base.get(task, {}).get(metric)
                if not _fraction(value) or not _fraction(before) or not better.get(task, {}).get(metric.split(",")[0]):
                    continue
                drop = (before - value) * 100
                if drop > ctx["margin"]:
                    ctx.report(("eval",), "lost", task=task, metric=metric, base=before * 100, tuned=value * 100,
                               drop=drop)
        return ctx.findings


def _fraction(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
