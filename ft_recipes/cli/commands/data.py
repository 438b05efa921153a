"""``ftr data``: every row of a recipe's (or native config's) local datasets, checked as each backend reads them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ft_recipes.backends import NAMES
from ft_recipes.cli.commands import guard
from ft_recipes.core.findings import UsageError

DATA_CODES = ("FTR204", "FTR207", "FTR208", "FTR209", "FTR210", "FTR211", "FTR212", "FTR213")


def load_any(path: str):
    """The loaded recipe of a recipe or a native LLaMA-Factory / Axolotl file (FtrError when invalid)."""
    from ft_recipes.backends.native import detect_dialect
    from ft_recipes.recipe.load import load_file
    from ft_recipes.recipe.loaded import load_document

    doc = load_file(path, keep_last=True)
    return load_document(doc, detect_dialect(doc.data))


def dataset_report(recipe, ds, scanned, backends: tuple[str, ...], dialect: str = "recipe") -> dict:
    """One dataset's figures: rows, problems, duplicates, lengths, and the rows each backend reads (``dialect``: the
    file's; a backend reads its own native file as written, a recipe as ftr compiles it)."""
    from ft_recipes.backends.datacheck import _readers, lengths, tokenizer_for

    bad = scanned.bad_rows
    report = {"path": str(ds.path), "format": ds.format, "rows": scanned.rows + bad, "readable_rows": scanned.rows,
              "problems": {kind: {"count": issue.count, "lines": [line for line, _ in issue.examples],
                                  "first": issue.first[1]} for kind, issue in scanned.issues.items()},
              "other_formats": {str(k): v for k, v in scanned.formats.items()},
              "duplicates": scanned.duplicates.count}
    if scanned.pairs:
        report.update(pairs=scanned.pairs, identical_pairs=scanned.identical.count,
                      chosen_longer=round(scanned.chosen_longer / scanned.pairs, 3))
    readers = _readers()
    reads = {}
    for name in backends:
        skipped = readers[name].skipped(ds, scanned, scanned.drops.get(name, {}), dialect == name) \
            if name in readers else {}
        reads[name] = {"rows": max(0, scanned.rows - sum(skipped.values())) if not scanned.issues.get("not_json")
                       else 0, "skipped": skipped}
    report["backends"] = reads
    if scanned.rows:
        d = recipe.data
        counted = lengths(ds, scanned, d.max_length, tokenizer_for(recipe.model.base),
                          d.train_on_prompt or recipe.stage == "pt", d.overlength == "drop")
        report["tokens"] = {"exact": counted.exact, "max_length": d.max_length,
                            "median": counted.percentile(0.5), "p95": counted.percentile(0.95),
                            "longest": counted.longest, "over_max_length": counted.over.count,
                            "prompt_fills_max_length": counted.no_answer.count,
                            "answer_cut": counted.answer_cut.count, "kept": counted.kept,
                            "trainable": counted.trainable, "histogram": histogram(counted.tokens, d.max_length)}
    return report


BINS = 10


def histogram(tokens, max_length: int) -> dict:
    """Row counts of token lengths in BINS equal bins up to max_length, and the rows over it."""
    width = max(1, -(-max_length // BINS))
    counts = [0] * BINS
    over = 0
    for n in tokens:
        if n > max_length:
            over += 1
        else:
            counts[min(BINS - 1, max(0, n - 1) // width)] += 1
    return {"width": width, "counts": counts, "over_max_length": over}


def held_out(rows: int, split: float) -> int:
    """Rows val.split holds out of ``rows``, as all three backends split (datasets' train_test_split): a fraction
    holds out ceil(split x rows), in float arithmetic as it computes it (0.2 of 26 is 6); 1 or more, that many rows."""
    if split >= 1:
        return min(rows, int(split))
    return min(rows, math.ceil(split * rows)) if split > 0 else 0


def training_figures(recipe, reports: list[dict]) -> dict:
    """Rows, tokens and optimizer steps per epoch of the training datasets, for the recipe's batch settings
    (held-out rows of val.split taken away; packed: the kept tokens fill sequences of max_length). The trainers
    take a last partial batch: steps are ceil(rows / effective batch). ``backend_steps``: the steps of the rows each
    backend reads (it splits what it reads)."""
    train = {str(ds.path) for ds in recipe.data.train if ds.path is not None}
    mine = [r for r in reports if r["path"] in train and "tokens" in r]
    readable = sum(r["readable_rows"] for r in mine)
    split = recipe.data.val_split
    rows = readable - held_out(readable, split)
    kept_share = rows / readable if readable else 1
    kept = round(sum(r["tokens"]["kept"] for r in mine) * kept_share)
    batch = recipe.effective_batch
    packed = -(-kept // recipe.data.max_length) if recipe.data.packing else None

    def steps(read: int) -> int:
        return -(-(packed if packed is not None else read - held_out(read, split)) // batch)

    names = mine[0]["backends"] if mine else {}
    return {"rows": rows, "tokens": kept, "trainable_tokens": round(sum(r["tokens"]["trainable"] for r in mine)
                                                                    * kept_share),
            "effective_batch": batch, "packed": recipe.data.packing, "steps_per_epoch": steps(readable),
            "backend_steps": {name: steps(sum(r["backends"][name]["rows"] for r in mine)) for name in names}}


def draw_histogram(reports: list[dict], out: Path) -> None:
    """A PNG of each dataset's token lengths against max_length (matplotlib: the ``report`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--histogram needs matplotlib: pip install 'ft-recipes[report]'") from None
    shown = [r for r in reports if "tokens" in r]
    fig, axes = plt.subplots(len(shown) or 1, 1, figsize=(7, 2.4 * max(1, len(shown))), squeeze=False)
    for ax, r in zip(axes[:, 0], shown):
        h = r["tokens"]["histogram"]
        edges = [h["width"] * i for i in range(len(h["counts"]))]
        ax.bar(edges, h["counts"], width=h["width"], align="edge", color="tab:blue", label="rows")
        ax.bar([h["width"] * len(h["counts"])], [h["over_max_length"]], width=h["width"], align="edge",
               color="tab:red", label="over max_length")
        ax.axvline(r["tokens"]["max_length"], color="black", linestyle="--")
        ax.set_title(Path(r["path"]).name, fontsize=9)
        ax.set_xlabel("tokens" + ("" if r["tokens"]["exact"] else " (estimate)"))
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def end_of_turn(recipe, backends: tuple[str, ...], rows: int) -> dict:
    """Backend -> the end-of-turn verdict of its own preprocessing on the first ``rows`` training rows (FTR212), or
    why there is none: no environment, no local model (never a download), or the backend failed."""
    from ft_recipes.backends import backend_python
    from ft_recipes.core.findings import FtrError
    from ft_recipes.insight.tokens import check_ends
    from ft_recipes.recipe.modelinfo import model_dir

    if model_dir(recipe.model.base) is None:
        return {name: {"skipped": f"the model {recipe.model.base} is not on this machine (ftr never downloads it)"}
                for name in backends}
    out: dict = {}
    for name in backends:
        try:
            backend_python(name)
        except FtrError:
            out[name] = {"skipped": f"no {name} environment (ftr backend install {name})"}
            continue
        verdict = check_ends(name, recipe, rows)
        if isinstance(verdict, FtrError):
            out[name] = {"error": str(verdict).splitlines()[-1][:300]}
        else:
            out[name] = {"rows": verdict.rows, "turns": verdict.turns, "untrained": verdict.missed,
                         "end_tokens": list(verdict.ends), "examples": [list(e) for e in verdict.examples]}
    return out


def _ends_text(ends: dict) -> list[str]:
    out = ["end of turn (each backend's own preprocessing):"] if ends else []
    for name, verdict in ends.items():
        if "turns" in verdict:
            tokens = "/".join(verdict["end_tokens"]) or "none known"
            state = "trained in every one" if not verdict["untrained"] else f"NOT trained in {verdict['untrained']}"
            out.append(f"  {name}: {verdict['turns']} assistant turns in {verdict['rows']} rows, end {tokens} {state}")
        else:
            out.append(f"  {name}: not checked: {verdict.get('skipped') or verdict.get('error')}")
    return out


def _backend_steps_text(training: dict) -> str:
    """The steps of the backends whose read rows give other steps than the readable ones (empty when none)."""
    other = {name: n for name, n in training["backend_steps"].items() if n != training["steps_per_epoch"]}
    return "; " + ", ".join(f"{name} {n}" for name, n in other.items()) + " (rows it reads)" if other else ""


def _text(reports: list[dict], findings: list, ends: dict | None = None, training: dict | None = None) -> str:
    out = []
    for r in reports:
        out.append(f"{r['path']} ({r['format']}): {r['rows']} rows, {r['readable_rows']} readable, "
                   f"{r['duplicates']} duplicate(s)")
        for kind, issue in r["problems"].items():
            out.append(f"  {kind}: {issue['count']} (lines {', '.join(map(str, issue['lines']))}): {issue['first']}")
        if "pairs" in r:
            out.append(f"  pairs: {r['pairs']}, identical {r['identical_pairs']}, chosen longer in "
                       f"{r['chosen_longer']:.0%}")
        tokens = r.get("tokens")
        if tokens:
            how = "tokenizer" if tokens["exact"] else "estimate, 4 chars/token"
            out.append(f"  tokens ({how}): median {tokens['median']}, p95 {tokens['p95']}, longest "
                       f"{tokens['longest']}; {tokens['over_max_length']} over max_length {tokens['max_length']}, "
                       f"{tokens['prompt_fills_max_length']} with no room for the answer, {tokens['answer_cut']} "
                       f"with the answer cut; {tokens['trainable']} trainable tokens")
        for name, reads in r["backends"].items():
            skipped = ", ".join(f"{k} {v}" for k, v in reads["skipped"].items())
            out.append(f"  {name}: reads {reads['rows']} rows" + (f" (skips: {skipped})" if skipped else ""))
    if training and training["rows"]:
        out.append(f"training: {training['rows']} rows, {training['tokens']} tokens after the cut, "
                   f"{training['trainable_tokens']} trainable; {training['steps_per_epoch']} steps per epoch at an "
                   f"effective batch of {training['effective_batch']}" + (" (packed)" if training["packed"] else "")
                   + _backend_steps_text(training))
    out += _ends_text(ends or {})
    out += [finding.text() for finding in findings]
    return "\n".join(out) + "\n"


def _recipes(path: str) -> list[tuple[str | None, object, str]]:
    """(stage name or None, recipe, dialect) of a recipe, a pipeline's training stages, or a native config."""
    from ft_recipes.recipe.stages import has_stages, load_pipeline

    if has_stages(path):
        return [(s.name, s.recipe, "recipe") for s in load_pipeline(path).stages
                if not (s.is_merge_step or s.is_eval_step) and s.recipe is not None]
    loaded = load_any(path)
    return [(None, loaded.recipe, loaded.dialect)]


def _checked(recipe, dialect: str, backends: tuple[str, ...], eos: bool, eos_rows: int) -> dict:
    """One recipe's datasets, training figures and end-of-turn verdicts."""
    from ft_recipes.backends.datacheck import progress_line, scan
    from ft_recipes.lint.rules.data import local_datasets

    for ds in recipe.data.train + recipe.data.val:  # read large files with a progress line first
        if ds.path is not None and ds.path.is_file() and ds.path.suffix in (".jsonl", ".json"):
            scan(ds, progress_line(ds.path))
    reports = [dataset_report(recipe, ds, scanned, backends, dialect) for ds, scanned in local_datasets(recipe)]
    ends = end_of_turn(recipe, backends, eos_rows) if eos and recipe.data.train else {}
    return {"datasets": reports, "training": training_figures(recipe, reports), "end_of_turn": ends}


@click.command("data")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
@click.option("--backend", "-b", "backends", multiple=True, type=click.Choice(NAMES),
              help="Backends to report on (default: all).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--eos/--no-eos", "eos", default=True, show_default=True,
              help="Run the first rows through each installed backend's own preprocessing to check that the end of "
                   "turn is trained (FTR212; needs the model on this machine).")
@click.option("--eos-rows", type=click.IntRange(1), default=20, show_default=True,
              help="Rows the end-of-turn check runs through each backend.")
@click.option("--histogram", type=click.Path(dir_okay=False), default=None,
              help="Also draw each dataset's token lengths against max_length into this PNG (needs the report "
                   "extra: matplotlib).")
@guard
def data_cmd(path: str, backends: tuple[str, ...], fmt: str, eos: bool, eos_rows: int,
             histogram: str | None) -> None:
    """Check every row of PATH's local datasets (a recipe, each training stage of a pipeline, or a native config) as
    each backend reads them: rows,
    formats, problems (file:line), duplicates, validation rows in training, identical pairs, lengths against
    max_length, and the end of turn in each backend's labels. The findings are lint's FTR204 and FTR207-FTR213;
    exit 1 on an error, as lint."""
    from ft_recipes.lint import Options, lint_file

    parts = [_checked(recipe, dialect, backends or NAMES, eos, eos_rows) | ({"stage": name} if name else {})
             for name, recipe, dialect in _recipes(path)]
    if histogram:
        draw_histogram([r for part in parts for r in part["datasets"]], Path(histogram))
    findings = lint_file(Path(path), Options(select=DATA_CODES))
    if fmt == "json":
        from dataclasses import asdict

        whole = {"stages": parts} if "stage" in parts[0] else parts[0]
        click.echo(json.dumps({**whole, "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        text = [(f"stage {part['stage']}:\n" if "stage" in part else "")
                + _text(part["datasets"], [], part["end_of_turn"], part["training"]) for part in parts]
        click.echo("".join(text) + "".join(f.text() + "\n" for f in findings), nl=False)
    if any(f.severity == "error" for f in findings):
        raise SystemExit(1)
