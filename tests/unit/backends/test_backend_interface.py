"""The backend interface: registry, capabilities, key tables, and the rule that no core module names a backend."""

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from paths import ROOT

from ft_recipes import backends
from ft_recipes.backends.base import Backend, is_ftr_only
from ft_recipes.cli.main import main

PKG = ROOT / "ft_recipes"


def _schema_leaves(node: dict, root: dict, path: str = ""):
    if "properties" in node:
        for key, sub in node["properties"].items():
            yield from _schema_leaves(sub, root, f"{path}.{key}" if path else key)
    else:
        yield path


SCHEMA = json.loads((ROOT / "schemas" / "recipe.schema.json").read_text())
LEAVES = [leaf for leaf in _schema_leaves(SCHEMA, SCHEMA) if not is_ftr_only(leaf)]


def test_registry_holds_backend_objects():
    for name in backends.NAMES:
        backend = backends.get(name)
        assert isinstance(backend, Backend) and backend.name == name
        assert backend.capabilities.stages and backend.capabilities.methods


def test_import_choices_come_from_capabilities():
    assert "trl" not in backends.names("import")
    result = CliRunner().invoke(main, ["import", "x.yaml", "--from", "trl"])
    assert result.exit_code == 2 and "internal error" not in result.output


def test_every_table_row_names_a_recipe_field():
    for backend in backends.all_backends():
        for row in backend.keys:
            assert row.path in LEAVES or row.path in ("data.train", "data.val.datasets"), (backend.name, row.path)


@pytest.mark.parametrize("name", backends.NAMES)
def test_explain_shows_a_native_key_for_every_expressible_field(name, tmp_path):
    recipe = ROOT / "recipes" / "examples" / "lora-sft-alpaca.yaml"
    result = CliRunner().invoke(main, ["explain", str(recipe), "-b", name, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    rows = rows["values"]
    table = backends.get(name).keys
    for row in rows:
        key = row["key"]
        native = row["native"][name]
        if table.covers(key.split("[")[0]):
            assert not native.startswith("-"), (key, native)


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0


def test_no_core_module_imports_a_backend_module():
    offenders = []
    for path in PKG.rglob("*.py"):
        if "backends" in path.relative_to(PKG).parts[:1]:
            continue
        for module, _level in _imports(path):
            parts = module.split(".")
            if any(name in parts for name in backends.NAMES) and "backends" in parts:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert not offenders


def _native_only_keys() -> set[str]:
    """Native keys of the tables that are not also recipe field names."""
    from ft_recipes.backends.keys import TYPED

    recipe_names = {part for leaf in [*LEAVES, *TYPED.values()] for part in leaf.split(".")}
    keys = set()
    for backend in backends.all_backends():
        for row in backend.keys:
            if not row.structural and "." not in row.native and row.native not in recipe_names:
                keys.add(row.native)
    return keys


# Modules that speak a backend's dialect by nature: the Axolotl plugin runs inside Axolotl, the recipe fields'
# spellings (did-you-mean) map backend spellings to recipe keys, and the key catalogue reader.
# report.py reads transformers' trainer logs (the same field names on every backend).
DIALECT_MODULES = {"integrations/axolotl.py", "integrations/axolotl_args.py", "recipe/model.py",
                   "insight/report.py"}
# (module, string) pairs that merely look like a backend key: a rule's message id.
NOT_KEYS = {("lint/rules/model.py", "base_model")}


def test_no_core_module_names_a_backend_key():
    native = _native_only_keys()
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("backends/") or rel in DIALECT_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in native \
                    and (rel, node.value) not in NOT_KEYS:
                offenders.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert not offenders


def test_generated_backend_docs_are_current():
    from ft_recipes.backends.docs import DOCS, PAGES

    for name, page in PAGES.items():
        assert (DOCS / name).read_text() == page(), f"docs/backends/{name} is stale: python -m ft_recipes.backends.docs"


def test_compile_notes_that_llamafactory_packs_pretraining_text_as_one_stream(tmp_path):
    """LLaMA-Factory 0.9.5 (data/processor/pretrain.py) concatenates every text and cuts blocks; Axolotl and trl
    pack whole rows: a fidelity note for LLaMA-Factory on packed pretraining only."""
    recipe = ROOT / "recipes" / "examples" / "pretrain-text.yaml"
    out = CliRunner().invoke(main, ["compile", str(recipe), "-b", "llamafactory", "-o", str(tmp_path / "lf")])
    assert out.exit_code == 0 and "note [llamafactory] data.packing: LLaMA-Factory packs pretraining" in out.output
    out = CliRunner().invoke(main, ["compile", str(recipe), "-b", "axolotl", "-o", str(tmp_path / "ax")])
    assert out.exit_code == 0 and "data.packing" not in out.output
    sft = tmp_path / "sft.yaml"  # packed SFT: whole rows on LLaMA-Factory too (neat_packing)
    sft.write_text((ROOT / "recipes" / "examples" / "lora-sft-alpaca.yaml").read_text().replace(
        "data:\n", "data:\n  packing: true\n", 1).replace("path: data/", f"path: {ROOT}/recipes/examples/data/"))
    out = CliRunner().invoke(main, ["compile", str(sft), "-b", "llamafactory", "-o", str(tmp_path / "sft")])
    assert out.exit_code == 0 and "neat_packing: true" in (tmp_path / "sft" / "llamafactory.yaml").read_text()
    assert "note [llamafactory] data.packing" not in out.output


def test_axolotl_gets_the_system_prompt_in_the_rows_or_refuses(tmp_path):
    """Axolotl's default_system_message changes nothing with chatml (it replaces text the template does not have):
    ftr writes the recipe's system prompt into the rows it rewrites, where a row has none, and refuses it for a
    chat file Axolotl reads itself, naming the backends that can."""
    data = ROOT / "recipes" / "examples" / "data"
    alpaca = tmp_path / "alpaca.yaml"
    alpaca.write_text(f"ftr: 1\nextends: [lora-sft]\nmodel: {{base: Qwen/Qwen2.5-0.5B-Instruct, template: chatml}}\n"
                      f"data:\n  train: [{{path: {data}/alpaca.jsonl, format: alpaca}}]\n  system_prompt: Be brief.\n")
    out = CliRunner().invoke(main, ["compile", str(alpaca), "-b", "axolotl", "-o", str(tmp_path / "ax")])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in next((tmp_path / "ax" / "data").glob("*.jsonl")).read_text().splitlines()]
    assert rows and all(row["messages"][0] == {"role": "system", "content": "Be brief."} for row in rows)
    chat = tmp_path / "chat.yaml"
    chat.write_text(alpaca.read_text().replace("alpaca.jsonl, format: alpaca", "sharegpt.jsonl, format: sharegpt"))
    out = CliRunner().invoke(main, ["compile", str(chat), "-b", "axolotl", "-o", str(tmp_path / "chat")])
    assert out.exit_code == 1 and "FTR005" in out.output and "--backend llamafactory or trl" in out.output


# --- the contract: one conformance test over every registered backend -------------------------------------

@pytest.mark.parametrize("name", backends.NAMES)
def test_every_declared_part_meets_its_protocol(name):
    from ft_recipes.backends.interface import PARTS, EnvSpec

    backend = backends.get(name)
    assert backend.part("emitter") is not None and backend.part("oracle") is not None
    for part, protocol in PARTS.items():
        module = backend.part(part)
        if module is not None:
            assert isinstance(module, protocol), f"{name}.{part} ({getattr(backend, part)}) is no {protocol.__name__}"
    spec = backend.env_spec()
    assert spec is None or (isinstance(spec, EnvSpec) and spec.name == name)
    if backend.can_import:  # a native dialect: files are recognised by its markers, unknown keys have a fate
        assert backend.markers and backend.unknown_key_fate


@pytest.mark.parametrize("name", backends.NAMES)
def test_no_part_is_found_by_a_computed_module_name(name):
    """Every part is declared on Backend: no module builds a backend module's name from another's."""
    offenders = []
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        for needle in ('.rsplit(".", 1)[0] + ".', 'f"ft_recipes.backends.{backend.name}.'):
            if needle in text:
                offenders.append(f"{path.relative_to(PKG)}: {needle}")
    assert not offenders


def test_a_part_missing_a_function_fails_the_contract():
    import types

    from ft_recipes.backends.interface import Launcher

    partial = types.SimpleNamespace(launch=lambda *a: None, run_overrides=lambda *a: None)
    assert not isinstance(partial, Launcher)
