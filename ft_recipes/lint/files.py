"""Which files `ftr lint PATH...` reads: named files always; in directories, recipes found recursively."""

from __future__ import annotations

import glob
import os
import re
from functools import lru_cache
from pathlib import Path

from ..findings import UsageError

SUFFIXES = (".yaml", ".yml")
SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache",
             ".pytest_cache", "build", "dist", "presets"}


@lru_cache(maxsize=1)
def _marks() -> re.Pattern:
    """``ftr:`` (a recipe) or the first marker of each importable backend (its model key) at a line start."""
    from .. import backends

    keys = ["ftr", *(backends.get(name).markers[0] for name in backends.names("import"))]
    return re.compile(r"^(" + "|".join(map(re.escape, keys)) + r")\s*:", re.MULTILINE)


def looks_like_recipe(path: Path) -> bool:
    """A YAML file ftr can lint: a recipe (``ftr:``) or a native LLaMA-Factory / Axolotl config.

    A YAML file that cannot be read counts as one, so that linting it reports the error instead of
    skipping it silently ("All checks passed (0 files)" on a folder of unreadable recipes)."""
    if path.is_fifo() or path.is_char_device() or path.is_block_device():
        return True  # never block reading one; lint reports it
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return bool(_marks().search(handle.read(200_000)))
    except OSError:
        return True


def wanted(path: Path) -> bool:
    """The directory filter: a .yaml/.yml recipe outside skipped folders such as presets/."""
    skipped = any(part in SKIP_DIRS for part in path.parent.parts)
    return path.suffix in SUFFIXES and not skipped and looks_like_recipe(path)


def _walk(root: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(root, onerror=_walk_error):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".#"):  # an editor's lock file (a dangling symlink), not a recipe
                continue
            path = Path(directory) / name
            if path.suffix in SUFFIXES and looks_like_recipe(path):
                found.append(path)
    return found


def _walk_error(exc: OSError) -> None:
    raise UsageError(f"{exc.filename}: cannot read the folder: {exc.strerror}")


def _one(arg: str) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        return _walk(path)
    if path.exists() or path.is_symlink():  # a broken link or a link loop: linting it reports what it is
        return [path]
    if glob.has_magic(arg):
        matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
        files = [m for m in matches if m.is_file()] + [f for m in matches if m.is_dir() for f in _walk(m)]
        if files:
            return files
        raise UsageError(f"{arg}: no file matches")
    raise UsageError(f"{arg}: no such file or directory")


def expand(args, only_recipes: bool = False) -> list[Path]:
    """The files to lint, in a stable order, each once; ``only_recipes`` filters named files as directories are."""
    if not args:
        raise UsageError("no path given; e.g. `ftr lint recipe.yaml` or `ftr lint recipes/`")
    seen, out = set(), []
    for arg in args:
        for path in _one(str(arg)):
            key = os.path.normpath(str(path))
            if key not in seen and (not only_recipes or wanted(path)):
                seen.add(key)
                out.append(path)
    _refuse_unreadable(out)
    return out


def _refuse_unreadable(paths: list[Path]) -> None:
    """A UsageError naming every file that is not a readable regular file (a broken link, a symlink loop,
    a FIFO), not just the first one met."""
    from ..load import file_kind

    problems = [f"{path}: {kind}" for path in paths for kind in [file_kind(path)] if kind != "file"]
    if problems:
        raise UsageError("; ".join(problems) + "; ftr reads YAML from regular files" if len(problems) == 1 else
                         f"{len(problems)} files cannot be read (ftr reads YAML from regular files):\n  "
                         + "\n  ".join(problems))
