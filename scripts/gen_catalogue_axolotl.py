#!/usr/bin/env python
"""Generate the Axolotl key catalogue; run INSIDE an Axolotl environment.

    python scripts/gen_catalogue_axolotl.py [-o schemas/backends/axolotl-<version>.json]

Sources (all read from the installed Axolotl, nothing hand-written):
  keys          AxolotlInputConfig.model_fields (axolotl.utils.schemas.config)
  dataset_keys  SFTDataset, DPODataset, KTODataset, PretrainingDataset, StepwiseSupervisedDataset,
                SyntheticDataset (axolotl.utils.schemas.datasets), keyed by class name
  section_keys  the fields of each top-level key whose value is one pydantic model (fsdp_config, trl, ...);
                section_prefixes: spellings Axolotl rewrites in a section before validating it
  plugins       the input-argument model of every plugin bundled in axolotl.integrations
                (BasePlugin.get_input_args()), keyed by the class path written in `plugins:`

Per key: type ("integer", "number", "string", "boolean", "list", "object", "any", {"enum": [...]},
or a list of those for unions), default (JSON; null when none; non-JSON defaults as strings),
required, aliases (accepted YAML spellings other than the field name), deprecated, description, and
removed (a deprecated key whose validator refuses it, "no longer supported": "any" for every value
set, "truthy" for a true / non-empty one).
Output is stable: sorted keys, indent 1, trailing newline.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import json
import os
import pkgutil
import sys
import types
import typing
from pathlib import Path

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

_SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean", bytes: "string"}


def _simple_type(tp) -> object:
    """Map a Python/pydantic annotation to the catalogue's JSON-schema-ish spelling."""
    from pydantic import BaseModel

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is typing.Any or tp is object:
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
        # merge several enums into one
        enums = [t for t in out if isinstance(t, dict) and "enum" in t]
        if len(enums) > 1:
            merged = {"enum": [v for e in enums for v in e["enum"]]}
            out = [t for t in out if t not in enums] + [merged]
        if not out:
            return "any"
        return out[0] if len(out) == 1 else out
    if origin is typing.Literal:
        return {"enum": [a.value if isinstance(a, enum.Enum) else a for a in args]}
    if origin in (list, tuple, set, frozenset, typing.Sequence) or tp in (list, tuple, set, frozenset):
        return "list"
    if origin in (dict, typing.Mapping) or tp is dict:
        return "object"
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            values = [m.value for m in tp]
            # values YAML cannot write (torch dtypes) are parsed from strings by validators: not checked
            return {"enum": values} if all(isinstance(v, (str, int, float, bool)) for v in values) else "any"
        if issubclass(tp, bool):
            return "boolean"
        for k, v in _SCALARS.items():
            if issubclass(tp, k):
                return v
        if issubclass(tp, BaseModel):
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
    if hasattr(v, "model_dump"):
        return _jsonable(v.model_dump())
    return str(v)


def _aliases(name: str, info) -> list[str]:
    out: list[str] = []
    if isinstance(info.alias, str) and info.alias != name:
        out.append(info.alias)
    va = info.validation_alias
    if isinstance(va, str):
        cands = [va]
    elif va is not None:
        cands = []
        for choice in getattr(va, "choices", [va]):
            path = getattr(choice, "path", [choice])
            if path and isinstance(path[0], str):
                cands.append(path[0])
    else:
        cands = []
    for c in cands:
        if c != name and c not in out:
            out.append(c)
    return sorted(out)


def _description(info) -> str | None:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get("description"):
        return str(extra["description"])
    return info.description or None


def describe_model(model_cls, deprecated_names: frozenset = frozenset()) -> dict:
    from pydantic_core import PydanticUndefined

    keys = {}
    for name, info in model_cls.model_fields.items():
        required = info.is_required()
        if info.default_factory is not None:
            try:
                default = _jsonable(info.default_factory())
            except TypeError:  # factories that take the validated data
                default = None
        elif info.default is PydanticUndefined:
            default = None
        else:
            default = _jsonable(info.default)
        keys[name] = {
            "type": _simple_type(info.annotation),
            "default": default,
            "required": bool(required),
            "aliases": _aliases(name, info),
            "deprecated": bool(info.deprecated) or name in deprecated_names,
            "description": _description(info),
        }
    return keys


# Spellings Axolotl rewrites before validating a section (not dropped): `fsdp_config.fsdp_<name>` -> `<name>`
# (axolotl/utils/schemas/validation.py check_fsdp_config_kwargs_prefix; deprecated there).
SECTION_PREFIXES = {"fsdp_config": "fsdp_"}


SAMPLES = {"integer": (1, 0), "number": (1.0, 0.0), "boolean": (True, False), "string": ("x", ""),
           "any": ({"type": "linear"}, {})}


def _refuses(cls, name: str, value) -> bool:
    try:
        cls(**{name: value})
    except DeprecationWarning:
        return True
    except Exception:  # noqa: BLE001 - another refusal: the sample, not the key
        return False
    return False


def removed_names(deprecated_cls) -> dict[str, str]:
    """Deprecated fields whose validator refuses a value ("no longer supported"), set one at a time:
    {name: "any"} when even a false/empty value is refused, {name: "truthy"} when only a true one is."""
    out = {}
    for name, info in deprecated_cls.model_fields.items():
        kind = _simple_type(info.annotation)
        truthy, falsy = SAMPLES.get(kind[0] if isinstance(kind, list) else kind, ("x", ""))
        if _refuses(deprecated_cls, name, truthy):
            out[name] = "any" if _refuses(deprecated_cls, name, falsy) else "truthy"
    return dict(sorted(out.items()))


def _model_of(tp):
    """The pydantic model an annotation holds (through Optional / Annotated), or None."""
    from pydantic import BaseModel

    if typing.get_origin(tp) is typing.Annotated:
        return _model_of(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        models = [m for m in map(_model_of, typing.get_args(tp)) if m is not None]
        return models[0] if len(models) == 1 else None
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def describe_sections(model_cls) -> dict:
    """Top-level keys whose value is one pydantic model that drops unknown keys: {key: that model's keys}."""
    out = {}
    for name, info in model_cls.model_fields.items():
        sub = _model_of(info.annotation)
        if sub is not None and (getattr(sub, "model_config", {}) or {}).get("extra") != "allow":
            out[name] = describe_model(sub)
    return out


def discover_plugins() -> tuple[dict, dict]:
    """Bundled plugins: {plugin class path: args model class path}, and import failures."""
    import axolotl.integrations as integ
    from axolotl.integrations.base import BasePlugin

    found: dict[str, type] = {}
    errors: dict[str, str] = {}
    for mod in sorted(pkgutil.walk_packages(integ.__path__, integ.__name__ + "."), key=lambda m: m.name):
        try:
            module = importlib.import_module(mod.name)
        except Exception as exc:  # noqa: BLE001  optional dependencies may be missing
            errors[mod.name] = type(exc).__name__  # messages carry local paths: keep the output stable
            continue
        for attr, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, BasePlugin) and obj is not BasePlugin \
                    and obj.__module__.startswith(integ.__name__ + "."):
                path = f"{mod.name}.{attr}"
                # keep the shortest import path that reaches the class (the package re-export)
                prev = next((p for p, c in found.items() if c is obj), None)
                if prev is None or len(path) < len(prev):
                    if prev is not None:
                        del found[prev]
                    found[path] = obj
    return found, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", help="default: schemas/backends/axolotl-<version>.json")
    args = ap.parse_args()

    import logging

    logging.disable(logging.WARNING)
    from importlib.metadata import version

    import axolotl.utils.schemas.datasets as ds
    from axolotl.utils.schemas.config import AxolotlInputConfig
    from axolotl.utils.schemas.deprecated import DeprecatedParameters

    ax_version = version("axolotl")
    deprecated_names = frozenset(DeprecatedParameters.model_fields)
    cat: dict = {
        "backend": "axolotl",
        "version": ax_version,
        "generated_by": "scripts/gen_catalogue_axolotl.py",
        "python": ".".join(map(str, sys.version_info[:2])),
        "keys": describe_model(AxolotlInputConfig, deprecated_names),
        "dataset_keys": {},
        "section_keys": describe_sections(AxolotlInputConfig),
        "section_prefixes": SECTION_PREFIXES,
        "plugins": {},
        "plugin_args_models": {},
    }
    for name, when in removed_names(DeprecatedParameters).items():
        if name in cat["keys"]:
            cat["keys"][name]["removed"] = when
    for cls_name in ("SFTDataset", "DPODataset", "KTODataset", "PretrainingDataset",
                     "StepwiseSupervisedDataset", "SyntheticDataset"):
        cls = getattr(ds, cls_name, None)
        if cls is not None:
            cat["dataset_keys"][cls_name] = describe_model(cls)

    plugins, errors = discover_plugins()
    for path, cls in sorted(plugins.items()):
        try:
            args_path = cls().get_input_args()
        except Exception as exc:  # noqa: BLE001
            errors[path] = f"get_input_args: {type(exc).__name__}"
            continue
        if not args_path:
            cat["plugins"][path] = {}
            continue
        mod_name, _, attr = args_path.rpartition(".")
        try:
            model = getattr(importlib.import_module(mod_name), attr)
        except Exception as exc:  # noqa: BLE001
            errors[path] = f"{args_path}: {type(exc).__name__}"
            continue
        cat["plugins"][path] = describe_model(model)
        cat["plugin_args_models"][path] = args_path
    if errors:
        cat["plugin_import_errors"] = dict(sorted(errors.items()))

    out = Path(args.output or f"schemas/backends/axolotl-{ax_version}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cat, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(cat['keys'])} keys, {sum(len(v) for v in cat['dataset_keys'].values())} dataset keys, "
          f"{len(cat['plugins'])} plugins ({sum(len(v) for v in cat['plugins'].values())} keys), "
          f"{len(errors)} import errors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
