"""What ``ftr eval`` prints: the side-by-side table (``ft_recipes.insight.report`` draws it, ``ftr report`` too) and a
few held-out generations for reading."""

from __future__ import annotations

from ft_recipes.insight.report import eval_rows as rows  # noqa: F401 (this module's API)
from ft_recipes.insight.report import eval_table as table  # noqa: F401


def samples(results: dict, count: int = 3) -> str:
    """A few held-out generations of the tuned model next to the reference, for reading."""
    found = ((results.get("tuned") or {}).get("held_out") or {}).get("samples") or []
    out = []
    for sample in found[:count]:
        prompt = sample["prompt"][-1]["content"] if sample["prompt"] else ""
        out += [f"prompt:    {_one_line(prompt)}", f"reference: {_one_line(sample['reference'])}",
                f"tuned:     {_one_line(sample['generated'])}", ""]
    return "\n".join(out).rstrip()


def _one_line(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."
