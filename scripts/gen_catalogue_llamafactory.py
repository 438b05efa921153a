#!/usr/bin/env python
"""Generate the LLaMA-Factory key catalogue; run INSIDE a LLaMA-Factory environment.

    python scripts/gen_catalogue_llamafactory.py [-o schemas/backends/llamafactory-<version>.json]

Source: the dataclass fields (init=True only; init=False fields such as compute_dtype are derived and must not
be set) of ModelArguments, DataArguments, TrainingArguments, FinetuningArguments and GeneratingArguments from
``llamafactory.hparams``. TrainingArguments inherits from transformers, so the key set depends on the installed
transformers version (recorded as "transformers").

Per key: type ("integer", "number", "string", "boolean", "list", "object", "any", {"enum": [...]}, or a list of
those for unions), default (JSON; null when none; non-JSON defaults as strings), required, aliases (always []),
deprecated (the help text says so), description (the field's help), group (the dataclass).
Output is stable: sorted keys, indent 1, trailing newline.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import sys
import types
import typing
from pathlib import Path

os.environ.setdefault("DISABLE_VERSION_CHECK", "1")

CLASSES = ("ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments", "GeneratingArguments")
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _simple_type(tp) -> object:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is typing.Any or tp is object:
        return "any"
    if isinstance(tp, str):  # an annotation that could not be resolved
        return "any"
    if origin is typing.Annotated:
        return _simple_type(args[0])
    if origin in (typing.Union, types.UnionType):
        out: list = []
        for a in args:
            if a is type(None):
                continue
            t = _simple_type(a)
            for item in t if isinstance(t, list) else [t]:
                if item not in out:
                    out.append(item)
        enums = [t for t in out if isinstance(t, dict)]
        if len(enums) > 1:
            merged = {"enum": [v for e in enums for v in e["enum"]]}
            out = [t for t in out if t not in enums] + [merged]
        if not out:
            return "any"
        return out[0] if len(out) == 1 else out
    if origin is typing.Literal:
        return {"enum": [a.value if isinstance(a, enum.Enum) else a for a in args]}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        return "list"
    if origin is dict or tp is dict:
        return "object"
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        for k, v in _SCALARS.items():
            if issubclass(tp, k):
                return v
        if dataclasses.is_dataclass(tp):
            return "object"
    if origin is not None and isinstance(origin, type):
        return _simple_type(origin)
    return "any"


def _jsonable(v):
    if isinstance(v, enum.Enum):
        return _jsonable(v.value)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def describe(cls) -> dict:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001  fall back field by field
        hints = {}
        for klass in reversed(cls.__mro__):
            try:
                hints.update(typing.get_type_hints(klass))
            except Exception:  # noqa: BLE001
                pass
    keys = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default, required = _jsonable(f.default), False
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default, required = _jsonable(f.default_factory()), False  # type: ignore[misc]
        else:
            default, required = None, True
        tp = _simple_type(hints.get(f.name, f.type))
        choices = f.metadata.get("choices") if f.metadata else None
        if choices and not (isinstance(tp, dict) and "enum" in tp):
            tp = {"enum": [_jsonable(c) for c in choices]}
        help_text = (f.metadata or {}).get("help")
        keys[f.name] = {
            "type": tp,
            "default": default,
            "required": required,
            "aliases": [],
            "deprecated": bool(help_text and "deprecated" in help_text.lower()),
            "description": help_text or None,
            "group": cls.__name__,
        }
    return keys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", help="default: schemas/backends/llamafactory-<version>.json")
    args = ap.parse_args()

    from importlib.metadata import version

    import llamafactory.hparams as hp

    lf_version = version("llamafactory")
    cat: dict = {
        "backend": "llamafactory",
        "version": lf_version,
        "generated_by": "scripts/gen_catalogue_llamafactory.py",
        "python": ".".join(map(str, sys.version_info[:2])),
        "transformers": version("transformers"),
        "keys": {},
        "groups": {},
    }
    for name in CLASSES:
        keys = describe(getattr(hp, name))
        cat["groups"][name] = sorted(keys)
        for key, info in keys.items():
            if key in cat["keys"]:  # the first class wins, as in HfArgumentParser's order
                continue
            cat["keys"][key] = info

    out = Path(args.output or f"schemas/backends/llamafactory-{lf_version}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cat, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    counts = ", ".join(f"{n} {len(v)}" for n, v in cat["groups"].items())
    print(f"{out}: {len(cat['keys'])} keys ({counts})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
