"""A recipe field is declared once (recipe.py): the schema, the did-you-mean spellings and normalise's field map
come from the declarations, and a key the schema accepts with no field is an internal error, never a drop."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from paths import ROOT

from ft_recipes.backends import NAMES
from ft_recipes.cli.schema_gen import schema_text
from ft_recipes.recipe import fields as recipe_fields
from ft_recipes.recipe import model as r
from ft_recipes.recipe.fields import UndeclaredField, check_declared, leaves, recipe_schema, spellings
from ft_recipes.recipe.validate import suggest


def test_the_committed_schema_is_generated_from_the_fields():
    committed = (ROOT / "schemas" / "recipe.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "run python -m ft_recipes.cli.schema_gen"


def _schema_leaves(node: dict, root: dict, path: str = ""):
    if "$ref" in node and node["$ref"] == "#/$defs/dataset":
        yield from _schema_leaves(root["$defs"]["dataset"], root, path + "[]")
    elif "properties" in node:
        for key, sub in node["properties"].items():
            yield from _schema_leaves(sub, root, f"{path}.{key}" if path else key)
    elif node.get("type") == "array" and node.get("items", {}).get("$ref") == "#/$defs/dataset":
        yield from _schema_leaves(node["items"], root, path)
    else:
        yield path


def test_every_schema_leaf_of_a_section_is_a_declared_field():
    schema = recipe_schema(NAMES)
    section_leaves = {leaf for leaf in _schema_leaves(schema, schema)
                      if leaf.split(".")[0].split("[")[0] in recipe_fields.SECTIONS}
    assert section_leaves == {path for path, _cls, _f in leaves()}


def test_every_dataclass_field_is_declared_or_internal():
    for cls in (r.Model, r.Lora, r.Quant, r.Freeze, r.Oft, r.PromptLearning, r.Method, r.Preference, r.Dataset,
                r.Data, r.Train, r.Eval, r.Output, r.Hardware):
        for f in fields(cls):
            assert "help" in f.metadata and f.metadata["help"], (cls.__name__, f.name)
            assert f.metadata.get("internal") or "schema" in f.metadata, (cls.__name__, f.name)


def test_a_schema_key_without_a_field_is_an_internal_error_not_a_drop():
    check_declared({"train": {"lr": 1e-4}, "data": {"train": [{"path": "a", "format": "alpaca"}]}})
    with pytest.raises(UndeclaredField, match="train.torch_compile"):
        check_declared({"train": {"torch_compile": True}})
    with pytest.raises(UndeclaredField, match=r"data.train\[\].weight"):
        check_declared({"data": {"train": [{"path": "a", "format": "alpaca", "weight": 2}]}})


def test_spellings_come_from_the_fields_and_name_real_paths():
    known = spellings()
    assert known["lora_rank"] == "method.lora.r" and known["cutoff_len"] == "data.max_length"
    paths = {path for path, _cls, _f in leaves()} | {"data.train"}
    assert set(known.values()) <= paths
    assert suggest("learning_rate", ["lr", "epochs"]) == "did you mean train.lr?"


def test_schema_descriptions_are_the_field_help():
    schema = json.loads((ROOT / "schemas" / "recipe.schema.json").read_text())
    assert schema["properties"]["train"]["properties"]["lr"]["description"] == \
        r.Train.__dataclass_fields__["lr"].metadata["help"]
    assert schema["properties"]["data"]["properties"]["val"]["properties"]["split"]["description"] == \
        r.Data.__dataclass_fields__["val_split"].metadata["help"]


def test_every_declared_field_is_expressed_by_some_backend_or_configures_ftr():
    from ft_recipes import backends
    from ft_recipes.backends.base import is_ftr_only

    expressed = {row.path for b in backends.all_backends() for row in b.keys}
    for path, _cls, _f in leaves():
        dotted = path.split("[]")[0]
        assert is_ftr_only(dotted) or any(dotted == p or dotted.startswith(p + ".") for p in expressed), path
