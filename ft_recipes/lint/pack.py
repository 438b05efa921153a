"""Rule packs: validators/default.yaml, deep-merged with the packs named in [tool.ftr.lint] rule-packs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..findings import FtrError
from ..load import load_file
from ..paths import data_dir
from ..resolve import deep_merge


@lru_cache(maxsize=1)
def default_pack() -> dict:
    return _read(data_dir("validators") / "default.yaml")


def _read(path: Path) -> dict:
    try:
        data = load_file(path).data or {}
    except FtrError as exc:
        raise FtrError(f"rule pack {path}: {exc.render()}", exit_code=2) from None
    if not isinstance(data, dict) or not isinstance(data.get("rules", {}), dict):
        raise FtrError(f"rule pack {path}: expected a mapping with a `rules:` mapping", exit_code=2)
    return data


@lru_cache(maxsize=16)
def load_pack(paths: tuple[str, ...] = ()) -> dict:
    """The effective pack: the default pack, then each team pack merged over it in order."""
    pack = default_pack()
    for path in paths:
        overlay = _read(Path(path))
        _check_codes(overlay, Path(path))
        pack = deep_merge(pack, overlay)
    return pack


def _check_codes(overlay: dict, path: Path) -> None:
    from .registry import all_rules

    known = all_rules()
    unknown = sorted(code for code in overlay.get("rules", {}) if code not in known)
    if unknown:
        raise FtrError(f"rule pack {path}: unknown rule code(s) {', '.join(unknown)}", exit_code=2)


def rule_section(pack: dict, code: str) -> dict:
    return pack.get("rules", {}).get(code) or {}
