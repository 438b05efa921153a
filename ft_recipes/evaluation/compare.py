"""The side-by-side table of ``ftr eval``: one line per task metric and held-out score, base | tuned | change."""

from __future__ import annotations

HELD_OUT = (("perplexity", "perplexity (lower is better)"), ("exact_match", "exact match"), ("bleu", "BLEU"),
            ("rouge_l", "ROUGE-L"))


def rows(results: dict) -> list[tuple[str, float | None, float | None]]:
    """(name, base, tuned) for every task metric and held-out score of either model, tasks first."""
    base, tuned = results.get("base") or {}, results.get("tuned") or {}
    out = []
    tasks = sorted(set(base.get("tasks", {})) | set(tuned.get("tasks", {})))
    for task in tasks:
        metrics = sorted(set(base.get("tasks", {}).get(task, {})) | set(tuned.get("tasks", {}).get(task, {})))
        for metric in metrics:
            out.append((f"{task} {metric}", _get(base, "tasks", task, metric), _get(tuned, "tasks", task, metric)))
    for key, title in HELD_OUT:
        pair = (_get(base, "held_out", key), _get(tuned, "held_out", key))
        if pair != (None, None):
            out.append((f"held-out {title}", *pair))
    return out


def _get(tree: dict, *keys):
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def _num(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _change(base, tuned) -> str:
    return "" if base is None or tuned is None else f"{tuned - base:+.4g}"


def table(results: dict) -> str:
    lines = rows(results)
    if not lines:
        return "(no results: give --tasks, or a run whose recipe holds validation rows)"
    width = max(len(name) for name, _, _ in lines)
    head = f"{'':{width}}  {'base':>10}  {'tuned':>10}  {'change':>10}"
    body = [f"{name:{width}}  {_num(b):>10}  {_num(t):>10}  {_change(b, t):>10}" for name, b, t in lines]
    return "\n".join([head, *body])


def samples(results: dict, count: int = 3) -> str:
    """A few held-out generations of the tuned model next to the reference, for reading."""
    found = _get(results, "tuned", "held_out", "samples") or []
    out = []
    for sample in found[:count]:
        prompt = sample["prompt"][-1]["content"] if sample["prompt"] else ""
        out += [f"prompt:    {_one_line(prompt)}", f"reference: {_one_line(sample['reference'])}",
                f"tuned:     {_one_line(sample['generated'])}", ""]
    return "\n".join(out).rstrip()


def _one_line(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."
