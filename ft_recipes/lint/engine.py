"""Running the rules: selection, suppression (recipe `lint.ignore`, `# ftr: noqa`) and --strict."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.lint.options import Options
from ft_recipes.lint.pack import load_pack, rule_section
from ft_recipes.lint.registry import Context, all_rules


@lru_cache(maxsize=16)
def _selected(options: Options) -> tuple[tuple[type, dict], ...]:
    """The rules ``options`` select, each with its rule-pack section: worked out once per options."""
    pack = load_pack(options.rule_packs)
    return tuple((cls, rule_section(pack, code)) for code, cls in all_rules().items()
                 if cls.checked_here() and options.selects(code))


def run_rules(recipe, options: Options, dialect: str = "recipe", native: dict | None = None,
              extends_at: tuple | None = None) -> list[Finding]:
    """Findings of every selected rule on one normalised recipe (before suppression); ``native`` is the
    mapping of a native file of ``dialect`` as written; ``extends_at`` the position of the recipe's `extends`."""
    findings: list[Finding] = []
    version = options.version_of(dialect) if dialect != "recipe" else None
    for cls, section in _selected(options):
        ctx = Context(recipe, cls, section, dialect=dialect, native=native, version=version, extends_at=extends_at)
        cls().check(ctx)
        findings += ctx.findings
    return findings


def finish(findings: list[Finding], options: Options, recipe_ignore: tuple[str, ...] = (),
           lines: dict | None = None) -> list[Finding]:
    """Drop unselected and suppressed findings, apply --strict, sort."""
    from ft_recipes.lint.noqa import suppressed

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

    Without ``options`` the settings of the pyproject.toml nearest the recipe ([tool.ftr.lint]) apply.
    """
    from ft_recipes.lint.options import from_project

    options = options or from_project(Path(loaded.resolved.document.file).parent)
    recipe = loaded.recipe
    native = loaded.resolved.document.data if loaded.dialect != "recipe" else None
    findings = run_rules(recipe, options, loaded.dialect, native, _extends_at(loaded.resolved.document))
    if native is not None:
        from ft_recipes.lint.native_keys import speak_native

        findings = speak_native(findings, loaded.resolved.document, loaded.dialect, loaded.resolved.provenance)
    return finish(findings, options, recipe.lint_ignore, _layer_lines(loaded))


def _extends_at(document) -> tuple | None:
    """(file, line, col) of the document's `extends`, if it has one."""
    if not isinstance(document.data, dict) or "extends" not in document.data:
        return None
    return (document.file, *document.pos(("extends",)))


def lint_file(path: str | Path, options: Options, dialect: str | None = None) -> list[Finding]:
    """Findings for one recipe or native LLaMA-Factory / Axolotl file.

    Invalid input gives its load/schema findings only; a native file also gets its backend key-catalogue
    findings (unknown keys, types, deprecations), then the same rules as a recipe, at the native keys.
    """
    from ft_recipes.backends.native import detect_dialect
    from ft_recipes.recipe.load import load_file

    try:
        doc = load_file(path, keep_last=True)
    except FtrError as exc:
        if not exc.findings:
            raise
        return finish(list(exc.findings), options)
    if not doc.duplicates:
        return _lint_document(path, doc, options, dialect)
    if (dialect or detect_dialect(doc.data)) == "recipe":
        return finish(doc.duplicates[:1], options)  # a recipe with a repeated key is not read further
    # a native file is read as its backend reads it (the later value kept), so the other checks still run
    return sorted(set(_lint_document(path, doc, options, dialect) + finish(doc.duplicates, options)))


def _lint_document(path, doc, options: Options, dialect: str | None) -> list[Finding]:
    """lint_file's findings on a loaded document (its repeated keys aside)."""
    from ft_recipes.backends.catalogue import check_native
    from ft_recipes.backends.native import detect_dialect
    from ft_recipes.recipe.loaded import load_document

    dialect = dialect or detect_dialect(doc.data)
    if dialect == "recipe" and isinstance(doc.data, dict) and "stages" in doc.data:
        return lint_pipeline(path, options)
    native = check_native(doc, dialect, options.version_of(dialect)) + _non_finite(doc, dialect) \
        if dialect != "recipe" else []
    lines = {doc.file: tuple(doc.lines)}
    try:
        loaded = load_document(doc if not native else _coerced(doc), dialect)
    except FtrError as exc:
        if not exc.findings:
            raise
        schema = _not_covered(list(exc.findings), native)
        if dialect != "recipe":
            schema = _native_schema(schema, doc, dialect)
        return finish(schema + native, options, lines=lines)
    return sorted(set(finish(native, options, lines=lines) + lint_recipe(loaded, options)))


def _non_finite(doc, dialect: str) -> list[Finding]:
    """FTR002 errors for NaN and infinities anywhere in a native file: the backend would train on them."""
    from ft_recipes.recipe.load import dotted
    from ft_recipes.recipe.validate import non_finite

    out = []
    for path, value in non_finite(doc.data):
        line, col = doc.pos(path)
        out.append(Finding(doc.file, line, col, "FTR002", "error", f"{dotted(path)}: {value!r} is not a finite number",
                           f"write a finite number; {dialect} would run with it", dotted(path)))
    return out


def _coerced(doc):
    """A native document with quoted numbers read as numbers, as the backends' own loaders do, so the
    best-practice rules still run after the catalogue has reported the quoting (FTR002). (``fix`` builds new
    mappings and lists, so the document's own data is left as it is.)"""
    from dataclasses import replace

    def fix(value):
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return value
            return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        return value

    return replace(doc, data=fix(doc.data))


def _native_schema(findings: list[Finding], doc, dialect: str) -> list[Finding]:
    """Recipe-schema findings on a native file, judged as the backend judges the file: the backend's own
    catalogue has already checked its keys and values (FTR001/FTR002), so a value that only ftr's recipe cannot
    hold is an info that the best-practice rules did not run; missing training data matters only when the
    file trains; a missing base model stays an error (both backends refuse)."""
    from dataclasses import replace

    from ft_recipes import backends

    trains = getattr(backends.importer(dialect), "needs_training_data", lambda src: True)(doc.data)
    out = []
    for finding in findings:
        if finding.code == "FTR003" and finding.key.startswith("data"):
            if trains:
                out.append(finding)
        elif finding.code == "FTR003" and finding.severity == "error":
            out.append(finding)
        else:
            out.append(replace(finding, severity="info", code=finding.code,
                               message=f"not checked by ftr's rules: {finding.message}",
                               hint=f"{dialect} accepts this value; ftr's recipe cannot hold it yet"))
    return out


def _not_covered(findings: list[Finding], native: list[Finding]) -> list[Finding]:
    """Schema findings on lines the catalogue already reported are the same problem said twice."""
    lines = {f.line for f in native}
    return [f for f in findings if f.line not in lines]


def lint_paths(paths, options: Options | None = None) -> list[Finding]:
    """Findings for files, directories (recipes found recursively) and globs, sorted.

    Raises FtrError (exit 2) when a path matches nothing or a file cannot be read.
    """
    from ft_recipes.lint.files import expand
    from ft_recipes.lint.options import from_project

    findings: list[Finding] = []
    for file in expand(paths):
        findings += lint_file(file, options or from_project(Path(file).parent))
    return sorted(findings)


# --- pipelines (stages:) ----------------------------------------------------------------------------------------

def stage_findings(pipeline, options) -> list[Finding]:
    """Every stage's findings, each naming its stage."""
    from ft_recipes.recipe.stages import in_stage

    out = []
    for stage in pipeline.stages:
        if stage.loaded is not None:
            out += [in_stage(f, stage.name) for f in lint_recipe(stage.loaded, options)]
    return out


def lint_pipeline(path, options=None) -> list[Finding]:
    """``ftr lint`` of a pipeline: its load and schema findings, or every stage's findings, the stage named."""
    from ft_recipes.lint.options import from_project
    from ft_recipes.recipe.stages import load_pipeline

    options = options or from_project(Path(path).parent)
    try:
        pipeline = load_pipeline(path)
    except FtrError as exc:
        if not exc.findings:
            raise
        return finish(list(exc.findings), options)
    return sorted(set(stage_findings(pipeline, options)))
