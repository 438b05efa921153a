"""The recipe format's version (``ftr: N``) and the migrations between versions, declared once.

Policy (docs/recipe-format.md): within a format version, fields are only added, never renamed, removed or given
another meaning, so every recipe of that version keeps loading and training the same. A change that would break
that bumps ``FORMAT`` and declares a ``Migration`` from the previous version: ``ftr upgrade RECIPE`` applies the
migrations from the recipe's version to ``FORMAT`` in order, keeping the file's comments, order and formatting,
and lists each edit; a value a migration cannot carry is a finding, never a silent drop. The schema's ``ftr``
key is generated from ``FORMAT``; a recipe of an older format is refused with the upgrade command to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FORMAT = 1  # the format this ftr writes and reads


@dataclass(frozen=True)
class Rename:
    """A field moved to another path (dotted, e.g. ``train.lr`` -> ``train.learning_rate``), value kept."""

    old: str
    new: str


@dataclass(frozen=True)
class Remove:
    """A field with no successor: removed when it holds ``idle`` (asks for nothing), else an error finding."""

    path: str
    reason: str
    idle: object = None


@dataclass(frozen=True)
class Migration:
    """From format ``to - 1`` to ``to``: its steps in order, and where the change was decided (release note)."""

    to: int
    steps: tuple
    source: str


MIGRATIONS: tuple[Migration, ...] = ()  # format 1 is the first: nothing to migrate yet


def is_recipe(data) -> bool:
    """A mapping with a key only recipes have: ``ftr``, ``extends`` or a ``model`` section."""
    return isinstance(data, dict) and ("ftr" in data or "extends" in data or isinstance(data.get("model"), dict))


def version_of(data) -> object:
    """The ``ftr:`` of a loaded recipe mapping (1 when absent: every recipe before the key existed is format 1)."""
    return data.get("ftr", 1) if hasattr(data, "get") else None


def migrate_text(text: str, file: str = "<string>", migrations: tuple[Migration, ...] | None = None):
    """The recipe ``text`` at format ``FORMAT`` (a ``core.roundtrip.Result``): each migration after its ``ftr:``
    applied in order, ``ftr:`` set to the last one's version."""
    from ft_recipes.core.findings import Finding
    from ft_recipes.core.roundtrip import Result, dump, keep_indent, line_of, load_or_problem, patched, round_trip_yaml

    chain = MIGRATIONS if migrations is None else migrations
    latest = max([FORMAT, *(m.to for m in chain)])
    yaml = round_trip_yaml()
    data, problem = load_or_problem(yaml, text)
    result = Result(file, text, text)
    if problem:
        line, message, duplicate = problem
        result.findings.append(Finding(file, line, 1, "FTR000", "error", f"{message}; nothing upgraded",
                                       "remove the earlier one" if duplicate else "", ""))
        return result
    version = version_of(data)
    if not isinstance(version, int) or version < 1:
        result.findings.append(Finding(file, line_of(data, "ftr") or 1, 1, "FTR002", "error",
                                       f"ftr: {version!r} is not a recipe format version", f"write ftr: {latest}",
                                       "ftr"))
        return result
    if version > latest:
        result.findings.append(Finding(file, line_of(data, "ftr"), 1, "FTR002", "error",
                                       f"recipe format {version} is newer than this ftr's ({latest})",
                                       "upgrade ft-recipes to read it", "ftr"))
        return result
    for migration in [m for m in sorted(chain, key=lambda m: m.to) if m.to > version]:
        for step in migration.steps:
            _apply(step, data, migration, result)
        _set_version(data, migration, result)
    if result.changes:
        keep_indent(yaml, text)
        result.new_text = patched(text, dump(yaml, yaml.load(text)), dump(yaml, data))
    return result


def _set_version(data, migration: Migration, result) -> None:
    from ft_recipes.core.roundtrip import Change, line_of

    if "ftr" in data:
        data["ftr"] = migration.to
    else:
        data.insert(0, "ftr", migration.to)
    result.changes.append(Change(line_of(data, "ftr"), f"ftr: {migration.to}", f"recipe format {migration.to}",
                                 migration.source, ("ftr",)))


def _parent(data, path: str):
    """(mapping holding the last part of ``path``, that part), or (None, part) when a section is absent."""
    *sections, key = path.split(".")
    for name in sections:
        data = data.get(name) if hasattr(data, "get") else None
    return (data if hasattr(data, "items") else None), key


def _apply(step, data, migration: Migration, result) -> None:
    from ft_recipes.core.findings import Finding
    from ft_recipes.core.roundtrip import Change, drop_key, line_of, rename_key

    where = f"recipe format {migration.to}"
    if isinstance(step, Rename):
        holder, key = _parent(data, step.old)
        new_holder, new_key = _parent(data, step.new)
        if holder is None or key not in holder:
            return
        line = line_of(holder, key)
        if new_holder is holder:
            rename_key(holder, key, new_key)
        elif new_holder is not None:
            new_holder[new_key] = holder[key]
            drop_key(holder, key)
        else:
            result.findings.append(Finding(result.file, line, 1, "FTR002", "error",
                                           f"{step.old} moved to {step.new}, whose section is absent",
                                           f"write {step.new} by hand ({migration.source})", step.old))
            return
        result.changes.append(Change(line, f"{step.old} -> {step.new}", where, migration.source, (step.old,)))
    elif isinstance(step, Remove):
        holder, key = _parent(data, step.path)
        if holder is None or key not in holder:
            return
        line, value = line_of(holder, key), holder[key]
        if value == step.idle:
            drop_key(holder, key)
            result.changes.append(Change(line, f"{step.path}: {value} removed ({step.reason})", where,
                                         migration.source, (step.path,)))
        else:
            result.findings.append(Finding(result.file, line, 1, "FTR002", "error",
                                           f"{step.path}: {value} has no successor in recipe format {migration.to}",
                                           f"{step.reason} ({migration.source})", step.path))


def migrate_file(path: Path):
    return migrate_text(path.read_text(encoding="utf-8"), str(path))
