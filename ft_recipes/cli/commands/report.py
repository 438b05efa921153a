"""``ftr report``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ft_recipes.cli.commands import guard


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw train/validation loss, learning rate and ftr eval's scores (bars) to this PNG "
                   "(needs ft-recipes[report]).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text", show_default=True)
@click.option("--force", is_flag=True, help="Let -o replace a file that ftr did not write.")
@guard
def report_cmd(run_dirs: tuple[Path, ...], output: Path | None, fmt: str, force: bool) -> None:
    """Loss curves and a diagnosis (overfitting, underfitting, divergence, no validation) for one or more
    run directories, and the scores of `ftr eval` (eval.json: base against tuned, a table and bars in the
    plot); several directories overlay in the plot for comparison. A pipeline's output.dir (with its
    pipeline.json) stands for the run directories of its stages, overlaid in order, and its eval steps' scores."""
    from ft_recipes.core.findings import FtrError
    from ft_recipes.insight.report import LogError, diagnose, plot, read_curves
    from ft_recipes.run.pipelines import stage_dirs

    if output is not None:
        from ft_recipes.core.writes import check_may_replace

        check_may_replace(output, force)  # before reading any log: a refusal costs nothing
    results = []
    for run_dir in [d for given in run_dirs for d in (stage_dirs(given) or [given])]:  # a pipeline: its stages
        try:
            curves = read_curves(run_dir)
        except FileNotFoundError as exc:
            raise FtrError(str(exc), exit_code=2) from None
        except LogError as exc:
            raise FtrError(str(exc), exit_code=1) from None
        for note in _few(curves.notes):
            click.echo(f"note: {note}", err=True)
        results.append((curves, [] if curves.eval_only else diagnose(curves)))
    if output is not None:
        from ft_recipes.core.writes import atomic_path, remember

        try:
            with atomic_path(output) as tmp:  # never over a FIFO, device or symlink; nothing half-written
                plot([c for c, _ in results], tmp)
        except RuntimeError as exc:
            raise FtrError(str(exc), exit_code=2) from None
        remember(output)
    click.echo(_render(results, fmt))
    if output is not None:
        click.echo(f"wrote {output}", err=True)


def _few(notes: list[str], most: int = 5) -> list[str]:
    """At most ``most`` notes, then how many more there were."""
    if len(notes) <= most:
        return notes
    return notes[:most] + [f"... and {len(notes) - most} more skipped entries"]


def _render(results, fmt: str) -> str:
    from ft_recipes.insight.report import eval_rows, eval_table

    if fmt == "json":
        return json.dumps([{"run_dir": str(c.run_dir), "source": c.source, "train": c.train, "eval": c.eval,
                            "lr": c.lr, "diagnosis": [d.__dict__ for d in ds],
                            "scores": [{"score": name, "base": b, "tuned": t} for name, b, t in eval_rows(c.scores)]
                            if c.scores else None} for c, ds in results], indent=2)
    lines = []
    for curves, diagnoses in results:
        last_train = f"{curves.train[-1][1]:.4f}" if curves.train else "-"
        last_eval = f"{curves.eval[-1][1]:.4f}" if curves.eval else "-"
        head = f"## {curves.run_dir}" if fmt == "md" else f"{curves.run_dir}"
        if curves.eval_only:  # a pipeline's eval step
            table = eval_table(curves.scores, md=fmt == "md")
            lines += [head, "", table, ""] if fmt == "md" else [head, "ftr eval (base against tuned):", _indent(table)]
            continue
        lines += [head, f"steps {curves.train[-1][0] if curves.train else 0}, final train loss {last_train}, "
                        f"final validation loss {last_eval}"]
        for d in diagnoses:
            lines.append(f"{'- **' if fmt == 'md' else ''}{d.kind}{'**' if fmt == 'md' else ''}: {d.summary}")
            lines += [f"    {i}. {r}" for i, r in enumerate(d.remedies, 1)]
        if curves.scores:  # ftr eval's eval.json
            table = eval_table(curves.scores, md=fmt == "md")
            lines += ["", table, ""] if fmt == "md" else ["ftr eval (base against tuned):", _indent(table)]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
