"""The pipeline, stage by stage: load -> resolve -> validate -> normalise (-> lint -> emit)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .findings import FtrError
from .load import load_file
from .normalise import normalise
from .recipe import Recipe
from .resolve import Resolved, resolve
from .validate import validate


@dataclass
class Loaded:
    resolved: Resolved
    recipe: Recipe


def resolve_file(path: str | Path) -> Resolved:
    return resolve(load_file(path))


def load_recipe(path: str | Path) -> Loaded:
    """Load, resolve and validate a recipe; raise FtrError (exit 1) with findings when invalid."""
    resolved = resolve_file(path)
    findings = validate(resolved)
    if findings:
        raise FtrError(f"{path}: invalid recipe ({len(findings)} problem(s))", findings)
    return Loaded(resolved, normalise(resolved))


def load_any(path: str | Path, dialect: str | None = None) -> tuple[Loaded, str, list]:
    """A recipe or a native LLaMA-Factory / Axolotl config, as a normalised recipe.

    Returns (loaded, dialect, import notes). Positions of a native file's values point at its own keys.
    """
    from .load import load_file
    from .native import detect_dialect, import_document

    doc = load_file(path)
    dialect = dialect or detect_dialect(doc.data)
    if dialect == "recipe":
        resolved = resolve(doc)
        notes: list = []
    else:
        imported = import_document(doc, dialect)
        resolved, notes = imported.resolved, imported.notes
    findings = validate(resolved)
    if findings:
        raise FtrError(f"{path}: invalid {dialect} config ({len(findings)} problem(s))", findings)
    return Loaded(resolved, normalise(resolved)), dialect, notes
