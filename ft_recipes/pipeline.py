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
