"""Preset libraries: built-in presets, directories on FTR_PRESET_PATH / [tool.ftr] preset-paths,
and installed packages exposing the ``ft_recipes.presets`` entry point group."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path

from .findings import FtrError
from .paths import data_dir, may_declare_entry_points
from .project import project_settings

ENTRY_POINT_GROUP = "ft_recipes.presets"


@dataclass(frozen=True)
class Library:
    name: str      # "builtin", a directory's name, or the entry point's name
    root: Path

    def presets(self) -> dict[str, Path]:
        if not self.root.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.root.glob("*.y*ml")) if p.suffix in (".yaml", ".yml")}


def _entry_point_libraries() -> list[Library]:
    return list(_entry_points_for(tuple(sys.path)))


@lru_cache(maxsize=4)
def _entry_points_for(search_path: tuple[str, ...]) -> tuple[Library, ...]:
    """Scanning installed distributions is slow: once per import path (sys.path changes rescan)."""
    if not may_declare_entry_points(ENTRY_POINT_GROUP, search_path):
        return ()
    from importlib import metadata  # ~20 ms to import and scan: only when a preset library may be installed

    libs = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
        except Exception as exc:  # a broken plugin must not break ftr
            raise FtrError(f"preset library {ep.name!r} ({ep.value}) failed to load: {exc}", exit_code=2) from None
        root = Path(target() if callable(target) else getattr(target, "__path__", [target])[0])
        libs.append(Library(ep.name, root))
    return tuple(libs)


def libraries() -> list[Library]:
    """All preset libraries, in lookup order."""
    dirs = [d for d in os.environ.get("FTR_PRESET_PATH", "").split(os.pathsep) if d]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:  # a mistyped path would otherwise make every team preset "unknown" with no word why
        raise FtrError(f"FTR_PRESET_PATH names {', '.join(missing)}, which is not a directory; fix or unset it",
                       exit_code=2)
    dirs += [str(p) for p in project_settings().get("preset-paths", [])]
    libs = [Library(Path(d).name, Path(d)) for d in dirs]
    libs += _entry_point_libraries()
    libs.append(Library("builtin", data_dir("recipes") / "presets"))
    return libs


def find_preset(ref: str) -> Path:
    """``name`` or ``library:name`` -> the preset file. Clashes between libraries are errors."""
    lib_name, _, name = ref.rpartition(":")
    hits = []
    for lib in libraries():
        if lib_name and lib.name != lib_name:
            continue
        path = lib.presets().get(name)
        if path is not None:
            hits.append((lib, path))
    if not hits:
        known = sorted({f"{lib.name}:{n}" if lib.name != "builtin" else n for lib in libraries() for n in lib.presets()})
        raise FtrError(f"unknown preset {ref!r}; known presets: {', '.join(known) or 'none'}")
    if len(hits) > 1:
        sources = "; ".join(f"{lib.name}: {path}" for lib, path in hits)
        raise FtrError(f"preset name {name!r} is defined by more than one library ({sources}); "
                       f"write it as library:{name}")
    return hits[0][1]


def list_presets() -> list[tuple[str, str, Path]]:
    return [(lib.name, name, path) for lib in libraries() for name, path in lib.presets().items()]
