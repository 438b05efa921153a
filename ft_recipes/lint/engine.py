"""Running the rules: selection, suppression (recipe `lint.ignore`, `# ftr: noqa`) and --strict."""

from __future__ import annotations

from pathlib import Path

from ..findings import Finding, FtrError
from .options import Options
from .pack import load_pack, rule_section
from .registry import Context, all_rules


def run_rules(recipe, options: Options) -> list[Finding]:
    """Findings of every selected rule on one normalised recipe (before suppression)."""
    pack = load_pack(options.rule_packs)
    findings: list[Finding] = []
    for code, cls in all_rules().items():
        if not cls.checked_here() or not options.selects(code):
            continue
        ctx = Context(recipe, cls, rule_section(pack, code))
        cls().check(ctx)
        findings += ctx.findings
    return findings


def finish(findings: list[Finding], options: Options, recipe_ignore: tuple[str, ...] = (),
           lines: dict | None = None) -> list[Finding]:
    """Drop unselected and suppressed findings, apply --strict, sort."""
    from .noqa import suppressed

    out = []
    for finding in findings:
        if not options.selects(finding.code) or any(finding.code.startswith(c) for c in recipe_ignore):
            continue
        if options.noqa and suppressed(finding, lines):
            continue
        if options.strict and finding.severity == "warning":
            finding = finding.with_severity("error")
        out.append(finding)
    return sorted(set(out))


def _layer_lines(loaded) -> dict[str, tuple[str, ...]]:
    return {layer.file: tuple(layer.lines) for layer in getattr(loaded.resolved, "layers", ())}


def lint_recipe(loaded, options: Options | None = None) -> list[Finding]:
    """Findings for a loaded recipe (``pipeline.load_recipe(path)``), sorted.

    Without ``options`` the settings of the nearest pyproject.toml ([tool.ftr.lint]) apply.
    """
    from .options import from_project

    options = options or from_project()
    recipe = loaded.recipe
    return finish(run_rules(recipe, options), options, recipe.lint_ignore, _layer_lines(loaded))


def lint_file(path: str | Path, options: Options) -> list[Finding]:
    """Findings for one recipe file: schema/load findings when it is invalid, else the rules' findings."""
    from ..pipeline import load_recipe

    try:
        loaded = load_recipe(path)
    except FtrError as exc:
        if not exc.findings:
            raise
        return finish(list(exc.findings), options)
    return lint_recipe(loaded, options)


def lint_paths(paths, options: Options | None = None) -> list[Finding]:
    """Findings for files, directories (recipes found recursively) and globs, sorted.

    Raises FtrError (exit 2) when a path matches nothing or a file cannot be read.
    """
    from .files import expand
    from .options import from_project

    options = options or from_project()
    findings: list[Finding] = []
    for file in expand(paths):
        findings += lint_file(file, options)
    return sorted(findings)
