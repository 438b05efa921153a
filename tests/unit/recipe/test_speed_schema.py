"""The generated schema validator (ft_recipes/recipe/_fastschema.py): committed as generated from the schema, and
agreeing with jsonschema, the reference, on every recipe we have and on fuzzed and schema-directed ones."""

import copy
import importlib.util
import json
import math
import os
import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from paths import ROOT

from ft_recipes.core.findings import FtrError
from ft_recipes.recipe._fastschema import is_valid
from ft_recipes.recipe.loaded import resolve_file
from ft_recipes.recipe.schema_errors import DESCRIBED, describe
from ft_recipes.recipe.validate import _flatten

SCHEMA = json.loads((ROOT / "schemas" / "recipe.schema.json").read_text(encoding="utf-8"))
REFERENCE = Draft202012Validator(SCHEMA)
YAML_FILES = sorted(p for folder in ("recipes", "tests") for p in (ROOT / folder).rglob("*.y*ml"))
CASES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                 derandomize=bool(os.environ.get("CI")))


def _generator():
    spec = importlib.util.spec_from_file_location("gen_validator", ROOT / "scripts" / "gen_validator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def agree(data) -> None:
    assert is_valid(data) == REFERENCE.is_valid(data), data
    same_errors(data)


def _parts(error) -> tuple:
    return (error.validator, tuple(error.absolute_path), repr(error.validator_value), repr(error.instance),
            error.message, json.dumps(error.schema, sort_keys=True))


def same_errors(data) -> None:
    """ft_recipes.recipe.schema_errors gives jsonschema's errors (flattened as validate() does), or None when one of
    them is of a kind it leaves to jsonschema (or there is none)."""
    found = describe(SCHEMA, data)
    raw = list(REFERENCE.iter_errors(data))
    if found is None:
        assert not raw or any(error.validator not in DESCRIBED for error in raw), data
    else:
        assert sorted(map(_parts, found)) == sorted(_parts(_flatten(error)) for error in raw), data


def test_committed_validator_is_generated_from_the_schema():
    committed = (ROOT / "ft_recipes" / "recipe" / "_fastschema.py").read_text(encoding="utf-8")
    assert committed == _generator().generate(copy.deepcopy(SCHEMA)), \
        "schemas/recipe.schema.json changed: run python scripts/gen_validator.py"


@pytest.mark.parametrize("schema", [
    {"uniqueItems": True}, {"multipleOf": 2}, {"$ref": "https://example.com/other.json"},
    {"properties": {"a": {"contains": {"type": "string"}}}}, {"$defs": {"x": {"prefixItems": []}},
                                                               "$ref": "#/$defs/x"},
    {"type": "decimal"}, {"$ref": "#/$defs/missing"},
], ids=str)
def test_generator_refuses_what_it_cannot_translate(schema):
    gen = _generator()
    with pytest.raises(gen.Unsupported):
        gen.generate(schema)


def _load_all(path):
    try:
        return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError):
        return []


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_agrees_on_every_yaml_file(path):
    for data in _load_all(path):
        agree(data)
    try:
        agree(resolve_file(path).data)  # what validate() sees: extends merged
    except (FtrError, RecursionError):
        pass


def test_every_example_is_valid_on_the_fast_path():
    from ft_recipes.recipe.stages import has_stages, load_pipeline

    examples = sorted((ROOT / "recipes" / "examples").glob("*.yaml"))
    single = [resolve_file(p).data for p in examples if not has_stages(p)]
    stages = [s.loaded.resolved.data for p in examples if has_stages(p) for s in load_pipeline(p).stages if s.loaded]
    assert single and stages and all(is_valid(data) for data in single + stages)


VALID = {"ftr": 1, "model": {"base": "org/m"}, "data": {"train": [{"path": "d.jsonl", "format": "alpaca"}]}}


def _with(path: str, value):
    data = copy.deepcopy(VALID)
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


@pytest.mark.parametrize("path, value", [
    ("train.lr", math.nan), ("train.lr", math.inf), ("train.lr", -math.inf), ("train.lr", 0.0), ("train.lr", -0.0),
    ("train.lr", True), ("train.lr", "1e-4"), ("train.epochs", 2), ("method.lora.r", 2.0), ("method.lora.r", 2.5),
    ("method.lora.r", True), ("method.lora.r", 0), ("method.lora.r", math.nan), ("method.lora.r", 1e300),
    ("method.lora.r", 10**40), ("ftr", 1.0), ("ftr", True), ("ftr", "1"), ("method.quant.bits", 4.0),
    ("method.quant.bits", True), ("method.quant.bits", 4), ("method.freeze.trainable_layers", 0),
    ("method.freeze.trainable_layers", 0.0), ("method.freeze.trainable_layers", -2), ("method.freeze.trainable_layers",
        False),
    ("lint.ignore", ["FTR101"]), ("lint.ignore", ["FTR1\n"]), ("lint.ignore", ["ftr101"]), ("lint.ignore", ["FTR１"]),
    ("model.base", ""), ("model.base", "模型/ü"), ("model.base", "\u202e\u0000"), ("model.params", 0),
    ("data.val", {}), ("data.val", {"split": 0.1}), ("data.val", {"split": 0.1, "datasets": []}),
    ("data.train", []), ("data.train", [{"format": "alpaca"}]), ("data.train", [{"path": "a", "hub": "b",
        "format": "text"}]),
    ("data.train", [{"hub": "b", "format": "text", "name": "ok.name-1"}]), ("data.train", [{"hub": "b",
        "format": "text", "name": "no space"}]),
    ("data.train", [{"hub": "b", "format": "text", "columns": {"prompt": "q"}}]),
    ("data.train", [{"hub": "b", "format": "text", "columns": {"nope": "q"}}]),
    ("data.train", [{"hub": "b", "format": "text", "columns": {"prompt": 3}}]),
    ("method.lora.target", "all-linear"), ("method.lora.target", []), ("method.lora.target", ["q_proj"]),
    ("output.report_to", "none"), ("output.report_to", ["none"]), ("output.report_to", ["wandb", "mlflow"]),
    ("backends", {"trl": {"x": 1}}), ("backends", {"other": {}}), ("backends", {"trl": []}),
    ("backends", {"axolotl": {"a": {"b": {"c": {"d": [[[[{"e": None}]]]]}}}}}),
    ("extends", "base"), ("extends", ["a", "b"]), ("extends", []), ("extends", [""]), ("extends", None),
    ("model.unknown_key", 1), ("surprise", {}), ("ünïcode", 1), ("train", None), ("train", []),
    ("hardware.gpus", 0), ("hardware.gpus", -1), ("train.warmup_ratio", 1.0000001), ("method.lora.dropout", 1),
])
def test_agrees_on_edge_values(path, value):
    agree(_with(path, value))


def test_agrees_on_missing_required_and_non_mappings():
    for data in (None, [], "ftr: 1", 1, {}, {"model": {"base": "m"}}, {"data": VALID["data"]},
                 {**VALID, "model": {}}, {**VALID, "model": {"template": "chatml"}}):
        agree(data)


# --- fuzzed: mutated real recipes, and recipes generated from the schema itself ---------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.floats(-1e6, 1e6).map(float.__floor__).map(float), st.sampled_from([0, 1, 2.0, -0.0, 1e-300]),
                    st.text(max_size=20), st.sampled_from(["", "all-linear", "FTR101", "bf16", "4", "1e-5",
                                                           "\u202e\u0000", "ü🙂"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=25)
SEEDS = [data for path in sorted((ROOT / "recipes").rglob("*.yaml")) for data in _load_all(path) if data]


def _mutate(data, rnd: random.Random, value):
    if isinstance(data, dict) and data:
        key = rnd.choice(list(data))
        action = rnd.random()
        if action < 0.3:
            data[key] = value
        elif action < 0.45:
            data[key + rnd.choice("xyz_")] = data.pop(key)
        elif action < 0.55:
            del data[key]
        else:
            _mutate(data[key], rnd, value)
    elif isinstance(data, list) and data:
        i = rnd.randrange(len(data))
        if rnd.random() < 0.4:
            data[i] = value
        else:
            _mutate(data[i], rnd, value)
    return data


@CASES
@given(seed=st.integers(0, 10**6), value=values, times=st.integers(1, 3))
def test_agrees_on_mutated_recipes(seed, value, times):
    rnd = random.Random(seed)
    data = copy.deepcopy(rnd.choice(SEEDS))
    for _ in range(times):
        data = _mutate(data, rnd, value)
    agree(data)


def _resolve_ref(schema: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = {**SCHEMA["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _near(number):
    return st.sampled_from([number, number - 1, number + 1, float(number), number + 0.5, -number])


def mostly(right, wrong, odds: int = 25):
    """``right`` (odds - 1) times in ``odds``, else ``wrong``: mostly valid recipes, each with a twist."""
    return st.sampled_from(range(odds)).flatmap(lambda i: wrong if i == odds - 1 else right)  # 0 is drawn often


def from_schema(schema, depth: int = 0):
    """Values close to what ``schema`` accepts (mostly valid, sometimes just wrong), and now and then junk."""
    schema = _resolve_ref(schema)
    junk = values if depth < 3 else scalars
    if not isinstance(schema, dict) or not schema:
        return junk
    if "oneOf" in schema and "type" in schema:  # e.g. a dataset: path or hub; one branch merged in at a time
        rest = {k: v for k, v in schema.items() if k != "oneOf"}
        return st.one_of(*(from_schema({**rest, **sub, "required": rest.get("required", []) + sub.get("required", [])},
                                       depth) for sub in schema["oneOf"]))
    options = []
    if "const" in schema:
        options.append(st.just(schema["const"]))
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    for sub in schema.get("oneOf", []):
        options.append(from_schema(sub, depth + 1))
    kinds = schema.get("type", [])
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        options.append(_of_type(schema, kind, depth))
    return mostly(st.one_of(*options), junk) if options else junk


def _of_type(schema: dict, kind: str, depth: int):
    bound = next((schema[k] for k in ("minimum", "exclusiveMinimum", "maximum") if k in schema), 0)
    if kind == "integer":
        return mostly(st.integers(1, 100), st.one_of(_near(bound), st.booleans(), st.just(float(bound) + 1)))
    if kind == "number":
        return mostly(st.floats(0.001, 1.0), st.one_of(st.floats(allow_nan=True), _near(bound), st.booleans()))
    if kind == "string":
        text = st.from_regex(schema["pattern"]) if "pattern" in schema else st.text(min_size=1, max_size=12)
        return mostly(text, st.one_of(st.just(""), st.text(max_size=12)))
    if kind == "boolean":
        return mostly(st.booleans(), st.sampled_from([0, 1, "true"]))
    if kind == "array":
        item = from_schema(schema.get("items", {}), depth + 1)
        return st.lists(item, min_size=schema.get("minItems", 0), max_size=3)
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        fixed = {key: from_schema(sub, depth + 1) for key, sub in props.items() if key in schema.get("required", [])}
        optional = {key: from_schema(sub, depth + 1) for key, sub in props.items() if key not in fixed}
        unknown = st.dictionaries(st.sampled_from(["surprise", "lr", "ünï", "Type", "r "]),
                                  from_schema(extra, depth + 1) if isinstance(extra, dict) else values, max_size=1)
        names = schema.get("propertyNames", {}).get("enum", [])
        named = st.dictionaries(st.sampled_from(names), from_schema(extra, depth + 1),
            max_size=2) if names else st.just({})
        return st.builds(lambda a, b, c, drop: {k: v for k, v in {**a, **b, **c}.items() if k != drop},
                         st.fixed_dictionaries(fixed, optional=optional), mostly(st.just({}), unknown), named,
                         mostly(st.none(), st.sampled_from(sorted(fixed) or [None])))
    return values


@CASES
@given(data=from_schema(SCHEMA))
def test_agrees_on_recipes_generated_from_the_schema(data):
    agree(data)


def test_schema_directed_generation_reaches_valid_and_invalid_recipes():
    """The schema-directed fuzzing must exercise both answers, or it tests little."""
    seen = set()

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(data=from_schema(SCHEMA))
    def collect(data):
        seen.add(REFERENCE.is_valid(data))

    collect()
    assert seen == {True, False}
