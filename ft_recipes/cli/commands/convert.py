"""``ftr import`` (native -> recipe) and ``ftr convert`` (native -> other backend, via a recipe)."""

from __future__ import annotations

from pathlib import Path

import click

from ft_recipes.backends import NAMES, names
from ft_recipes.cli.commands import emit_text, guard


def _import(native: str, source: str | None, run_dir: str | None = None, dataset_dir: str | None = None):
    from ft_recipes.backends.native import import_document
    from ft_recipes.recipe.datasets import running_from
    from ft_recipes.recipe.load import load_file

    doc = load_file(native)
    if source is None:
        _check_native(doc)
    with running_from(run_dir, dataset_dir):  # native paths resolve where the backend runs
        return import_document(doc, source)


def _where(command):
    """--run-dir and --dataset-dir: where the source backend runs, for its relative paths."""
    command = click.option("--dataset-dir", default=None, metavar="DIR",
                           help="LLaMA-Factory: the dataset_dir holding dataset_info.json, over the config's.")(command)
    return click.option("--run-dir", type=click.Path(file_okay=False), default=None,
                        help="Where the source backend runs (its relative paths resolve there; default: the "
                             "working directory).")(command)


def _reporting(command):
    """--format and --strict: the fidelity report's form, and failing on what it says."""
    command = click.option("--strict", is_flag=True,
                           help="Exit 1, writing nothing, when a value is approximated or lost (for CI).")(command)
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                        help="The fidelity report as text lines on stderr, or as JSON: on stdout with -o, else on "
                             "stderr (stdout holds the output).")(command)


def _check_native(doc) -> None:
    """Say what a file is when it is no native config: a recipe, or neither."""
    from ft_recipes.backends.native import detect_dialect
    from ft_recipes.core.findings import FtrError

    data = doc.data
    if detect_dialect(data) != "recipe":
        return
    if isinstance(data, dict) and ("ftr" in data or "extends" in data or isinstance(data.get("model"), dict)):
        raise FtrError(f"{doc.file} is already a recipe; compile it with `ftr compile`", exit_code=2)
    raise FtrError(f"{doc.file} is neither a recipe nor a LLaMA-Factory or Axolotl config (no "
                   f"model_name_or_path, base_model or other key of theirs); pass --from to read it as one",
                   exit_code=1)


def _import_report(native: str, imported):
    from ft_recipes.backends.fidelity import Report, kept_lines, merge, note_lines, read_lines

    report = Report(native, imported.dialect)
    report.lines = merge(read_lines(imported), kept_lines(imported))
    report.add(*note_lines(imported, {line.key for line in report.lines}, "kept"))
    return report


def _show(report, fmt: str, to_stdout: bool, written=()) -> None:
    """The report: text on stderr; JSON on stdout when ``to_stdout`` (the output went to files), else stderr."""
    if fmt == "json":
        click.echo(report.json(list(written)), nl=False, err=not to_stdout)
    else:
        click.echo(report.text(), nl=False, err=True)


def _finish(report, fmt: str, strict: bool, to_stdout: bool, write) -> None:
    """Write the output (``write()`` -> the paths written) and show the report; with ``strict``, a report with
    an approximated or lost value is shown and nothing is written (exit 1)."""
    from ft_recipes.core.findings import FtrError

    if strict and report.problems():
        _show(report, fmt, to_stdout)
        raise FtrError(f"--strict: {len(report.problems())} value(s) approximated or lost; nothing written")
    _show(report, fmt, to_stdout, write() or [])


def _validated(native: str, imported) -> None:
    """The imported recipe is a valid recipe, or an error at each key that is not (nothing is written)."""
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.validate import validate

    findings = validate(imported.resolved)
    if findings:
        raise FtrError(f"{native}: the imported recipe is not valid", _native(imported, _not_training(imported,
                                                                                                    findings)))


def _native(imported, findings: list) -> list:
    """Findings at native keys named as the native file names them (``num_train_epochs``, not ``train.epochs``)."""
    from ft_recipes.lint.native_keys import speak_native

    return speak_native(findings, imported.resolved.document, imported.dialect, imported.resolved.provenance)


@click.command("import")
@click.argument("native", type=click.Path(dir_okay=False))
@click.option("--from", "source", type=click.Choice(names("import")), default=None,
              help="Dialect (default: detected).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Recipe file to write (default stdout). Never overwritten without --force.")
@click.option("--force", is_flag=True, help="Overwrite the output recipe if it exists.")
@_where
@_reporting
@guard
def import_cmd(native: str, source: str | None, output: Path | None, force: bool, run_dir: str | None,
               dataset_dir: str | None, fmt: str, strict: bool) -> None:
    """Turn a native LLaMA-Factory or Axolotl config into a recipe, with a fidelity report.

    Keys with no recipe counterpart are kept under `backends.<name>`, so nothing is lost; each is listed.
    """
    from ft_recipes.backends.emitted import to_yaml
    from ft_recipes.backends.native import relative_paths
    from ft_recipes.core.paths import real_parent

    imported = _import(native, source, run_dir, dataset_dir)
    data = imported.resolved.data
    if output is not None:  # paths relative to the recipe written, as a recipe reads them
        data = relative_paths(data, output.resolve().parent, real_parent(native))
    text = f"# Imported by ftr from {Path(native).name} ({imported.dialect}).\n" + to_yaml(data)
    _validated(native, imported)
    _finish(_import_report(native, imported), fmt, strict, output is not None,
            lambda: emit_text(text, output, force, protected=[native]) or ([output] if output else []))


@click.command("convert")
@click.argument("native", type=click.Path(dir_okay=False))
@click.option("--to", "target", type=click.Choice(NAMES), required=True, help="Backend to convert to.")
@click.option("--from", "source", type=click.Choice(names("import")), default=None,
              help="Dialect (default: detected).")
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write the converted config and its data files in (default: print the config).")
@click.option("--force", is_flag=True, help="Overwrite files already in the output directory.")
@click.option("--lossy", is_flag=True,
              help="Convert even when a source key that changes the training (a loss variant, added tokens, "
                   "extra trained parameters) has no equivalent in the target; each is listed as lost.")
@_where
@_reporting
@guard
def convert_cmd(native: str, target: str, source: str | None, out_dir: Path | None, force: bool, lossy: bool,
                run_dir: str | None, dataset_dir: str | None, fmt: str, strict: bool) -> None:
    """Convert a native config to another backend through a recipe, with a fidelity report.

    The report says of every key of the native file whether it was carried, approximated, lost, refused or
    kept. With -o, the recipe is written beside the output (recipe.yaml): change it, then `ftr compile`.
    """
    from ft_recipes.backends.emitted import render
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.validate import validate

    imported = _import(native, source, run_dir, dataset_dir)
    findings = validate(imported.resolved)
    if findings:
        raise FtrError(f"{native}: cannot convert", _native(imported, _why_no_training(imported, findings, target)))
    report = _convert_report(native, imported, target)
    try:
        recipe, emitted, data = _convert(imported, target, lossy, out_dir, report)
    except FtrError as exc:
        _refused(report, exc, fmt, out_dir is not None)
    if out_dir is None:
        _finish(report, fmt, strict, False, lambda: click.echo(
            render(emitted.main, emitted.configs[emitted.main], recipe, emitted), nl=False))
    else:
        _finish(report, fmt, strict, True, lambda: _write(emitted, recipe, out_dir.resolve(), force,
                                                          _recipe_text(native, imported, target, data, out_dir)))


def _convert_report(native: str, imported, target: str):
    from ft_recipes.backends.fidelity import Report, read_lines
    from ft_recipes.lint.native_keys import Names

    report = Report(native, imported.dialect, target)
    report.add(*read_lines(imported, Names(target).nearest, same=imported.dialect == target))
    return report


def _convert(imported, target: str, lossy: bool, out_dir: Path | None, report):
    """(recipe, emitted, recipe data) of the conversion; the report gets the lost, kept and approximated
    lines. FtrError (FTR005) when the target cannot carry a value."""
    from ft_recipes import backends
    from ft_recipes.backends.fidelity import merge, note_lines, passthrough_lines
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.normalise import normalise

    recipe = normalise(imported.resolved)
    data = dict(imported.resolved.data)
    if imported.dialect != target:
        if not lossy:
            dropped = _training_keys_lost(imported, target)
            if dropped:
                raise FtrError("cannot convert without changing the training", dropped)
        recipe = _drop_foreign_passthrough(recipe, imported.dialect)
        data["backends"] = {k: v for k, v in (data.get("backends") or {}).items() if k != imported.dialect}
        recipe, data = _soften_defaults(recipe, imported, data, report)
    emitted = backends.get(target).emit(recipe, (out_dir or Path.cwd()).resolve())
    report.lines = merge(report.lines, passthrough_lines(imported, target, emitted.configs[emitted.main]))
    same = imported.dialect == target  # a round trip: what the recipe kept is written back as it was
    report.add(*note_lines(imported, {line.key for line in report.lines}, "kept" if same else "lost"))
    for note in () if same else emitted.notes:  # the emitter's notes compare the recipe with other backends
        report.lines = _approximated(report.lines, imported, note.key, note.message)
    return recipe, emitted, {k: v for k, v in data.items() if v != {}}


def _approximated(lines, imported, recipe_key: str, detail: str):
    from ft_recipes.backends.fidelity import approximate
    from ft_recipes.lint.native_keys import Names

    key = Names(imported.dialect).nearest(recipe_key) or recipe_key
    return approximate(lines, recipe_key, key, detail)


def _refused(report, exc, fmt: str, to_stdout: bool) -> None:
    """A conversion the target refuses: each FTR005 finding a refused line, shown as ftr shows findings
    (``file:line:col: CODE ...``), then the summary; exit 1. Another error is raised as it is."""
    import sys

    from ft_recipes.backends.fidelity import Line

    if not exc.findings or any(f.code != "FTR005" for f in exc.findings):
        raise exc
    report.add(*(Line("refused", f.key, None, f"{f.text()}", f.recipe_key or f.key) for f in exc.findings))
    if fmt == "json":
        _show(report, fmt, to_stdout)
    else:
        click.echo(exc.render() + "\n" + report.summary(), err=True)
    sys.exit(exc.exit_code)


def _write(emitted, recipe, out_dir: Path, force: bool, recipe_text: str) -> list[Path]:
    """The converted files and the recipe (recipe.yaml) as one set (see ``emit.write_outputs``)."""
    import json

    from ft_recipes.backends.emitted import render
    from ft_recipes.core.writes import write_set

    texts = {name: render(name, value, recipe, emitted) for name, value in emitted.configs.items()}
    for name, rows in emitted.data_files.items():
        texts[name] = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    texts[RECIPE] = recipe_text
    inputs = [recipe.source_file, *(d.path for d in (*recipe.data.train, *recipe.data.val) if d.path)]
    written = write_set(out_dir, texts, force, protected=[p for p in inputs if p])
    for path in written:
        click.echo(f"wrote {path}", err=True)
    return written


RECIPE = "recipe.yaml"  # the recipe convert -o writes beside the converted config


def _recipe_text(native: str, imported, target: str, data: dict, out_dir: Path) -> str:
    from ft_recipes import backends
    from ft_recipes.backends.emitted import to_yaml
    from ft_recipes.backends.native import relative_paths
    from ft_recipes.core.paths import real_parent

    title = backends.get(target).title
    data = relative_paths(data, out_dir.resolve(), real_parent(native))  # as `ftr import -o` writes them
    return (f"# Converted by ftr from {Path(native).name} ({imported.dialect}); compiled to {title} beside it.\n"
            f"# This recipe is now the source: change the recipe, then "
            f"`ftr compile {out_dir / RECIPE} -b {target} -o {out_dir}`.\n" + to_yaml(data))


def _why_no_training(imported, findings: list, target: str) -> list:
    """A trainer no recipe stage names, and a config its backend does not train on (see ``_not_training``)."""
    from ft_recipes import backends

    title = backends.get(imported.dialect).title
    stage = imported.resolved.data.get("stage")
    findings = [_no_stage(f, title, stage, target) if f.key == "stage" and f.code == "FTR002" else f
                for f in findings]
    return _not_training(imported, findings)


def _not_training(imported, findings: list) -> list:
    """A config its backend does not train on (inference, export, evaluation) lacks training data: say that,
    rather than only that ``data.train`` is missing."""
    from dataclasses import replace

    from ft_recipes import backends

    title = backends.get(imported.dialect).title
    trains = getattr(backends.importer(imported.dialect), "needs_training_data", lambda src: True)
    if trains(imported.resolved.document.data):
        return findings
    return [replace(f, message=f"not a training config: {title} does not train on it (inference, export or "
                               f"evaluation), and a recipe describes a training run", hint="convert the training "
                               "config it goes with") if f.code == "FTR003" and f.key.startswith("data") else f
            for f in findings]


def _no_stage(finding, title: str, stage, target: str):
    """A trainer of the source backend that no recipe stage names (Axolotl's ``rl: ebft``): say so."""
    from dataclasses import replace

    from ft_recipes import backends

    return replace(finding, code="FTR005", message=f"{title}'s {stage!r} trainer has no recipe stage, so ftr cannot "
                   f"carry it to {backends.get(target).title}", hint=f"keep training with {title}")


def _training_keys_lost(imported, target: str) -> list:
    """FTR005 for each source-only key (kept under ``backends.<source>``) that the source backend declares as
    changing the training and that holds a value other than its default: the target would train otherwise."""
    from ft_recipes import backends
    from ft_recipes.backends.catalogue import load
    from ft_recipes.core.findings import Finding

    source, goal = backends.get(imported.dialect), backends.get(target)
    defaults = load(source.name).get("keys", {})
    lost = [(key, (key,), value) for key, value in imported.passthrough.items()
            if key in source.changes_training and value != defaults.get(key, {}).get("default")]
    lost += [(note.key, note.path, note.value) for note in imported.notes if note.changes_training]
    out = []
    for key, path, value in lost:
        line, col = imported.resolved.document.pos(path, key=True)
        out.append(Finding(str(imported.resolved.document.file), line, col, "FTR005", "error",
                           f"{key}: {value!r} changes what {source.title} trains, and ftr cannot carry it to "
                           f"{goal.title}", f"keep training with {source.title}, remove the key, or convert with "
                           "--lossy (it is then listed as lost)", key))
    return out


def _soften_defaults(recipe, imported, data: dict, report):
    """A source backend's *default* that the target cannot express is approximated, with a report line;
    a value the user wrote stays and makes the emitter refuse (FTR005). -> (recipe, recipe data)."""
    from dataclasses import replace

    if recipe.data.overlength == "drop" and ("data", "overlength") not in imported.resolved.provenance:
        report.lines = _approximated(report.lines, imported, "data.overlength",
                                     "the source's default (drop over-long rows) becomes truncate")
        recipe = replace(recipe, data=replace(recipe.data, overlength="truncate"))
        data = {**data, "data": {**data.get("data", {}), "overlength": "truncate"}}
    return recipe, data


def _drop_foreign_passthrough(recipe, dialect: str):
    from dataclasses import replace

    return replace(recipe, backends={k: v for k, v in recipe.backends.items() if k != dialect})
