"""Preset libraries: built-in presets, directories on FTR_PRESET_PATH / [tool.ftr] preset-paths,
and installed packages exposing the ``ft_recipes.recipe.presets`` entry point group."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ft_recipes.core.findings import FtrError
from ft_recipes.core.paths import data_dir, may_declare_entry_points
from ft_recipes.core.project import project_settings

ENTRY_POINT_GROUP = "ft_recipes.recipe.presets"


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


def libraries(start: Path | None = None) -> list[Library]:
    """All preset libraries, in lookup order; ``start`` is the folder whose nearest pyproject.toml names
    [tool.ftr] preset-paths (the recipe's folder; default: the working directory)."""
    dirs = [d for d in os.environ.get("FTR_PRESET_PATH", "").split(os.pathsep) if d]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:  # a mistyped path would otherwise make every team preset "unknown" with no word why
        raise FtrError(f"FTR_PRESET_PATH names {', '.join(missing)}, which is not a directory; fix or unset it",
                       exit_code=2)
    dirs += [str(p) for p in project_settings(start).get("preset-paths", [])]
    libs = [Library(Path(d).name, Path(d)) for d in dirs]
    libs += _entry_point_libraries()
    libs.append(Library("builtin", builtin_root()))
    return libs


def builtin_root() -> Path:
    return data_dir("recipes") / "presets"


def is_builtin(file: str) -> bool:
    """Whether ``file`` is one of ftr's own presets (in its install folder, which CI cannot annotate)."""
    return Path(file).resolve().parent == builtin_root().resolve()


def find_preset(ref: str, start: Path | None = None, referrer: Path | None = None) -> Path:
    """``name`` or ``library:name`` -> the preset file. Clashes between libraries are errors, except that a
    preset's own ``extends`` (``referrer``, a file of a library) finds a plain name in its own library first."""
    lib_name, _, name = ref.rpartition(":")
    libs = libraries(start)
    own = _own_library(libs, referrer) if not lib_name else None
    if own is not None and name in own.presets():
        return own.presets()[name]
    hits = [(lib, lib.presets()[name]) for lib in libs
            if (not lib_name or lib.name == lib_name) and name in lib.presets()]
    if not hits:
        known = sorted({f"{lib.name}:{n}" if lib.name != "builtin" else n for lib in libs for n in lib.presets()})
        raise FtrError(f"unknown preset {ref!r}; known presets: {', '.join(known) or 'none'}")
    if len(hits) > 1:
        sources = "; ".join(f"{lib.name}: {path}" for lib, path in hits)
        raise FtrError(f"preset name {name!r} is defined by more than one library ({sources}); "
                       f"write it as library:{name}")
    return hits[0][1]


def _own_library(libs: list[Library], referrer: Path | None) -> Library | None:
    """The library ``referrer`` (a preset file) belongs to, if any."""
    if referrer is None:
        return None
    folder = Path(referrer).resolve().parent
    return next((lib for lib in libs if lib.root.is_dir() and lib.root.resolve() == folder), None)


def list_presets() -> list[tuple[str, str, Path]]:
    return [(lib.name, name, path) for lib in libraries() for name, path in lib.presets().items()]
