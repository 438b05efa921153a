"""``ftr report``: loss curves from the backends' own logs, and a diagnosis in the seeds' terms.

Logs read: LLaMA-Factory ``trainer_log.jsonl`` and every backend's ``trainer_state.json`` (in the run
directory or its newest ``checkpoint-N``); and ``eval.json`` (``ftr eval``): base against tuned, as a table and
bars."""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import yaml

OVERFIT_EVALS = 2          # consecutive evaluations with validation loss rising while train loss falls
SPIKE_FACTOR = 3.0         # a loss above 3x the running minimum (after warm-up) is a spike
FLAT_TRAIN_DROP = 0.10     # underfitting: train loss fell by less than 10% ...
HIGH_LOSS = 1.5            # ... and stays above this
EVAL_FILE = "eval.json"    # what ``ftr eval`` writes into a run directory
HELD_OUT = (("perplexity", "perplexity (lower is better)"), ("exact_match", "exact match"), ("bleu", "BLEU"),
            ("rouge_l", "ROUGE-L"))


@dataclass
class Curves:
    run_dir: Path
    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    lr: list[tuple[int, float]] = field(default_factory=list)
    source: str = ""
    notes: list[str] = field(default_factory=list)
    scores: dict | None = None  # eval.json's results (``ftr eval``): label (base, tuned) -> tasks, held_out

    @property
    def eval_only(self) -> bool:
        """A folder with ftr eval's scores and no training log (a pipeline's eval step)."""
        return self.source.endswith(EVAL_FILE) and not self.train


@dataclass(frozen=True)
class Diagnosis:
    kind: str       # overfitting | underfitting | divergence | no-validation | ok
    summary: str
    remedies: tuple[str, ...] = ()


def _state_files(run_dir: Path) -> list[Path]:
    """The Trainer states of a run, the one to read first first: the run's own, then its checkpoints, newest first
    (a state caught mid-write falls back to the one before it)."""
    own = [run_dir / "trainer_state.json"] if (run_dir / "trainer_state.json").is_file() else []
    checkpoints = sorted(run_dir.glob("checkpoint-*/trainer_state.json"),
                         key=lambda p: int(p.parent.name.split("-")[-1]) if p.parent.name.split("-")[-1].isdigit()
                         else -1, reverse=True)
    return own + checkpoints


def _num(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class LogError(ValueError):
    """A training log ftr cannot read (it names the file, and the line where known)."""


def read_curves(run_dir: Path) -> Curves:
    """The curves of a run directory. Damaged entries are skipped with a note in ``curves.notes``
    (a truncated last line is normal while a run is writing); an unreadable log is a LogError."""
    curves = Curves(run_dir)
    states = _state_files(run_dir)
    found = _first_readable(states, curves.notes, (run_dir / "trainer_log.jsonl").is_file()) if states else None
    if found is not None:
        state, entries = found
        curves.source = str(state)
    elif (run_dir / "trainer_log.jsonl").is_file():
        entries = _jsonl_entries(run_dir / "trainer_log.jsonl", curves.notes)
        curves.source = str(run_dir / "trainer_log.jsonl")
    elif (run_dir / EVAL_FILE).is_file():  # a pipeline's eval step: scores, no training
        curves.source, curves.scores = str(run_dir / EVAL_FILE), read_scores(run_dir)
        return curves
    else:
        raise FileNotFoundError(f"{run_dir}: no trainer_state.json or trainer_log.jsonl")
    for where, entry in entries:
        step = _step(entry)
        if step is None:
            curves.notes.append(f"{where}: skipped an entry without a step number")
            continue
        for key, series in (("loss", curves.train), ("eval_loss", curves.eval),
                            ("learning_rate", curves.lr), ("lr", curves.lr)):
            value = _num(entry.get(key))
            if value is not None:
                series.append((step, value))
    curves.scores = read_scores(run_dir)
    return curves


def read_scores(run_dir: Path) -> dict | None:
    """The results ``ftr eval`` saved in the run directory (eval.json); None when it was not evaluated."""
    path = run_dir / EVAL_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(_read(path))
    except ValueError as exc:
        raise LogError(f"{path}: not valid JSON ({exc})") from None
    results = record.get("results") if isinstance(record, dict) else None
    if not isinstance(results, dict):
        raise LogError(f"{path}: not the results of ftr eval (no results object)")
    return results


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc.strerror}") from None


def _first_readable(states: list[Path], notes: list[str], log_too: bool) -> tuple[Path, list] | None:
    """(state, entries) of the first state that reads; one that does not (cut mid-write) is noted and the next one
    read. All unreadable: the first one's LogError, unless LLaMA-Factory's own log can stand in (None)."""
    errors = []
    for state in states:
        try:
            return state, _state_entries(state, notes)
        except LogError as exc:
            errors.append(exc)
            notes.append(f"{exc}; read the state before it instead (a state caught while being written)")
    if log_too:
        return None
    raise errors[0]


def _state_entries(path: Path, notes: list[str]) -> list[tuple[str, dict]]:
    try:
        data = json.loads(_read(path))
    except ValueError as exc:
        raise LogError(f"{path}: not valid JSON ({exc})") from None
    history = data.get("log_history", []) if isinstance(data, dict) else None
    if not isinstance(history, list):
        shape = type(data).__name__ if not isinstance(data, dict) else f"log_history is a {type(history).__name__}"
        raise LogError(f"{path}: not a Trainer state ({shape}; expected an object with a log_history list)")
    return _objects([(f"{path}: log_history[{i}]", entry) for i, entry in enumerate(history)], notes)


def _jsonl_entries(path: Path, notes: list[str]) -> list[tuple[str, dict]]:
    lines = _read(path).splitlines()
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append((f"{path}:{number}", json.loads(line)))
        except ValueError:
            last = number == len(lines)
            notes.append(f"{path}:{number}: skipped a {'truncated last' if last else 'damaged'} line "
                         f"(not complete JSON{'; the run may still be writing' if last else ''})")
    return _objects(entries, notes)


def _objects(entries: list[tuple[str, object]], notes: list[str]) -> list[tuple[str, dict]]:
    kept = []
    for where, entry in entries:
        if isinstance(entry, dict):
            kept.append((where, entry))
        else:
            notes.append(f"{where}: skipped a {type(entry).__name__}, expected a JSON object")
    return kept


def _step(entry: dict) -> int | None:
    value = entry.get("step", entry.get("current_steps"))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def _recipe_values(run_dir: Path) -> dict:
    path = run_dir / "recipe.resolved.yaml"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _get(data: dict, dotted: str, default=None):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data


def default_rules() -> dict:
    """The ``rules`` of ftr's default rule pack (validators/default.yaml), read as data (the advice below keeps
    inside its ranges; the linter owns the pack, and callers with a team pack pass theirs)."""
    from ft_recipes.core.paths import data_dir

    try:
        return (yaml.safe_load((data_dir("validators") / "default.yaml").read_text(encoding="utf-8")) or {})["rules"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}


def _lr_range(recipe: dict, rules: dict) -> tuple[float, float] | None:
    """FTR101's recommended learning rates for the recipe's method and stage, when the pack has them."""
    lr_rule = rules.get("FTR101") or {}
    group = (lr_rule.get("method_groups") or {}).get(_get(recipe, "method.type", "lora"))
    stage = (lr_rule.get("stage_groups") or {}).get(_get(recipe, "stage", "sft"))
    limits = ((lr_rule.get("ranges") or {}).get(group) or {}).get(stage) or {}
    recommended = limits.get("recommended")
    return (float(recommended[0]), float(recommended[1])) if recommended and len(recommended) >= 2 else None


def _lr_change(lr, recipe: dict, rules: dict, factor: float) -> str:
    """``lr`` times ``factor``, kept inside FTR101's recommended range; empty when lr is at that end already."""
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        return "raise the learning rate" if factor > 1 else "lower the learning rate"
    low, high = _lr_range(recipe, rules) or (0.0, math.inf)
    target = min(lr * factor, high) if factor > 1 else max(lr * factor, low)
    if (factor > 1 and target <= lr) or (factor < 1 and target >= lr):
        return ""
    bound = " (the end of the recommended range, FTR101)" if target in (low, high) else ""
    return f"learning rate is {lr:g}: try {target:g}{bound}"


def _remedies(kind: str, recipe: dict, rules: dict | None = None) -> tuple[str, ...]:
    """What to change, each suggestion inside the rule pack's ranges (FTR101 learning rate, FTR102 rank, FTR103
    alpha/r): advice that a lint of the changed recipe would flag is no advice."""
    rules = default_rules() if rules is None else rules
    is_lora = _get(recipe, "method.type", "lora") in ("lora", "qlora")
    r = _get(recipe, "method.lora.r", 16)
    dropout = _get(recipe, "method.lora.dropout", 0.05)
    wd = _get(recipe, "train.weight_decay", 0.0)
    epochs = _get(recipe, "train.epochs", 3)
    lr = _get(recipe, "train.lr")
    alpha = _get(recipe, "method.lora.alpha", 2 * r)
    target = _get(recipe, "method.lora.target", "all-linear")
    steps = _get(recipe, "train.max_steps")
    rank = rules.get("FTR102") or {}
    r_min, r_max = rank.get("min", 1), rank.get("max", 64)
    alpha_max = (rules.get("FTR103") or {}).get("max_ratio", 4.0) * r
    longer = f"max_steps is {steps}: try {steps * 2}" if steps else f"epochs is {epochs}: try {int(epochs) + 2}"
    shorter = (f"max_steps is {steps}: try {max(steps // 2, 1)} or stop at the best evaluation" if steps else
               f"epochs is {epochs}: try {max(1, int(epochs) - 1)} or stop at the best evaluation")
    if kind == "overfitting":
        smaller = max(r // 2, 4, r_min)
        steps = [f"lora dropout is {dropout}: try {min(round(dropout + 0.05, 2), 0.2)}" if is_lora else
                 "add dropout where the model allows it",
                 f"weight decay is {wd}: try {max(0.01, round(wd * 2, 3)) if wd else 0.01}",
                 (f"lora r is {r}: try {smaller}" if smaller < r else "") if is_lora else
                 "train fewer layers (freeze or LoRA)",
                 shorter,
                 "add more (or more varied) training data"]
    elif kind == "underfitting":
        larger = min(r * 2, r_max)
        more_alpha = min(alpha * 2, alpha_max) if not _get(recipe, "method.lora.rslora") else alpha * 2
        steps = [(f"lora r is {r}: try {larger}" if larger > r else "") if is_lora else "train more layers",
                 f"lora alpha is {alpha}: try {more_alpha:g}" if is_lora and more_alpha > alpha else "",
                 _lr_change(lr, recipe, rules, 2),
                 longer,
                 "lora targets are attention only: try all-linear" if is_lora and target != "all-linear" else ""]
    elif kind == "divergence":
        steps = [_lr_change(lr, recipe, rules, 0.25),
                 "keep gradient clipping on (max_grad_norm 1.0)", "add warmup (warmup_ratio 0.03-0.1)",
                 "use bf16 rather than fp16 where the GPU supports it"]
    elif kind == "no-validation":
        steps = ["add data.val: {split: 0.1} (train:val = 9:1)", "set eval: {every: epoch} or {steps: N}"]
    else:
        steps = []
    return tuple(s for s in steps if s)


def diagnose(curves: Curves, recipe: dict | None = None, rules: dict | None = None) -> list[Diagnosis]:
    """What the curves show, with remedies inside the rule pack's ranges (``rules``: the effective pack's
    ``rules``; default: ftr's own pack)."""
    recipe = recipe if recipe is not None else _recipe_values(curves.run_dir)
    rules = default_rules() if rules is None else rules
    found = []
    losses = [v for _, v in curves.train] + [v for _, v in curves.eval]
    if any(not math.isfinite(v) for v in losses):
        found.append(Diagnosis("divergence", "the loss became NaN or infinite", _remedies("divergence", recipe, rules)))
    elif _spike(curves.train):
        found.append(Diagnosis("divergence", f"a loss spike above {SPIKE_FACTOR:g}x the running minimum",
                               _remedies("divergence", recipe, rules)))
    if not curves.eval:
        found.append(Diagnosis("no-validation", "no validation loss was logged",
                               _remedies("no-validation", recipe, rules)))
    elif _overfitting(curves):
        found.append(Diagnosis("overfitting", f"validation loss rose for {OVERFIT_EVALS} evaluations in a row while "
                                              f"train loss fell", _remedies("overfitting", recipe, rules)))
    if _underfitting(curves):
        found.append(Diagnosis("underfitting", "train loss stayed high and flat",
                               _remedies("underfitting", recipe, rules)))
    return found or [Diagnosis("ok", "no over- or underfitting, divergence or missing validation detected")]


def _spike(train: list[tuple[int, float]]) -> bool:
    values = [v for _, v in train]
    start = max(len(values) // 10, 1)
    low = math.inf
    for i, v in enumerate(values):
        if i >= start and low < math.inf and v > SPIKE_FACTOR * low:
            return True
        low = min(low, v)
    return False


def _train_trend(curves: Curves, upto: int) -> float | None:
    before = [v for s, v in curves.train if s <= upto]
    return before[-1] if before else None


def _overfitting(curves: Curves) -> bool:
    rising = 0
    for (s0, e0), (s1, e1) in zip(curves.eval, curves.eval[1:]):
        t0, t1 = _train_trend(curves, s0), _train_trend(curves, s1)
        falling_train = t0 is not None and t1 is not None and t1 <= t0
        rising = rising + 1 if e1 > e0 and falling_train else 0
        if rising >= OVERFIT_EVALS:
            return True
    return False


def _underfitting(curves: Curves) -> bool:
    values = [v for _, v in curves.train]
    if len(values) < 4:
        return False
    head = sum(values[: len(values) // 4]) / (len(values) // 4)
    tail = sum(values[-(len(values) // 4):]) / (len(values) // 4)
    return tail > HIGH_LOSS and (head - tail) / head < FLAT_TRAIN_DROP


def plot(curves_list: list[Curves], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("drawing needs matplotlib: pip install 'ft-recipes[report]'") from None
    scores = score_names(curves_list)
    fig = plt.figure(figsize=(8, 8.5 if scores else 6))
    grid = fig.add_gridspec(3 if scores else 2, max(len(scores), 1), height_ratios=(3, 1, 2) if scores else (3, 1))
    loss_ax = fig.add_subplot(grid[0, :])
    lr_ax = fig.add_subplot(grid[1, :], sharex=loss_ax)
    for curves in curves_list:
        name = curves.run_dir.name
        if curves.train:
            loss_ax.plot(*zip(*curves.train), label=f"{name} train")
        if curves.eval:
            loss_ax.plot(*zip(*curves.eval), marker="o", label=f"{name} validation")
        if curves.lr:
            lr_ax.plot(*zip(*curves.lr), label=name)
    loss_ax.set_ylabel("loss")
    loss_ax.legend()
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("step")
    for column, name in enumerate(scores):  # ftr eval: base against tuned
        _bars(fig.add_subplot(grid[2, column]), name, curves_list)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


# --- ftr eval's results: base against tuned --------------------------------------------------------------------

def eval_rows(results: dict) -> list[tuple[str, float | None, float | None]]:
    """(name, base, tuned) for every task metric and held-out score of either model, tasks first."""
    base, tuned = results.get("base") or {}, results.get("tuned") or {}
    out = []
    tasks = sorted(set(base.get("tasks", {})) | set(tuned.get("tasks", {})))
    for task in tasks:
        metrics = sorted(set(base.get("tasks", {}).get(task, {})) | set(tuned.get("tasks", {}).get(task, {})))
        for metric in metrics:
            out.append((f"{task} {metric}", _score(base, "tasks", task, metric), _score(tuned, "tasks", task, metric)))
    for key, title in HELD_OUT:
        pair = (_score(base, "held_out", key), _score(tuned, "held_out", key))
        if pair != (None, None):
            out.append((f"held-out {title}", *pair))
    return out


def _score(tree: dict, *keys):
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def _figure(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _change(base, tuned) -> str:
    return "" if base is None or tuned is None else f"{tuned - base:+.4g}"


def eval_table(results: dict, md: bool = False) -> str:
    """base | tuned | change, one line per score; a markdown table with ``md``."""
    lines = eval_rows(results)
    if not lines:
        return "(no results: give --tasks, or a run whose recipe holds validation rows)"
    if md:
        body = [f"| {name} | {_figure(b)} | {_figure(t)} | {_change(b, t)} |" for name, b, t in lines]
        return "\n".join(["| score | base | tuned | change |", "|---|---|---|---|", *body])
    width = max(len(name) for name, _, _ in lines)
    head = f"{'':{width}}  {'base':>10}  {'tuned':>10}  {'change':>10}"
    body = [f"{name:{width}}  {_figure(b):>10}  {_figure(t):>10}  {_change(b, t):>10}" for name, b, t in lines]
    return "\n".join([head, *body])


def score_names(curves_list: list[Curves], most: int = 6) -> list[str]:
    """The scores the evaluated runs have, in table order: at most ``most`` (the bars' panel is one row)."""
    found = [name for c in curves_list if c.scores for name, _, _ in eval_rows(c.scores)]
    return list(dict.fromkeys(found))[:most]


def _bars(ax, name: str, curves_list: list[Curves]) -> None:
    """Base and tuned bars of one score, for each evaluated run (its own scale: accuracy and perplexity differ by
    orders of magnitude)."""
    evaluated = [c for c in curves_list if c.scores]
    labels, values, colours = [], [], []
    for c in evaluated:
        pair = {row[0]: row[1:] for row in eval_rows(c.scores)}.get(name, (None, None))
        for label, value, colour in (("base", pair[0], "tab:grey"), ("tuned", pair[1], "tab:blue")):
            if value is not None:
                labels.append(label if len(evaluated) == 1 else f"{c.run_dir.name}\n{label}")
                values.append(value)
                colours.append(colour)
    ax.bar(range(len(values)), values, color=colours)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_title(textwrap.fill(name, 16), fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
