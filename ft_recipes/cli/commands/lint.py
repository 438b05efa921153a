"""`ftr lint PATH...` and `ftr rules [CODE]`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ft_recipes.backends import names
from ft_recipes.cli.commands import guard

FORMATS = ("text", "json", "sarif", "github")  # keys of ft_recipes.lint.reporters.REPORTERS (kept import-free)


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format: text lines, JSON, SARIF 2.1.0, or GitHub Actions annotations.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--select", multiple=True, metavar="CODES", help="Only these codes or prefixes (e.g. FTR1,FTR301).")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Add codes or prefixes to the selection.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip these codes or prefixes.")
@click.option("--rule-pack", "rule_packs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A rule pack YAML merged over the default and [tool.ftr.lint] packs.")
@click.option("--no-noqa", is_flag=True, help="Ignore `# ftr: noqa` comments.")
@click.option("--only-recipes", is_flag=True,
              help="Skip named files that are neither recipes nor native LLaMA-Factory/Axolotl configs (or are "
                   "under presets/): for pre-commit, which passes every YAML file.")
@click.option("--dialect", type=click.Choice(("recipe", *names("import"))), default=None,
              help="Read every file as this dialect (default: detected from its keys).")
@click.option("--backend-version", "backend_versions", multiple=True, metavar="BACKEND=VERSION",
              help="Key catalogue for native files, e.g. axolotl=0.21.0 (default: [tool.ftr.lint] or [tool.ftr] "
                   "backend-versions, else the version of $FTR_<NAME>_PYTHON, else ftr's default).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Where the backend will be run from: native files' dataset, dataset_dir and DeepSpeed paths "
                   "resolve against it, as the backends do (default: the working directory).")
@click.option("--dataset-dir", default=None, metavar="DIR",
              help="LLaMA-Factory: the dataset_dir to find dataset_info.json in, over the config's own "
                   "(relative to the run directory).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to a file, not stdout.")
@click.option("--force", is_flag=True, help="Let -o replace a file that ftr did not write.")
@guard
def lint_cmd(paths, fmt, strict, select, extend_select, ignore, rule_packs, no_noqa, only_recipes, dialect,
             backend_versions, run_dir, dataset_dir, output, force):
    """Check recipes and native LLaMA-Factory / Axolotl configs against the best-practice rules
    (`ftr rules` lists them); native files are also checked against the backend's key catalogue.

    PATHS are files, directories (recipes and native configs found recursively, skipping `presets/`),
    or globs. Settings come from [tool.ftr.lint] in the pyproject.toml nearest each file (not the working
    directory), the recipe's `lint.ignore`, `# ftr: noqa: CODE` comments, and these options.

    Exit codes: 0 no error-level finding, 1 error-level findings, 2 usage or I/O error.
    """
    from ft_recipes.core.project import find_pyproject
    from ft_recipes.lint.engine import lint_file
    from ft_recipes.lint.files import expand
    from ft_recipes.lint.reporters import REPORTERS

    by_project: dict = {}

    def options_at(folder: Path):
        pyproject = find_pyproject(folder)
        if pyproject not in by_project:
            by_project[pyproject] = _options_for(pyproject, select, ignore, extend_select, strict, rule_packs,
                                                 no_noqa, backend_versions)
        return by_project[pyproject]

    options_at(Path.cwd())  # a bad option is a usage error even when no file is found
    _warn_preset_path()
    from ft_recipes.recipe.datasets import running_from
    from ft_recipes.recipe.modelinfo import remembered

    files = expand(paths, only_recipes)
    with running_from(run_dir, dataset_dir), remembered():
        findings = sorted(f for file in files for f in lint_file(file, options_at(Path(file).parent), dialect))
    text = REPORTERS[fmt]().render(findings, files)
    if output:
        from ft_recipes.core.writes import write_one

        write_one(Path(output), text + "\n", force, protected=files)
    elif text:
        click.echo(text)
    sys.exit(1 if any(f.severity == "error" for f in findings) else 0)


def _warn_preset_path() -> None:
    """FTR_PRESET_PATH naming a folder that does not exist is never silent: a recipe that extends a preset gets an
    FTR004 error; every lint says it once, so that a recipe without `extends` (and pre-commit) shows it too."""
    import os

    missing = [d for d in os.environ.get("FTR_PRESET_PATH", "").split(os.pathsep) if d and not os.path.isdir(d)]
    if missing:
        click.echo(f"warning: FTR_PRESET_PATH names {', '.join(missing)}, which is not a directory: no preset can "
                   f"be found there; fix or unset it", err=True)


def _options_for(pyproject, select, ignore, extend_select, strict, rule_packs, no_noqa, backend_versions):
    """The command line over the settings of ``pyproject`` (None: none found)."""
    from ft_recipes.lint.options import from_project, merge_cli

    start = pyproject.parent if pyproject else Path.cwd()
    options = merge_cli(from_project(start), select, ignore, extend_select, strict, rule_packs, no_noqa)
    return _with_versions(options, backend_versions, start)


def _with_versions(options, backend_versions, start: Path):
    """The catalogue version per backend: --backend-version, else [tool.ftr.lint] backend-versions, else the
    version ftr targets ([tool.ftr] backend-versions, $FTR_<NAME>_PYTHON's version; ``chosen_versions``)."""
    from dataclasses import replace

    from ft_recipes.backends import chosen_versions
    from ft_recipes.lint.options import versions

    chosen = {**chosen_versions({}, start), **dict(options.versions),
              **dict(versions(backend_versions, "--backend-version"))}
    return replace(options, versions=tuple(chosen.items()))


@click.command("rules")
@click.argument("code", required=False)
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@guard
def rules_cmd(code, fmt):
    """List the lint rules, or show the documentation of one (e.g. `ftr rules FTR101`)."""
    import json

    from ft_recipes.core.findings import UsageError
    from ft_recipes.lint.registry import all_rules

    rules = all_rules()
    if code:
        cls = rules.get(code.upper())
        if cls is None:
            raise UsageError(f"unknown rule {code!r}; `ftr rules` lists them")
        from ft_recipes.lint.docs import markdown

        click.echo(json.dumps(_rule_data(cls), indent=2) if fmt == "json" else markdown(cls).rstrip())
        return
    if fmt == "json":
        click.echo(json.dumps([_rule_data(cls) for cls in rules.values()], indent=2))
        return
    width = max(len(cls.name) for cls in rules.values())
    for cls in rules.values():
        status = "" if cls.status == "stable" else f" [{cls.status}]"
        click.echo(f"{cls.code}  {cls.severity:<7}  {cls.name:<{width}}  {cls.summary}{status}")


def _rule_data(cls) -> dict:
    return {"code": cls.code, "name": cls.name, "severity": cls.severity, "status": cls.status,
            "summary": cls.summary, "url": cls.url()}
