"""Where the data directories live: inside the wheel, or at the top of a checkout."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent  # ft_recipes/


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """``schemas``, ``recipes`` or ``validators``: packaged copy first, then the checkout."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ft-recipes data directory {name!r} is missing from the installation")


def may_declare_entry_points(group: str, search_path: tuple[str, ...]) -> bool:
    """False only when no distribution on ``search_path`` can declare an entry point of ``group``: a quick
    look at each ``*.dist-info`` / ``*.egg-info`` / ``*.egg`` entry_points.txt (~1 ms) that spares the
    import of importlib.metadata and its full scan (~20 ms) when no preset library is installed.
    Anything it cannot read as a plain directory (a zip on sys.path) answers True: then do the full scan."""
    import os

    for entry in search_path:
        try:
            names = os.listdir(entry or ".")
        except NotADirectoryError:
            return True
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info", ".egg")):
                folder = os.path.join(entry or ".", name)
                if name.endswith(".egg") and not os.path.isdir(folder):
                    return True
                inner = os.path.join(folder, "EGG-INFO") if name.endswith(".egg") else folder
                if _mentions(os.path.join(inner, "entry_points.txt"), group):
                    return True
    return False


def _mentions(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return text in handle.read()
    except OSError:
        return False


def real_path(path: str | Path) -> Path:
    """``Path(path).resolve()``, remembered for the process: resolving stats every component of the path, and
    linting many files resolves the same few directories again and again. Relative paths are remembered
    per working directory."""
    import os

    text = os.fspath(path)
    return _real_path(text, "" if os.path.isabs(text) else os.getcwd())


@lru_cache(maxsize=2048)
def _real_path(text: str, cwd: str) -> Path:
    return Path(text).resolve()


def real_parent(file: str | Path) -> Path:
    """``Path(file).resolve().parent``, with the directory resolved once per process (``real_path``): the same
    unless ``file`` itself is a symbolic link, which is then resolved in full."""
    path = Path(file)
    if path.name in ("", ".", "..") or path.is_symlink():
        return path.resolve().parent
    return real_path(path.parent)
