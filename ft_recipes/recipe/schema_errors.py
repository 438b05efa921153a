"""The schema errors of an invalid recipe without importing jsonschema (50-100 ms), for the errors ftr
describes from their parts alone: unknown keys (additionalProperties), a missing key (required), a value not
allowed (enum, const) or of the wrong type (type).

``describe(schema, data)`` walks the schema as jsonschema's Draft202012Validator does (keywords in the
schema's order, the same paths, instances and sub-schemas) and returns those errors, or None when the recipe
has an error of any other kind (a bound, a length, a pattern, oneOf, not, ...): jsonschema then describes the
whole recipe, its messages being the reference. tests/unit/recipe/test_speed_schema.py checks that both give the same
errors.
"""

from __future__ import annotations

import re
from numbers import Number
from typing import Any, Iterator

from ft_recipes.recipe._fastschema import _eq

DESCRIBED = frozenset({"additionalProperties", "required", "enum", "const", "type"})
ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default",
                         "examples", "deprecated", "readOnly", "writeOnly", "format", "markdownDescription"})


class SchemaError:
    """The parts of a jsonschema ValidationError that ftr's findings are made of."""

    context = ()

    def __init__(self, validator: str, value: Any, instance: Any, schema: dict, path: tuple, message: str = ""):
        self.validator = validator
        self.validator_value = value
        self.instance = instance
        self.schema = schema
        self.absolute_path = path
        self.message = message


def describe(schema: dict, data: Any) -> list[SchemaError] | None:
    """The errors of ``data`` against ``schema``, or None when one is not of a kind listed in DESCRIBED."""
    errors = list(Walker(schema).errors(schema, data, ()))
    if not errors or any(error.validator not in DESCRIBED for error in errors):
        return None
    return errors


def is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return not isinstance(value, bool) and (isinstance(value, int) or
                                                (isinstance(value, float) and value.is_integer()))
    if kind == "number":
        return isinstance(value, Number) and not isinstance(value, bool)
    return isinstance(value, TYPES[kind]) if kind in TYPES else False


TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


class Walker:
    def __init__(self, root: dict):
        self.root = root

    def valid(self, schema: Any, value: Any) -> bool:
        return next(self.errors(schema, value, ()), None) is None

    def errors(self, schema: Any, value: Any, path: tuple) -> Iterator[SchemaError]:
        if schema is True:
            return
        if schema is False or not isinstance(schema, dict):
            yield SchemaError("false", None, value, schema, path)
            return
        for keyword, arg in schema.items():
            if keyword in ANNOTATIONS:
                continue
            check = getattr(self, "k_" + keyword.lstrip("$"), None)
            if check is None:
                yield SchemaError(keyword, arg, value, schema, path)  # unknown here: jsonschema describes it
                continue
            yield from check(arg, value, schema, path)

    def k_ref(self, ref, value, schema, path):
        parts = ref.split("/")
        if parts[0] != "#" or len(parts) != 3 or parts[2] not in self.root.get(parts[1], {}):
            yield SchemaError("$ref", ref, value, schema, path)
            return
        yield from self.errors(self.root[parts[1]][parts[2]], value, path)

    def k_type(self, types, value, schema, path):
        kinds = types if isinstance(types, list) else [types]
        if not any(is_type(value, kind) for kind in kinds):
            reprs = ", ".join(repr(kind) for kind in kinds)
            yield SchemaError("type", types, value, schema, path, f"{value!r} is not of type {reprs}")

    def k_enum(self, enums, value, schema, path):
        if all(not _eq(each, value) for each in enums):
            yield SchemaError("enum", enums, value, schema, path, f"{value!r} is not one of {enums!r}")

    def k_const(self, const, value, schema, path):
        if not _eq(value, const):
            yield SchemaError("const", const, value, schema, path, f"{const!r} was expected")

    def k_required(self, required, value, schema, path):
        if isinstance(value, dict):
            for key in required:
                if key not in value:
                    yield SchemaError("required", required, value, schema, path, f"{key!r} is a required property")

    def k_properties(self, properties, value, schema, path):
        if isinstance(value, dict):
            for key, sub in properties.items():
                if key in value:
                    yield from self.errors(sub, value[key], path + (key,))

    def k_additionalProperties(self, extra, value, schema, path):
        if not isinstance(value, dict) or "patternProperties" in schema:
            if isinstance(value, dict):
                yield SchemaError("patternProperties", extra, value, schema, path)
            return
        extras = [key for key in value if key not in schema.get("properties", {})]
        if isinstance(extra, dict):
            for key in extras:
                yield from self.errors(extra, value[key], path + (key,))
        elif not extra and extras:
            names = ", ".join(repr(key) for key in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield SchemaError("additionalProperties", extra, value, schema, path,
                              f"Additional properties are not allowed ({names} {verb} unexpected)")

    def k_items(self, items, value, schema, path):
        if isinstance(value, list) and "prefixItems" not in schema:
            for i, item in enumerate(value):
                yield from self.errors(items, item, path + (i,))
        elif isinstance(value, list):
            yield SchemaError("prefixItems", items, value, schema, path)

    def k_propertyNames(self, names, value, schema, path):
        if isinstance(value, dict):
            for key in value:  # the name is the instance; the path stays the mapping's
                yield from self.errors(names, key, path)

    def k_oneOf(self, options, value, schema, path):
        if sum(self.valid(option, value) for option in options) != 1:
            yield SchemaError("oneOf", options, value, schema, path)

    def k_not(self, sub, value, schema, path):
        if self.valid(sub, value):
            yield SchemaError("not", sub, value, schema, path)

    def k_minimum(self, bound, value, schema, path):
        return self._bound("minimum", is_type(value, "number") and value < bound, value, schema, path)

    def k_maximum(self, bound, value, schema, path):
        return self._bound("maximum", is_type(value, "number") and value > bound, value, schema, path)

    def k_exclusiveMinimum(self, bound, value, schema, path):
        return self._bound("exclusiveMinimum", is_type(value, "number") and value <= bound, value, schema, path)

    def k_exclusiveMaximum(self, bound, value, schema, path):
        return self._bound("exclusiveMaximum", is_type(value, "number") and value >= bound, value, schema, path)

    def k_minLength(self, size, value, schema, path):
        return self._bound("minLength", isinstance(value, str) and len(value) < size, value, schema, path)

    def k_maxLength(self, size, value, schema, path):
        return self._bound("maxLength", isinstance(value, str) and len(value) > size, value, schema, path)

    def k_minItems(self, size, value, schema, path):
        return self._bound("minItems", isinstance(value, list) and len(value) < size, value, schema, path)

    def k_maxItems(self, size, value, schema, path):
        return self._bound("maxItems", isinstance(value, list) and len(value) > size, value, schema, path)

    def k_minProperties(self, size, value, schema, path):
        return self._bound("minProperties", isinstance(value, dict) and len(value) < size, value, schema, path)

    def k_maxProperties(self, size, value, schema, path):
        return self._bound("maxProperties", isinstance(value, dict) and len(value) > size, value, schema, path)

    def k_pattern(self, pattern, value, schema, path):
        failed = isinstance(value, str) and not re.search(pattern, value)
        return self._bound("pattern", failed, value, schema, path)

    @staticmethod
    def _bound(keyword, failed, value, schema, path):
        return [SchemaError(keyword, schema[keyword], value, schema, path)] if failed else []
