"""Where the data directories live: inside the wheel, or at the top of a checkout."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """``schemas``, ``recipes`` or ``validators``: packaged copy first, then the checkout."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ft-recipes data directory {name!r} is missing from the installation")
