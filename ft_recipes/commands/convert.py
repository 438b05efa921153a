"""``ftr import`` (native -> recipe) and ``ftr convert`` (native -> other backend, via a recipe)."""

from __future__ import annotations

from pathlib import Path

import click

from . import emit_text, guard
from ..backends import NAMES, names


def _import(native: str, source: str | None, run_dir: str | None = None, dataset_dir: str | None = None):
    from ..datasets import running_from
    from ..load import load_file
    from ..native import import_document

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


def _check_native(doc) -> None:
    """Say what a file is when it is no native config: a recipe, or neither."""
    from ..findings import FtrError
    from ..native import detect_dialect

    data = doc.data
    if detect_dialect(data) != "recipe":
        return
    if isinstance(data, dict) and ("ftr" in data or "extends" in data or isinstance(data.get("model"), dict)):
        raise FtrError(f"{doc.file} is already a recipe; compile it with `ftr compile`", exit_code=2)
    raise FtrError(f"{doc.file} is neither a recipe nor a LLaMA-Factory or Axolotl config (no "
                   f"model_name_or_path, base_model or other key of theirs); pass --from to read it as one",
                   exit_code=1)


def _report(imported) -> None:
    for key, value in sorted(imported.passthrough.items()):
        click.echo(f"kept  {key}: {value!r} (no recipe key; under backends.{imported.dialect})", err=True)
    for note in imported.notes:
        click.echo(f"note  {note.key}: {note.reason}", err=True)


@click.command("import")
@click.argument("native", type=click.Path(dir_okay=False))
@click.option("--from", "source", type=click.Choice(names("import")), default=None,
              help="Dialect (default: detected).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Recipe file to write (default stdout). Never overwritten without --force.")
@click.option("--force", is_flag=True, help="Overwrite the output recipe if it exists.")
@_where
@guard
def import_cmd(native: str, source: str | None, output: Path | None, force: bool, run_dir: str | None,
               dataset_dir: str | None) -> None:
    """Turn a native LLaMA-Factory or Axolotl config into a recipe.

    Keys with no recipe counterpart are kept under `backends.<name>`, so nothing is lost; each is listed.
    """
    from ..emit import to_yaml
    from ..native import relative_paths
    from ..paths import real_parent

    imported = _import(native, source, run_dir, dataset_dir)
    data = imported.resolved.data
    if output is not None:  # paths relative to the recipe written, as a recipe reads them
        data = relative_paths(data, output.resolve().parent, real_parent(native))
    text = f"# Imported by ftr from {Path(native).name} ({imported.dialect}).\n" + to_yaml(data)
    _report(imported)
    emit_text(text, output, force, protected=[native])


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
@guard
def convert_cmd(native: str, target: str, source: str | None, out_dir: Path | None, force: bool, lossy: bool,
                run_dir: str | None, dataset_dir: str | None) -> None:
    """Convert a native config to another backend through a recipe, with a fidelity report.

    The report lists every value that was approximated, changed meaning, or could not be carried.
    """
    from .. import backends
    from ..emit import render, write_outputs
    from ..findings import FtrError
    from ..normalise import normalise
    from ..validate import validate

    imported = _import(native, source, run_dir, dataset_dir)
    findings = validate(imported.resolved)
    if findings:
        raise FtrError(f"{native}: cannot convert", _why_no_training(imported, findings, target))
    recipe = normalise(imported.resolved)
    if imported.dialect != target and not lossy:
        dropped = _training_keys_lost(imported, target)
        if dropped:
            raise FtrError(f"{native}: cannot convert without changing the training", dropped)
    if imported.dialect != target:
        recipe = _drop_foreign_passthrough(recipe, imported.dialect)
        recipe = _soften_defaults(recipe, imported)
    emitted = backends.get(target).emit(recipe, (out_dir or Path.cwd()).resolve())
    main_cfg = emitted.configs[emitted.main]
    for key in sorted(imported.passthrough):
        if imported.dialect == target:
            continue
        value = imported.passthrough[key]
        if isinstance(main_cfg, dict) and key in main_cfg and main_cfg[key] == value:  # the target writes it too
            click.echo(f"kept  {key}: {value!r} (the {target} config sets the same value)", err=True)
        else:
            click.echo(f"lost  {key}: {value!r} ({imported.dialect}-only; not carried)", err=True)
    for note in imported.notes:
        click.echo(f"note  {note.key}: {note.reason}", err=True)
    for note in emitted.notes:
        click.echo(f"note  {note.key}: {note.message}", err=True)
    if out_dir is None:
        click.echo(render(emitted.main, emitted.configs[emitted.main], recipe, emitted), nl=False)
    else:
        for path in write_outputs(emitted, recipe, out_dir.resolve(), force):
            click.echo(f"wrote {path}", err=True)


def _why_no_training(imported, findings: list, target: str) -> list:
    """A config its backend does not train on (inference, export, evaluation) lacks training data: say that,
    rather than only that ``data.train`` is missing."""
    from dataclasses import replace

    from .. import backends

    title = backends.get(imported.dialect).title
    stage = imported.resolved.data.get("stage")
    findings = [_no_stage(f, title, stage, target) if f.key == "stage" and f.code == "FTR002" else f
                for f in findings]
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

    from .. import backends

    return replace(finding, code="FTR005", message=f"{title}'s {stage!r} trainer has no recipe stage, so ftr cannot "
                   f"carry it to {backends.get(target).title}", hint=f"keep training with {title}")


def _training_keys_lost(imported, target: str) -> list:
    """FTR005 for each source-only key (kept under ``backends.<source>``) that the source backend declares as
    changing the training and that holds a value other than its default: the target would train otherwise."""
    from .. import backends
    from ..catalogue import load
    from ..findings import Finding

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


def _soften_defaults(recipe, imported):
    """A source backend's *default* that the target cannot express is approximated, with a note;
    a value the user wrote stays and makes the emitter refuse (FTR005)."""
    from dataclasses import replace

    if recipe.data.overlength == "drop" and ("data", "overlength") not in imported.resolved.provenance:
        click.echo("note  data.overlength: the source's default (drop over-long rows) becomes truncate", err=True)
        recipe = replace(recipe, data=replace(recipe.data, overlength="truncate"))
    return recipe


def _drop_foreign_passthrough(recipe, dialect: str):
    from dataclasses import replace

    return replace(recipe, backends={k: v for k, v in recipe.backends.items() if k != dialect})
