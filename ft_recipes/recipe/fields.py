"""The recipe's fields, declared once in ``recipe.py``, and what is generated from them.

Each field of the recipe dataclasses carries its default, help, YAML name, other spellings and JSON Schema
keywords (``recipe._f``). From them come ``schemas/recipe.schema.json`` (``python -m ft_recipes.cli.schema_gen``
rewrites it; a test checks it is current, and ``scripts/gen_validator.py`` turns it into the fast validator),
the did-you-mean spellings of ``validate`` and the YAML path -> field map that ``normalise`` checks every
validated key against.
"""

from __future__ import annotations

from dataclasses import Field, fields, is_dataclass
from functools import lru_cache
from typing import Iterator, get_args, get_type_hints

from ft_recipes.recipe import model as r
from ft_recipes.recipe.formats import FORMAT

# The recipe's sections: YAML name -> dataclass (the order the schema lists them in).
SECTIONS = {"model": r.Model, "method": r.Method, "preference": r.Preference, "data": r.Data, "train": r.Train,
            "eval": r.Eval, "output": r.Output, "hardware": r.Hardware}

# Top-level keys that are not typed recipe fields: they configure ftr (format version, presets, pipelines,
# lint, passthrough), and `stage`, a field of Recipe itself.
EXTENDS = {"oneOf": [{"type": "string", "minLength": 1},
                     {"type": "array", "items": {"type": "string", "minLength": 1}}]}
STAGE_HELP = "Training stage."


def _nested(cls, f: Field) -> type | None:
    """The dataclass a section field holds (``Method.lora`` -> Lora, ``Data.train`` -> Dataset), or None."""
    hint = get_type_hints(cls)[f.name]
    for kind in (hint, *get_args(hint)):
        if is_dataclass(kind):
            return kind
    return None


def _yaml_fields(cls) -> Iterator[tuple[str, Field]]:
    for f in fields(cls):
        if f.metadata.get("internal") or "help" not in f.metadata:
            continue
        yield f.metadata.get("yaml") or f.name, f


def leaves(cls=None, prefix: str = "") -> Iterator[tuple[str, type, Field]]:
    """(YAML path, dataclass, field) of every recipe leaf; dataset entries as ``data.train[]``."""
    if cls is None:
        for name, section in SECTIONS.items():
            yield from leaves(section, name)
        return
    for name, f in _yaml_fields(cls):
        path = f"{prefix}.{name}"
        sub = _nested(cls, f)
        if sub is r.Dataset:
            yield from leaves(sub, path + "[]")
        elif sub is not None:
            yield from leaves(sub, path)
        else:
            yield path, cls, f


@lru_cache(maxsize=1)
def spellings() -> dict[str, str]:
    """Spellings users bring from the backends -> the recipe path they mean (did-you-mean)."""
    return {alias: path for path, _cls, f in leaves() for alias in f.metadata.get("spellings", ())}


class UndeclaredField(RuntimeError):
    """A key the schema accepted that no recipe field declares: a bug in ftr (its value would be dropped)."""


@lru_cache(maxsize=1)
def yaml_paths() -> frozenset[str]:
    """Every YAML path a recipe field declares, with the sections and groups above them."""
    out = set()
    for path, _cls, _f in leaves():
        parts = path.split(".")
        heads = [".".join(parts[:n]) for n in range(1, len(parts) + 1)]
        out.update(heads + [head.removesuffix("[]") for head in heads])
    return frozenset(out)


def check_declared(data: dict) -> None:
    """UndeclaredField for a validated key in a recipe section that no field declares (never a silent drop)."""
    known = yaml_paths()
    for path in _written(data, ""):
        if path not in known:
            raise UndeclaredField(f"the recipe key {path} passed the schema but no field in recipe.py declares "
                                  f"it, so normalise would drop it (declare it with _f in ft_recipes/recipe/model.py)")


def _written(node, prefix: str) -> Iterator[str]:
    for key, value in node.items():
        if not prefix and key not in SECTIONS:
            continue
        path = f"{prefix}.{key}" if prefix else key
        yield path
        if isinstance(value, dict) and path not in ("data.train[].columns", "data.val.datasets[].columns"):
            yield from _written(value, path)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                yield path + "[]"
                yield from _written(item, path + "[]")


# --- the JSON Schema --------------------------------------------------------------------------------------

def _leaf_schema(f: Field) -> dict:
    return {"description": f.metadata["help"], **f.metadata["schema"]}


def _object(cls, extra: dict | None = None) -> dict:
    out: dict = {"type": "object", "additionalProperties": False, **(extra or getattr(cls, "SCHEMA", {}))}
    props: dict = {}
    for name, f in _yaml_fields(cls):
        sub = _nested(cls, f)
        if sub is not None and sub is not r.Dataset:
            node = _object(sub, _leaf_schema(f))
        else:
            node = _leaf_schema(f)
        group, _, leaf = name.rpartition(".")
        if group:
            target = props.setdefault(group, {**{"type": "object", "additionalProperties": False},
                                              **cls.GROUPS[group], "properties": {}})
            target["properties"][leaf] = node
        else:
            props[name] = node
    out["properties"] = props
    return out


def _stage_def() -> dict:
    props = {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                 "description": "The stage's name: its folder under output.dir and -o DIR, and what from:, --only "
                                "and --from-stage name."},
        "from": {"type": "string", "minLength": 1,
                 "description": "What the stage starts from: 'base', or an earlier stage's name (default: the "
                                "previous stage; the first stage starts from base)."},
        "backend": {"type": "string", "minLength": 1,
                    "description": "The backend this stage compiles for and runs on (default: --backend)."},
        "merge": {"type": "boolean", "description": "Merge this stage's adapter into the base after training; later "
                                                    "stages start from the merged model."},
        "extends": {"description": "Presets of this stage's own, merged over the top level (then the stage's keys).",
                    **EXTENDS},
        "stage": {"enum": [*get_args(r.Stage), "merge", "eval"],
                  "description": "Training stage, or 'merge': merge the from: stage's adapter into its base model, "
                                 "or 'eval': evaluate the from: stage's result against the base model (ftr eval)."},
        "description": {"type": "string"},
    }
    for name in (*SECTIONS, "backends", "lint"):
        props[name] = {"type": "object", "description": f"The top level's {name} section for this stage (merged "
                                                        f"over it; checked on the merged stage recipe)."}
    return {"type": "object", "additionalProperties": False, "required": ["name"],
            "description": "One stage of a pipeline: its own recipe sections, merged over the recipe's top level "
                           "(docs/pipelines.md).", "properties": props}


def recipe_schema(backend_names: tuple[str, ...]) -> dict:
    """The recipe JSON Schema, generated from the field declarations (``backends`` takes ``backend_names``)."""
    sections = {name: _object(cls) for name, cls in SECTIONS.items()}
    props = {
        "ftr": {"const": FORMAT, "description": f"Recipe format version ({FORMAT}; docs/recipe-format.md: "
                                                 "`ftr upgrade RECIPE` moves a recipe to it)."},
        "extends": {"description": "Presets or files this recipe builds on, merged left to right (the recipe last). "
                                   "Built-in preset names, relative paths, or library:name.", **EXTENDS},
        "description": {"type": "string", "description": "Free text describing the recipe."},
        "model": sections["model"],
        "stage": {"enum": list(get_args(r.Stage)), "description": STAGE_HELP},
        **{name: sections[name] for name in SECTIONS if name != "model"},
        "backends": {"type": "object",
                     "description": "Native keys passed through to one backend, checked against its key catalogue.",
                     "propertyNames": {"enum": list(backend_names)}, "additionalProperties": {"type": "object"}},
        "lint": {"type": "object", "additionalProperties": False, "description": "Lint settings.",
                 "properties": {"ignore": {"type": "array", "items": {"type": "string", "pattern": "^FTR[0-9]{1,3}$"},
                                           "description": "Rule codes (or prefixes) not reported for this recipe."}}},
        "stages": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/stage"},
                   "description": "A multi-stage pipeline (SFT -> DPO -> merge): each stage merged over the top "
                                  "level (docs/pipelines.md)."},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ft-recipes.dev/schemas/recipe.schema.json",
        "title": "ft-recipes recipe (version 1)",
        "description": "One portable fine-tuning recipe, compiled by `ftr compile` into LLaMA-Factory or Axolotl "
                       "configs.",
        "$defs": {"dataset": _object(r.Dataset), "stage": _stage_def()},
        "type": "object", "additionalProperties": False, "properties": props, "required": ["model", "data"],
    }
