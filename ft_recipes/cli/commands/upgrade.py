"""``ftr upgrade``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ft_recipes.cli.commands import guard
from ft_recipes.core.findings import UsageError


@click.command("upgrade")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False),
                metavar="NATIVE|RECIPE...")
@click.option("--to", "target", default=None, metavar="BACKEND=VERSION",
              help="The version to move native configs to: llamafactory=0.9.5, axolotl=0.19.0 or axolotl=0.21.0 "
                   "(recipes move to the recipe format this ftr reads).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write each upgraded file into this folder (same file name).")
@click.option("--in-place", is_flag=True, help="Rewrite each file where it is.")
@click.option("--force", is_flag=True, help="With -o: overwrite files already there.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a file would change (CI, pre-commit).")
@click.option("--drop", is_flag=True,
              help="Also remove keys the target refuses and has no successor for (each is listed).")
@guard
def upgrade_cmd(files: tuple[str, ...], target: str | None, out_dir: str | None, in_place: bool, force: bool,
                check: bool, drop: bool) -> None:
    """Rewrite native LLaMA-Factory / Axolotl configs for a newer backend version: renamed and moved keys,
    renamed values and structural moves, keeping comments, key order and formatting. Every rewrite is listed
    with the version that made it; a removed key with no successor is a finding with the reason.

    A recipe is moved to the recipe format this ftr reads (its `ftr:` version; docs/recipe-format.md), with the
    same guarantees.

    Without -o or --in-place nothing is written (the list shows what would change)."""
    if out_dir and in_place:
        raise UsageError("give -o DIR or --in-place, not both")
    results = [_upgrade(Path(f), target, drop) for f in files]
    for result in results:
        _report(result)
    if check:
        sys.exit(1 if any(r.changed for r in results) else 0)
    if out_dir or in_place:
        _write(results, out_dir, force)
    elif any(r.changed for r in results):
        click.echo("(nothing written: give -o DIR or --in-place)", err=True)
    sys.exit(1 if any(f.severity == "error" for r in results for f in r.findings) else 0)


def _upgrade(path: Path, target: str | None, drop: bool):
    """A recipe through the recipe format's migrations, a native config to ``target``."""
    from ft_recipes.backends.upgrade import parse_target, upgrade_file
    from ft_recipes.recipe.formats import is_recipe, migrate_file
    from ft_recipes.recipe.load import load_file

    if is_recipe(load_file(path, keep_last=True).data):
        return migrate_file(path)
    if target is None:
        raise UsageError(f"{path} is a native config: give --to BACKEND=VERSION")
    backend, version = parse_target(target)
    return upgrade_file(path, backend, version, drop)


def _report(result) -> None:
    for change in result.changes:
        click.echo(change.render(result.file))
    for finding in result.findings:
        click.echo(finding.text())
    if not result.changes and not result.findings:
        click.echo(f"{result.file}: nothing to upgrade")


def _write(results, out_dir: str | None, force: bool) -> None:
    targets = {}
    for result in results:
        path = Path(out_dir) / Path(result.file).name if out_dir else Path(result.file)
        if path in targets:
            raise UsageError(f"{result.file} and {targets[path]} would both be written to {path}")
        if out_dir and path.exists() and not force:
            raise UsageError(f"{path} exists; --force overwrites it")
        targets[path] = result.file
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    for path, result in zip(targets, results):
        if out_dir or result.changed:
            path.write_text(result.new_text, encoding="utf-8")
            click.echo(f"wrote {path}", err=True)
