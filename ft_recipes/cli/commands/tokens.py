"""``ftr tokens``."""

from __future__ import annotations

import sys

import click

from ft_recipes.backends import NAMES
from ft_recipes.cli.commands import backend_version_option, guard, targets
from ft_recipes.core.findings import FtrError


@click.command("tokens")
@click.argument("recipes", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="RECIPE...")
@click.option("--backend", "-b", type=click.Choice(NAMES), default=None, help="Show this backend's tokenization.")
@click.option("--diff", "pair", nargs=2, type=click.Choice(NAMES), default=None,
              help="Compare two backends row by row; exit 1 on any difference.")
@click.option("-n", "rows", type=click.IntRange(min=1), default=5, show_default=True, help="Rows to show.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for the backend before stopping it (per recipe, or per template).")
@click.option("--templates", default=None,
              help="With --diff and one recipe: compare under each of these chat templates (comma-separated) and "
                   "print a table.")
@backend_version_option
@guard
def tokens_cmd(recipes: tuple[str, ...], backend: str | None, pair: tuple[str, str] | None, rows: int,
               timeout: float, templates: str | None, backend_versions) -> None:
    """Show how the first rows of each RECIPE's data are rendered and tokenized by a backend's own
    preprocessing (run in its environment, without training), trained tokens highlighted. Several recipes
    share one start of each backend."""
    with targets(backend_versions, backend, recipes[0] if recipes else None):
        _tokens(list(recipes), backend, pair, rows, timeout, templates)


def _tokens(paths: list[str], backend: str | None, pair: tuple[str, str] | None, rows: int, timeout: float,
            templates: str | None) -> None:
    from ft_recipes.recipe.loaded import load_recipe

    if not backend and not pair:
        raise click.UsageError("give --backend B or --diff A B")
    if templates and (not pair or len(paths) > 1):
        raise click.UsageError("--templates compares one recipe: give --diff A B and a single RECIPE")
    loaded = [load_recipe(path) for path in paths]
    if pair:  # both environments before the first backend runs (a minute) only to learn the second is missing
        from ft_recipes.backends import backend_python

        for name in pair:
            backend_python(name)
    if templates:
        _template_table(loaded[0], pair, [t.strip() for t in templates.split(",") if t.strip()], rows, timeout)
    elif pair:
        _diff(paths, loaded, pair, rows, timeout)
    else:
        _show(paths, loaded, backend, rows, timeout)


def _template_table(loaded, pair: tuple[str, str], templates: list[str], rows: int, timeout: float) -> None:
    from ft_recipes.insight.tokens import identity_table

    table = identity_table(loaded, pair, templates, rows, timeout)
    width = max(len(name) for name, _ in table)
    for name, verdict in table:
        click.echo(f"{name:<{width}}  {verdict}")
    sys.exit(0 if all(verdict == "identical" for _, verdict in table) else 1)


def _diff(paths: list[str], loaded: list, pair: tuple[str, str], rows: int, timeout: float) -> None:
    """Per recipe: each differing row, then the verdict line; with several recipes each line starts with the
    recipe's path. Exit 1 on any difference, else the worst backend failure's code (0 when none)."""
    from ft_recipes.insight.tokens import diff, tokenize_each

    a, b = (tokenize_each(name, rows, [item.recipe for item in loaded], timeout) for name in pair)
    codes = []
    for path, x, y in zip(paths, a, b):
        prefix = f"{path}: " if len(paths) > 1 else ""
        failed = next((r for r in (x, y) if isinstance(r, FtrError)), None)
        if failed is not None:
            codes.append(_failed(failed, len(paths), prefix))
            continue
        problems = diff(x, y)
        for line in problems:
            click.echo(prefix + line)
        click.echo(prefix + f"{pair[0]} vs {pair[1]}: " + (f"{len(problems)} difference(s)" if problems else
                                                            f"identical token ids and loss masks on {len(x)} rows"))
        codes.append(1 if problems else 0)
    sys.exit(max(codes))


def _show(paths: list[str], loaded: list, backend: str, rows: int, timeout: float) -> None:
    from ft_recipes.insight.tokens import label, render, tokenize_each

    color = sys.stdout.isatty()
    results = tokenize_each(backend, rows, [item.recipe for item in loaded], timeout)
    codes = []
    for path, shown in zip(paths, results):
        if len(paths) > 1:
            click.echo(f"=== {path}")
        if isinstance(shown, FtrError):
            codes.append(_failed(shown, len(paths)))
            continue
        for i, row in enumerate(shown):
            click.echo(f"--- row {label(shown, i)}: {len(row.input_ids)} tokens, {sum(row.trained)} trained")
            click.echo(render(row, color))
        codes.append(0)
    if any(codes):
        sys.exit(max(codes))


def _failed(error: FtrError, recipes: int, prefix: str = "") -> int:
    """One recipe the backend could not tokenize: alone, ftr's usual error (raised); among several, one line on
    stderr while the others go on. Returns its exit code."""
    if recipes == 1:
        raise error
    click.echo(f"{prefix}error: {str(error).splitlines()[-1]}", err=True)
    return error.exit_code
