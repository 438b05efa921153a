"""Stage 3: validate the merged recipe against schemas/recipe.schema.json.

Schema errors become findings: FTR001 unknown key (with did-you-mean), FTR002 wrong type or value,
FTR003 required value missing. Positions come from the document each value was written in.
"""

from __future__ import annotations

import difflib
import json
import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable

from ft_recipes.core.findings import Finding
from ft_recipes.core.paths import data_dir
from ft_recipes.recipe.load import dotted
from ft_recipes.recipe.resolve import Resolved

if TYPE_CHECKING:  # jsonschema is imported only for an invalid recipe's errors of some kinds (schema_errors)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


@lru_cache(maxsize=1)
def recipe_schema() -> dict:
    return json.loads((data_dir("schemas") / "recipe.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> "Draft202012Validator":
    from jsonschema import Draft202012Validator

    return Draft202012Validator(recipe_schema())


def schema_valid(data: Any) -> bool:
    """The fast path: the validator generated from the schema (scripts/gen_validator.py), which agrees with
    jsonschema on valid or not; jsonschema runs only for an invalid recipe, to describe its errors."""
    from ft_recipes.recipe._fastschema import is_valid

    return is_valid(data)


def suggest(key: str, allowed: Iterable[str], section: str = "") -> str:
    """A did-you-mean for an unknown key, or ''."""
    allowed = sorted(allowed)
    from ft_recipes.recipe.fields import spellings

    known = spellings()
    if key in known:
        return f"did you mean {known[key]}?"
    candidates = [key]
    for prefix in ("lora_", "lora", "train_", "model_", "data_", f"{section}_"):
        if prefix and key.lower().startswith(prefix) and len(key) > len(prefix):
            candidates.append(key[len(prefix):])
    for candidate in candidates:
        close = difflib.get_close_matches(candidate.lower(), allowed, n=1, cutoff=0.6)
        if close:
            where = f"{section}.{close[0]}" if section else close[0]
            return f"did you mean {where}?"
    return f"expected one of: {', '.join(allowed)}" if len(allowed) <= 12 else ""


def _unknown_key_findings(error: ValidationError, resolved: Resolved) -> list[Finding]:
    path = tuple(error.absolute_path)
    allowed = list(error.schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    findings = []
    for key in instance:
        if key in allowed:
            continue
        src = resolved.source(path + (key,))
        line, col = _key_pos(resolved, path + (key,))
        section = dotted(path)
        message = f"unknown key {dotted(path + (key,))!r}"
        findings.append(Finding(src.file if src else resolved.document.file, line, col, "FTR001", "error",
                                message, suggest(key, allowed, section), dotted(path + (key,))))
    return findings


def _key_pos(resolved: Resolved, path: tuple) -> tuple[int, int]:
    src = resolved.source(path)
    for layer in reversed(resolved.layers):
        if src and layer.file == src.file and path in layer.key_positions:
            return layer.key_positions[path]
    return (src.line, src.col) if src else (1, 1)


def _describe(error: ValidationError) -> tuple[str, str, str]:
    """(code, message, hint) for one schema error."""
    where = dotted(tuple(error.absolute_path)) or "recipe"
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return "FTR003", f"{where}: required key {missing!r} is missing", _example_for(error, missing)
    if kind == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        close = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
        hint = f"did you mean {close[0]}?" if close else f"expected one of: {allowed}"
        return "FTR002", f"{where}: {error.instance!r} is not one of the allowed values", hint
    if kind == "const":
        return "FTR002", f"{where}: must be {error.validator_value!r}, got {error.instance!r}", ""
    if kind == "type":
        expected = error.validator_value
        numeric = isinstance(error.instance, str) and _looks_numeric(error.instance)
        hint = "write numbers without quotes" if numeric else ""
        return ("FTR002", f"{where}: expected {_type_name(expected)}, got {_type_name_of(error.instance)} "
                          f"{_short(error.instance)}", hint)
    return "FTR002", f"{where}: {error.message}", error.schema.get("description", "")


def _example_for(error: ValidationError, missing: str) -> str:
    prop = error.schema.get("properties", {}).get(missing, {})
    return prop.get("description", "")


def _type_name(expected: Any) -> str:
    names = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
             "object": "a mapping", "array": "a list", "null": "nothing"}
    if isinstance(expected, list):
        return " or ".join(names.get(e, e) for e in expected)
    return names.get(expected, str(expected))


def _type_name_of(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", type(None): "nothing"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _flatten(error: ValidationError) -> ValidationError:
    from jsonschema.exceptions import best_match

    if error.context:
        return _flatten(best_match(error.context))
    return error


def schema_errors(data: Any) -> list:
    """The schema errors of an invalid recipe, each flattened to the one ftr describes: found without jsonschema
    when they are of the kinds ft_recipes.recipe.schema_errors describes, else by jsonschema."""
    from ft_recipes.recipe.schema_errors import describe

    errors = describe(recipe_schema(), data)
    if errors is None:
        errors = [_flatten(error) for error in _validator().iter_errors(data)]
    return errors


def validate(resolved: Resolved) -> list[Finding]:
    """Schema findings for a resolved recipe, sorted; empty when valid."""
    if schema_valid(resolved.data):
        return sorted(semantic(resolved))
    findings: list[Finding] = []
    seen = set()
    for error in schema_errors(resolved.data):
        if error.validator == "additionalProperties":
            batch = _unknown_key_findings(error, resolved)
        else:
            path = tuple(error.absolute_path)
            src = resolved.source(path)
            code, message, hint = _describe(error)
            file = src.file if src else resolved.document.file
            line, col = (src.line, src.col) if src else (1, 1)
            batch = [Finding(file, line, col, code, "error", message, hint, dotted(path))]
        for finding in batch:
            if (finding.line, finding.col, finding.message) not in seen:
                seen.add((finding.line, finding.col, finding.message))
                findings.append(finding)
    if not findings:
        findings = semantic(resolved)
    return sorted(findings)


# --- checks JSON Schema cannot express ----------------------------------------------------------------------

def non_finite(data: Any, path: tuple = (), out: list | None = None) -> list[tuple[tuple, float]]:
    """(path, value) of every NaN and infinity in ``data``, in document order (a path is built only for a
    container or a hit: most values are neither)."""
    out = [] if out is None else out
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            non_finite(value, path + (key,), out)
        elif isinstance(value, float) and not math.isfinite(value):
            out.append((path + (key,), value))
    return out


def _finding(resolved: Resolved, path: tuple, message: str, hint: str = "") -> Finding:
    src = resolved.source(path)
    file = src.file if src else resolved.document.file
    line, col = (src.line, src.col) if src else (1, 1)
    return Finding(file, line, col, "FTR002", "error", message, hint, dotted(path))


def _cadence_conflicts(resolved: Resolved) -> list[Finding]:
    """``every: epoch`` next to ``steps: N`` written in the same file: which one the user meant is unknown."""
    out = []
    for section, steps_key in (("eval", "steps"), ("output", "save_steps")):
        every_key = "every" if section == "eval" else "save"
        part = resolved.data.get(section)
        if not isinstance(part, dict) or every_key not in part or part[every_key] == "steps":
            continue
        for key in (steps_key, "per_epoch"):
            if key in part and resolved.layer_of((section, key)) == resolved.layer_of((section, every_key)):
                out.append(_finding(resolved, (section, key),
                                    f"{section}.{key} is set but {section}.{every_key} is {part[every_key]!r}",
                                    f"remove {section}.{every_key} (a step count implies steps) or {section}.{key}"))
    return out


def semantic(resolved: Resolved) -> list[Finding]:
    """FTR002 for values the schema admits but no backend can run: NaN and infinities, a fractional row count,
    cosine_with_min_lr without train.min_lr, contradicting cadences in one file."""
    out = [_finding(resolved, path, f"{dotted(path)}: {value!r} is not a finite number", "write a finite number")
           for path, value in non_finite(resolved.data)]
    if out:
        return out
    data = resolved.data
    split = (data.get("data") or {}).get("val", {}).get("split") if isinstance(data.get("data"), dict) else None
    if isinstance(split, float) and split >= 1 and not split.is_integer():
        out.append(_finding(resolved, ("data", "val", "split"),
                            f"data.val.split: {split!r} is neither a fraction below 1 nor a whole row count",
                            "write a fraction such as 0.1, or a number of rows such as 200"))
    train = data.get("train") if isinstance(data.get("train"), dict) else {}
    if train.get("scheduler") == "cosine_with_min_lr" and "min_lr" not in train:
        out.append(_finding(resolved, ("train", "scheduler"), "train.scheduler: cosine_with_min_lr needs train.min_lr",
                            "set train.min_lr, e.g. a tenth of train.lr"))
    if "min_lr" in train and train.get("scheduler") != "cosine_with_min_lr":
        out.append(_finding(resolved, ("train", "min_lr"), "train.min_lr is only used by cosine_with_min_lr",
                            "set train.scheduler: cosine_with_min_lr, or remove train.min_lr"))
    lr = train.get("lr", 1e-4)
    if isinstance(train.get("min_lr"), (int, float)) and isinstance(lr, (int, float)) and train["min_lr"] > lr:
        out.append(_finding(resolved, ("train", "min_lr"), f"train.min_lr {train['min_lr']} is above train.lr {lr}",
                            "the schedule decays from train.lr down to train.min_lr"))
    return out + _cadence_conflicts(resolved)
