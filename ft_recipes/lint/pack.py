"""Rule packs: validators/default.yaml, deep-merged with the packs named in [tool.ftr.lint] rule-packs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ft_recipes.core.findings import SEVERITIES, FtrError
from ft_recipes.core.paths import data_dir
from ft_recipes.recipe.load import load_file
from ft_recipes.recipe.resolve import deep_merge


@lru_cache(maxsize=1)
def default_pack() -> dict:
    return _read(data_dir("validators") / "default.yaml")


def _read(path: Path) -> dict:
    try:
        data = load_file(path).data or {}
    except FtrError as exc:
        raise FtrError(f"rule pack {exc.reason()}", exit_code=2) from None
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
        _check_declared(overlay, Path(path))
        _check_shape(overlay.get("rules", {}), default_pack().get("rules", {}), ("rules",), Path(path))
        pack = deep_merge(pack, overlay)
    return pack


def _check_codes(overlay: dict, path: Path) -> None:
    from ft_recipes.lint.registry import all_rules

    known = all_rules()
    unknown = sorted(code for code in overlay.get("rules", {}) if code not in known)
    if unknown:
        raise FtrError(f"rule pack {path}: unknown rule code(s) {', '.join(unknown)}", exit_code=2)




PACK_KEYS = ("messages", "severity", "sources")  # what every rule section may hold besides the rule's options
MESSAGE_KEYS = ("text", "hint", "severity", "native")


def _check_declared(overlay: dict, path: Path) -> None:
    """A team pack names only the message kinds and options its rules declare (a misspelt kind or option would
    otherwise change nothing, silently)."""
    from ft_recipes.lint.registry import all_rules

    for code, section in (overlay.get("rules") or {}).items():
        rule = all_rules()[code]
        if not isinstance(section, dict):
            continue
        for key in section:
            if key not in PACK_KEYS and key not in rule.options:
                raise FtrError(f"rule pack {path}: rules.{code}.{key}: {code} has no option {key!r}"
                               f"{_choices(rule.options)}", exit_code=2)
        for kind, spec in (section.get("messages") or {}).items():
            if kind not in rule.messages:
                raise FtrError(f"rule pack {path}: rules.{code}.messages.{kind}: {code} reports no message "
                               f"{kind!r}{_choices(rule.messages)}", exit_code=2)
            for key in spec or {}:
                if key not in MESSAGE_KEYS:
                    raise FtrError(f"rule pack {path}: rules.{code}.messages.{kind}.{key}: not one of "
                                   f"{', '.join(MESSAGE_KEYS)}", exit_code=2)


def _choices(names) -> str:
    return f" (it has: {', '.join(names)})" if names else " (it has none)"


def _kind(value) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def _check_shape(overlay, default, path: tuple, file: Path) -> None:
    """A team pack's values must have the default pack's types; null deletes only optional values
    (nested ones such as a range bound), never a whole rule or a setting the rule needs."""
    where = ".".join(path)
    if not isinstance(overlay, dict):
        raise FtrError(f"rule pack {file}: {where} must be a mapping, not {_kind(overlay)}", exit_code=2)
    for key, value in overlay.items():
        here = f"{where}.{key}"
        known = default.get(key) if isinstance(default, dict) else None
        if value is None:
            if known is not None and len(path) <= 2:
                hint = (f"to turn {key} off use --ignore {key} or [tool.ftr.lint] ignore" if len(path) == 1
                        else "give a value instead")
                raise FtrError(f"rule pack {file}: {here}: null would delete a setting the rule needs; {hint}",
                               exit_code=2)
            continue
        if key == "severity" and value not in SEVERITIES:
            raise FtrError(f"rule pack {file}: {here}: {value!r} is not one of {', '.join(SEVERITIES)}", exit_code=2)
        if known is not None and _kind(value) != _kind(known):
            raise FtrError(f"rule pack {file}: {here} must be {_kind(known)} like the default pack's, not "
                           f"{_kind(value)} ({value!r})", exit_code=2)
        if _is_range(known) and not _is_range(value):
            raise FtrError(f"rule pack {file}: {here} must be a [low, high] pair of numbers, not {value!r}",
                           exit_code=2)
        if isinstance(value, dict):
            _check_shape(value, known if isinstance(known, dict) else {}, path + (str(key),), file)


def _is_range(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_kind(v) == "a number" for v in value)


def rule_section(pack: dict, code: str) -> dict:
    return pack.get("rules", {}).get(code) or {}
