"""``ftr compile``, ``ftr validate`` and ``ftr schema``."""

from __future__ import annotations

from pathlib import Path

import click

from ft_recipes import backends
from ft_recipes.backends import NAMES
from ft_recipes.cli.commands import backend_version_option, guard, targets


def compile_recipe(path: str, backend: str, out_dir: Path | None, force: bool = False):
    """Load -> resolve -> validate -> normalise -> emit; write into out_dir when given."""
    from ft_recipes.backends.emitted import render, write_outputs
    from ft_recipes.lint.gate import check_data
    from ft_recipes.recipe.loaded import load_recipe

    loaded = load_recipe(path)
    check_data(loaded)
    target = backends.get(backend)
    emitted = target.emit(loaded.recipe, (out_dir or Path.cwd()).resolve())
    written = write_outputs(emitted, loaded.recipe, out_dir.resolve(), force) if out_dir else []
    text = render(emitted.main, emitted.configs[emitted.main], loaded.recipe, emitted)
    return loaded, emitted, written, text


@click.command("compile")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--backend", "-b", type=click.Choice(NAMES), required=True, help="Backend to compile for.")
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the native config(s); without it the main config goes to stdout.")
@click.option("--force", is_flag=True, help="Overwrite files in the output directory that ftr did not write.")
@backend_version_option
@guard
def compile_cmd(recipe: str, backend: str, out_dir: Path | None, force: bool, backend_versions) -> None:
    """Compile RECIPE into the backend's native config.

    \b
    axolotl:      OUT/axolotl.yaml (+ OUT/data/*.jsonl for rows rewritten as messages)
    llamafactory: OUT/llamafactory.yaml and OUT/dataset_info.json
    """
    with targets(backend_versions, backend, recipe):
        _compile(recipe, backend, out_dir, force)


def _compile(recipe: str, backend: str, out_dir: Path | None, force: bool) -> None:
    from ft_recipes.recipe.stages import has_stages

    if has_stages(recipe):
        _compile_pipeline(recipe, backend, out_dir, force)
        return
    _, emitted, written, text = compile_recipe(recipe, backend, out_dir, force)
    for note in emitted.notes:
        if not note.cross:  # a note belongs to the backend compiled for
            click.echo(note.text(backend), err=True)
    if out_dir is None:
        click.echo(text, nl=False)
        extra = [name for name in (*emitted.configs, *emitted.data_files) if name != emitted.main]
        if extra:
            click.echo(f"note: {', '.join(extra)} not written; use -o DIR to write every file", err=True)
    else:
        for path in written:
            click.echo(f"wrote {path}", err=True)


def _compile_pipeline(recipe: str, backend: str, out_dir: Path | None, force: bool) -> None:
    """A pipeline (``stages:``): OUT/<stage>/ per stage and OUT/pipeline.json."""
    from ft_recipes.core.findings import UsageError
    from ft_recipes.run.pipelines import compile_pipeline

    if out_dir is None:
        raise UsageError(f"{recipe}: a pipeline compiles into one folder per stage; pass -o DIR")
    _, written, notes = compile_pipeline(recipe, backend, out_dir, force)
    for stage, name, note in notes:
        click.echo(f"stage {stage}: {note.text(name)}", err=True)
    for path in written:
        click.echo(f"wrote {path}", err=True)


@click.command("validate")
@click.argument("recipes", nargs=-1, required=True, type=click.Path(dir_okay=False))
@guard
def validate_cmd(recipes: tuple[str, ...]) -> None:
    """Check RECIPES against the recipe schema only (no best-practice rules: see `ftr lint`)."""
    from ft_recipes.core.findings import FtrError

    failed = 0
    worst = 0
    for path in recipes:
        try:
            _load_any_recipe(path)
            click.echo(f"{path}: ok")
        except FtrError as exc:
            click.echo(exc.render(), err=True)
            failed += 1
            worst = max(worst, exc.exit_code)
    if failed:
        raise SystemExit(worst)


def _load_any_recipe(path: str) -> None:
    from ft_recipes.recipe.loaded import load_recipe
    from ft_recipes.recipe.stages import has_stages, load_pipeline

    load_pipeline(path) if has_stages(path) else load_recipe(path)


@click.command("schema")
@guard
def schema_cmd() -> None:
    """Print the recipe JSON Schema (schemas/recipe.schema.json), for editors and CI."""
    from ft_recipes.core.paths import data_dir

    click.echo((data_dir("schemas") / "recipe.schema.json").read_text(encoding="utf-8"), nl=False)
