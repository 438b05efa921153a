"""``ftr tokens``."""

from __future__ import annotations

import sys

import click

from . import backend_version_option, guard, targets
from ..backends import NAMES


@click.command("tokens")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--backend", "-b", type=click.Choice(NAMES), default=None, help="Show this backend's tokenization.")
@click.option("--diff", "pair", nargs=2, type=click.Choice(NAMES), default=None,
              help="Compare two backends row by row; exit 1 on any difference.")
@click.option("-n", "rows", type=click.IntRange(min=1), default=5, show_default=True, help="Rows to show.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for the backend before stopping it.")
@click.option("--templates", default=None,
              help="With --diff: compare under each of these chat templates (comma-separated) and print a table.")
@backend_version_option
@guard
def tokens_cmd(recipe: str, backend: str | None, pair: tuple[str, str] | None, rows: int, timeout: float,
               templates: str | None, backend_versions) -> None:
    """Show how the first rows of RECIPE's data are rendered and tokenized by a backend's own
    preprocessing (run in its environment, without training), trained tokens highlighted."""
    with targets(backend_versions, backend):
        _tokens(recipe, backend, pair, rows, timeout, templates)


def _tokens(recipe: str, backend: str | None, pair: tuple[str, str] | None, rows: int, timeout: float,
            templates: str | None) -> None:
    from ..pipeline import load_recipe
    from ..tokens import diff, label, render, tokenize

    if not backend and not pair:
        raise click.UsageError("give --backend B or --diff A B")
    loaded = load_recipe(recipe)
    if pair and templates:
        from ..tokens import identity_table

        table = identity_table(loaded, pair, [t.strip() for t in templates.split(",") if t.strip()], rows,
                               timeout)
        width = max(len(name) for name, _ in table)
        for name, verdict in table:
            click.echo(f"{name:<{width}}  {verdict}")
        sys.exit(0 if all(verdict == "identical" for _, verdict in table) else 1)
    if pair:
        a, b = (tokenize(loaded, name, rows, timeout) for name in pair)
        problems = diff(a, b)
        for line in problems:
            click.echo(line)
        click.echo(f"{pair[0]} vs {pair[1]}: " + (f"{len(problems)} difference(s)" if problems else
                                                   f"identical token ids and loss masks on {len(a)} rows"))
        sys.exit(1 if problems else 0)
    color = sys.stdout.isatty()
    shown = tokenize(loaded, backend, rows, timeout)
    for i, row in enumerate(shown):
        click.echo(f"--- row {label(shown, i)}: {len(row.input_ids)} tokens, {sum(row.trained)} trained")
        click.echo(render(row, color))
