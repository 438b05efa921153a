"""``ftr explain``: every resolved value, where it came from, the native key it becomes in each
backend, the lint findings, and the VRAM estimate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ft_recipes import backends
from ft_recipes.recipe.load import dotted
from ft_recipes.recipe.loaded import Loaded
from ft_recipes.recipe.normalise import to_data


@dataclass(frozen=True)
class Row:
    key: str
    value: Any
    source: str
    native: dict[str, str]


def _leaves(data: Any, path: tuple = ()):
    if isinstance(data, dict) and data and path[:1] != ("backends",):
        for key, value in data.items():
            yield from _leaves(value, path + (key,))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data):
            yield from _leaves(value, path + (i,))
    else:
        yield path, data


def _native(key: str, names: tuple[str, ...]) -> dict[str, str]:
    generic = ".".join(part for part in key.split(".") if not part.split("[")[0].isdigit())
    generic = generic.split("[")[0] if generic.startswith("data.train") else generic
    from ft_recipes.backends.base import is_ftr_only

    out = {}
    for name in names:
        native = backends.get(name).keys.native(generic)
        if key.startswith("backends"):
            native = f"backends.{name} passthrough"
        elif native is None:
            native = "(ftr only)" if is_ftr_only(generic) else "- (not expressible: FTR005)"
        out[name] = native
    return out


def rows(loaded: Loaded, names: tuple[str, ...]) -> list[Row]:
    provenance = loaded.resolved.provenance
    out = []
    for path, value in _leaves(to_data(loaded.recipe)):
        src = provenance.get(path) or provenance.get(_recipe_path(path))
        source = str(src) if src else "ftr default"
        key = dotted(path)
        out.append(Row(key, value, source, _native(key, names)))
    return out


def _recipe_path(path: tuple) -> tuple:
    """Normalised dataset entries carry a derived name; look the entry up by its own path."""
    return path[:-1] if path and path[-1] == "name" else path
