"""``ftr data``: every row of a recipe's (or native config's) local datasets, checked as each backend reads them."""

from __future__ import annotations

import json
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


def training_figures(recipe, reports: list[dict]) -> dict:
    """Rows, tokens and optimizer steps per epoch of the training datasets, for the recipe's batch settings
    (held-out rows of val.split taken away; packed: the kept tokens fill sequences of max_length)."""
    train = {str(ds.path) for ds in recipe.data.train if ds.path is not None}
    mine = [r for r in reports if r["path"] in train and "tokens" in r]
    rows = sum(r["readable_rows"] for r in mine)
    split = recipe.data.val_split
    kept_share = 1 - split if 0 < split < 1 else ((rows - split) / rows if rows and split >= 1 else 1)
    rows = max(0, round(rows * kept_share))
    kept = round(sum(r["tokens"]["kept"] for r in mine) * kept_share)
    batch = recipe.effective_batch
    units = -(-kept // recipe.data.max_length) if recipe.data.packing else rows
    return {"rows": rows, "tokens": kept, "trainable_tokens": round(sum(r["tokens"]["trainable"] for r in mine)
                                                                    * kept_share),
            "effective_batch": batch, "packed": recipe.data.packing, "steps_per_epoch": -(-units // batch)}


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
                   f"effective batch of {training['effective_batch']}" + (" (packed)" if training["packed"] else ""))
    out += _ends_text(ends or {})
    out += [finding.text() for finding in findings]
    return "\n".join(out) + "\n"


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
    """Check every row of PATH's local datasets (a recipe or a native config) as each backend reads them: rows,
    formats, problems (file:line), duplicates, validation rows in training, identical pairs, lengths against
    max_length, and the end of turn in each backend's labels. The findings are lint's FTR204 and FTR207-FTR213;
    exit 1 on an error, as lint."""
    from ft_recipes.backends.datacheck import progress_line, scan
    from ft_recipes.lint import Options, lint_file
    from ft_recipes.lint.rules.data import local_datasets

    loaded = load_any(path)
    recipe = loaded.recipe
    for ds in recipe.data.train + recipe.data.val:  # read large files with a progress line first
        if ds.path is not None and ds.path.is_file() and ds.path.suffix in (".jsonl", ".json"):
            scan(ds, progress_line(ds.path))
    reports = [dataset_report(recipe, ds, scanned, backends or NAMES, loaded.dialect)
               for ds, scanned in local_datasets(recipe)]
    training = training_figures(recipe, reports)
    if histogram:
        draw_histogram(reports, Path(histogram))
    ends = end_of_turn(recipe, backends or NAMES, eos_rows) if eos and recipe.data.train else {}
    findings = lint_file(Path(path), Options(select=DATA_CODES))
    if fmt == "json":
        from dataclasses import asdict

        click.echo(json.dumps({"datasets": reports, "training": training, "end_of_turn": ends,
                               "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        click.echo(_text(reports, findings, ends, training), nl=False)
    if any(f.severity == "error" for f in findings):
        raise SystemExit(1)
