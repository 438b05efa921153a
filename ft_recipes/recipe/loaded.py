"""The pipeline, stage by stage: load -> resolve -> validate -> normalise (-> lint -> emit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.load import load_file
from ft_recipes.recipe.model import Recipe
from ft_recipes.recipe.normalise import normalise
from ft_recipes.recipe.resolve import Resolved, resolve
from ft_recipes.recipe.validate import validate


@dataclass
class Loaded:
    resolved: Resolved
    recipe: Recipe
    dialect: str = "recipe"
    notes: list = field(default_factory=list)


def resolve_file(path: str | Path) -> Resolved:
    return resolve(load_file(path))


def load_recipe(path: str | Path) -> Loaded:
    """Load, resolve and validate a recipe; raise FtrError (exit 1) with findings when invalid."""
    resolved = resolve_file(path)
    if "stages" in resolved.data:
        raise FtrError(f"{path}: has stages: (a pipeline); `ftr compile`, `ftr run`, `ftr lint`, `ftr explain` and "
                       f"`ftr validate` expand them, this command takes a single-stage recipe (write stages: in the "
                       f"recipe itself, not in a preset it extends)", exit_code=2)
    findings = validate(resolved)
    if findings:
        raise FtrError(f"{path}: invalid recipe ({len(findings)} problem(s))", findings)
    return Loaded(resolved, normalise(resolved))


def load_any(path: str | Path, dialect: str | None = None) -> Loaded:
    """A recipe or a native LLaMA-Factory / Axolotl config (dialect detected unless given), as a recipe.

    Positions of a native file's values point at its own keys; ``loaded.notes`` lists what did not map.
    """
    from ft_recipes.backends.native import detect_dialect
    from ft_recipes.recipe.load import load_file

    doc = load_file(path)
    return load_document(doc, dialect or detect_dialect(doc.data))


def load_document(doc, dialect: str) -> Loaded:
    """A loaded document of the given dialect, resolved, validated and normalised (FtrError if invalid)."""
    from ft_recipes.backends.native import import_document

    notes: list = []
    if dialect == "recipe":
        resolved = resolve(doc)
    else:
        imported = import_document(doc, dialect)
        resolved, notes = imported.resolved, imported.notes
    findings = validate(resolved)
    if findings:
        raise FtrError(f"{doc.file}: invalid {dialect} config ({len(findings)} problem(s))", findings)
    return Loaded(resolved, normalise(resolved), dialect, notes)
