"""Backend key catalogues (schemas/backends/<backend>-<version>.json, generated from each backend's own
definitions by scripts/gen_catalogue_*.py) and the checks they allow on native files without the backend
installed: unknown keys with a did-you-mean (FTR001), wrong types and values (FTR002), deprecations (FTR006)."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from typing import Any

from ft_recipes.core.closest import close_match
from ft_recipes.core.findings import Finding
from ft_recipes.core.paths import data_dir
from ft_recipes.recipe.load import Document, dotted

# What each backend does with a key it does not know (the reason FTR001 matters there).
FTR_PLUGIN = "ft_recipes.integrations.axolotl.FtrPlugin"
FTR_PLUGIN_KEYS = {"ftr_fail_on_error": {"type": "boolean"}, "ftr_ignore": {"type": "list"}}
PREFERENCE_RL = ("dpo", "ipo", "simpo")


@lru_cache(maxsize=None)
def load(backend: str, version: str | None = None) -> dict:
    """The catalogue of ``backend`` (the given version, else the backend's targeted version), or {}."""
    from ft_recipes import backends

    version = version or backends.get(backend).version
    path = data_dir("schemas") / "backends" / f"{backend}-{version}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=64)
def _known(backend: str, version: str | None, plugins: tuple[str, ...]) -> dict[str, dict]:
    """Every key a config may set: the catalogue's keys, their aliases and the plugins' keys (once per
    backend, version and plugin list, not once per file)."""
    catalogue = load(backend, version)
    keys = dict(catalogue.get("keys", {}))
    for spec in list(keys.values()):
        for alias in spec.get("aliases") or []:
            keys.setdefault(alias, spec)
    for plugin in plugins:
        keys.update(catalogue.get("plugins", {}).get(plugin, {}))
        if plugin == FTR_PLUGIN:
            keys.update(FTR_PLUGIN_KEYS)
    return keys


# A bool is an int to both backends: pydantic (Axolotl, lax mode) and LLaMA-Factory's dataclasses take it.
TYPE_CHECKS = {"integer": lambda v: isinstance(v, int),
               "number": lambda v: isinstance(v, (int, float)),
               "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
               "list": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict),
               "null": lambda v: v is None}


def type_ok(value: Any, expected: Any) -> bool:
    if value is None or expected in (None, "any"):
        return True
    if isinstance(expected, list):
        return any(type_ok(value, option) for option in expected)
    if isinstance(expected, dict):
        return "enum" not in expected or value in expected["enum"]
    check = TYPE_CHECKS.get(expected)
    return check is None or check(value)


def _describe_type(expected: Any) -> str:
    if isinstance(expected, list):
        return " or ".join(_describe_type(e) for e in expected)
    if isinstance(expected, dict) and "enum" in expected:
        values = expected["enum"]
        return "one of " + ", ".join(map(str, values[:12])) + (" ..." if len(values) > 12 else "")
    return str(expected)


def _hint_for(value: Any, expected: Any) -> str:
    if isinstance(value, str):
        try:
            float(value)
            return "write the number without quotes"
        except ValueError:
            pass
    if isinstance(expected, (dict, list)):
        options = [str(v) for e in (expected if isinstance(expected, list) else [expected])
                   if isinstance(e, dict) for v in e.get("enum", [])]
        close = difflib.get_close_matches(str(value), options, n=1)
        if close:
            return f"did you mean {close[0]}?"
    return ""


def _also_accepted(backend: str, key: str, value: Any) -> bool:
    """A value of another type than the declared one that the backend reads as meant (Backend.also_accepts)."""
    from ft_recipes import backends

    accepts = backends.get(backend).also_accepts.get(key)
    return bool(accepts and accepts(value))


def _check_mapping(doc: Document, data: dict, path: tuple, known: dict[str, dict], backend: str,
                   version: str, where: str, prefix: str = "") -> list[Finding]:
    findings = []
    for key, value in data.items():
        spec = known.get(key)
        good_type = spec is not None and (type_ok(value, spec.get("type")) or _also_accepted(backend, key, value))
        if good_type and not spec.get("removed") and not spec.get("deprecated"):
            continue  # a known key with a good value, the common case: nothing to report, no position needed
        kpath = path + (key,)
        line, col = doc.pos(kpath, key=True)
        if spec is None and prefix and key.startswith(prefix) and key[len(prefix):] in known:
            findings.append(Finding(doc.file, line, col, "FTR006", "warning",
                                    f"{dotted(kpath)!r} is a deprecated spelling in {backend} {version}",
                                    f"{backend} reads it as {key[len(prefix):]!r}; write that", dotted(kpath)))
            spec = known[key[len(prefix):]]
        row = _table_row(backend, version, path, key) if spec is None or spec.get("removed") or \
            spec.get("deprecated") else None
        if spec is None and row:
            findings.append(_renamed_finding(doc, (line, col), kpath, row, backend, version))
            continue
        if spec is None:
            close = close_match(key, tuple(known), 0.7)
            hint = f"did you mean {close}?" if close else f"not a {where} key of {backend} {version}"
            hint = _other_version_hint(backend, version, path, key) or hint
            findings.append(Finding(doc.file, line, col, "FTR001", "error",
                                    f"unknown key {dotted(kpath)!r}: {_unknown_fate(backend)}",
                                    hint, dotted(kpath)))
            continue
        removed = spec.get("removed")
        if removed and value is not None and (removed == "any" or value):
            hint = (spec.get("description") or "remove it").split(".")[0][:120]
            if row:
                hint += f"; `{_upgrade(doc, backend, version)}` says what it asked for (--drop removes it)"
            findings.append(Finding(doc.file, line, col, "FTR006", "error",
                                    f"{key!r} is no longer supported by {backend} {version}: it refuses the file",
                                    hint, dotted(kpath)))
        elif spec.get("deprecated"):
            hint = (spec.get("description") or "").split(".")[0][:120]
            if row:
                hint = (f"{hint}; " if hint else "") + f"`{_upgrade(doc, backend, version)}` rewrites it"
            findings.append(Finding(doc.file, line, col, "FTR006", "warning",
                                    f"{key!r} is deprecated in {backend} {version}", hint, dotted(kpath)))
        if not (type_ok(value, spec.get("type")) or _also_accepted(backend, key, value)):  # spec: maybe the prefixed
            vline, vcol = doc.pos(kpath)
            findings.append(Finding(doc.file, vline, vcol, "FTR002", "error",
                                    f"{dotted(kpath)}: {value!r} is not {_describe_type(spec.get('type'))}",
                                    _hint_for(value, spec.get("type")), dotted(kpath)))
    return findings


TABLE_KINDS = ("key", "attn_flag", "removed", "unread")  # rows of the rename table about one key


def _table_row(backend: str, version: str, path: tuple, key: str) -> dict | None:
    """The rename table's row (``ftr upgrade``'s) for a key ``backend`` renamed or removed at or before
    ``version``, or reads in no version; None for a key it does not name."""
    from ft_recipes.backends.upgrade import BACKENDS, rows_for

    if backend not in BACKENDS or len(path) > 1:
        return None
    section = path[0] if path else None
    return next((row for kind in TABLE_KINDS for row in rows_for(backend, version, kind)
                 if row["old"] == key and row.get("section") == section), None)


def _upgrade(doc: Document, backend: str, version: str) -> str:
    return f"ftr upgrade {doc.file} --to {backend}={version}"


def _renamed_finding(doc: Document, where: tuple[int, int], kpath: tuple, row: dict, backend: str,
                     version: str) -> Finding:
    """FTR006 for a key the rename table names: what became of it, and that ``ftr upgrade`` rewrites it."""
    key, upgrade = dotted(kpath), f"`{_upgrade(doc, backend, version)}`"
    if row["kind"] == "unread":
        message = f"{key!r} is read by no {backend} version: {_unknown_fate(backend)}"
        hint = (f"{row['new']} is the key that does; " if row.get("new") else "") + f"{upgrade} removes it"
    elif row.get("new") and row["kind"] != "removed":
        message = f"{key!r} was renamed {row['new']!r} in {backend} {row['since']}: {_unknown_fate(backend)}"
        hint = f"write {row['new']}; {upgrade} rewrites it"
    else:
        message = f"{key!r} was removed in {backend} {row['since']}: {_unknown_fate(backend)}"
        hint = f"{row.get('reason') or 'no successor'}; {upgrade} moves or removes it, or says what it asked for"
    return Finding(doc.file, where[0], where[1], "FTR006", "error", message, hint, key)


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


@lru_cache(maxsize=None)
def catalogue_versions(backend: str) -> tuple[str, ...]:
    """The versions of ``backend`` that ship a key catalogue (ftr's own files, as ``load``), oldest first."""
    found = (data_dir("schemas") / "backends").glob(f"{backend}-*.json")
    return tuple(sorted((p.stem[len(backend) + 1:] for p in found), key=_version_key))


def _has_key(backend: str, version: str, path: tuple, key: str) -> bool:
    """Whether ``key`` is a top-level key (``path`` empty) or a section key of that catalogue version."""
    catalogue = load(backend, version)
    if not path:
        return key in _known(backend, version, ())
    section = catalogue.get("section_keys", {}).get(path[0]) if len(path) == 1 else None
    return section is not None and key in section


def _other_version_hint(backend: str, version: str, path: tuple, key: str) -> str:
    """"added in X" / "removed in X" for a key another catalogued version of the backend knows."""
    versions = catalogue_versions(backend)
    if version not in versions or len(path) > 1:
        return ""
    here = versions.index(version)
    newer = next((v for v in versions[here + 1:] if _has_key(backend, v, path, key)), None)
    if newer:
        return f"{key!r} was added in {backend} {newer} (linted against {version}; --backend-version " \
               f"{backend}={newer} if you run that)"
    older = next((v for v in reversed(versions[:here]) if _has_key(backend, v, path, key)), None)
    if older:
        removed = versions[versions.index(older) + 1]
        return f"{key!r} was removed in {backend} {removed} ({older} has it)"
    return ""


def _dataset_model(data: dict) -> str:
    rl = data.get("rl")
    if rl in PREFERENCE_RL:
        return "DPODataset"
    return "KTODataset" if rl == "kto" else "SFTDataset"


def check_native(doc: Document, backend: str, version: str | None = None) -> list[Finding]:
    """Catalogue findings for a native config; [] when no catalogue ships for the backend (version)."""
    version_asked = version
    catalogue = load(backend, version)
    if not catalogue or not isinstance(doc.data, dict):
        return []
    version = catalogue.get("version", "?")
    plugins = tuple(p for p in doc.data.get("plugins") or [] if isinstance(p, str))
    known = _known(backend, version_asked, plugins)
    findings = _check_mapping(doc, doc.data, (), known, backend, version, "top-level") + _native_checks(doc, backend)
    for section, keys in catalogue.get("section_keys", {}).items():
        if isinstance(doc.data.get(section), dict):
            prefix = catalogue.get("section_prefixes", {}).get(section, "")
            findings += _check_mapping(doc, doc.data[section], (section,), keys, backend, version,
                                       f"{section}", prefix)
    model = catalogue.get("dataset_keys", {}).get(_dataset_model(doc.data))
    for list_key in ("datasets", "test_datasets"):
        entries = doc.data.get(list_key)
        if model and isinstance(entries, list):
            for i, entry in enumerate(entries):
                if isinstance(entry, dict):
                    findings += _check_mapping(doc, entry, (list_key, i), model, backend, version,
                                               f"{_dataset_model(doc.data)} dataset")
    return findings


def _native_checks(doc: Document, backend: str) -> list[Finding]:
    """FTR007 at each contradiction the backend's own checks find in a native file (Backend.native_checks)."""
    from ft_recipes import backends

    out = []
    for item in backends.get(backend).native_checks:
        if item.applies(doc.data):
            key = item.at(doc.data) if item.at else item.key
            line, col = doc.pos((key,), key=True)
            out.append(Finding(doc.file, line, col, "FTR007", "error", item.message, item.hint, key))
    return out


@lru_cache(maxsize=None)
def templates(backend: str, version: str | None = None) -> dict:
    """The chat-template names of ``backend`` (that version, else its targeted one), generated by
    scripts/gen_templates.py: {"key", "templates", "prefixes", ...}, or {} when none ships for it."""
    from ft_recipes import backends
    from ft_recipes.recipe.templates import template_names

    return template_names(backend, version or backends.get(backend).version)


def template_known(backend: str, version: str | None, name: str) -> bool | None:
    """Whether ``backend`` (version) has the chat template ``name``; None when ftr has no list for it."""
    data = templates(backend, version)
    if not data:
        return None
    return name in data.get("templates", ()) or any(name.startswith(p) for p in data.get("prefixes", ()))


def _unknown_fate(backend: str) -> str:
    """What the backend does with a key it does not know (its registry entry says)."""
    from ft_recipes import backends

    return backends.get(backend).unknown_key_fate or "unknown"
