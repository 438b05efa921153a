"""Start-up and per-file cost of `ftr lint`: what a valid recipe's lint imports, and work done once per process
rather than once per file. (Timings live in benchmarks/bench.py; these assert behaviour, not seconds.)"""

import difflib
import json
import os
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import EXAMPLES, ROOT

from ft_recipes.backends import catalogue
from ft_recipes.cli.main import main
from ft_recipes.core.closest import close_match
from ft_recipes.core.paths import may_declare_entry_points
from ft_recipes.lint import engine
from ft_recipes.recipe import load

NATIVE = sorted((ROOT / "tests" / "data" / "native").glob("*.yaml"))
HEAVY = ("jsonschema", "torch", "transformers", "matplotlib", "hypothesis", "numpy", "peft", "trl", "datasets",
         "importlib.metadata")
PROBE = """\
import contextlib, io, json, sys
from ft_recipes.cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:], standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def probe(*args: str) -> dict:
    """Run ftr in a fresh interpreter; its exit code and every module it imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("path", [EXAMPLES[0], ROOT / "recipes" / "examples" / "tiny-cpu.yaml", *NATIVE[:2]],
                         ids=lambda p: p.name)
def test_linting_a_valid_file_imports_nothing_heavy(path):
    result = probe("lint", str(path))
    assert result["code"] in (0, 1)
    assert [m for m in HEAVY if m in result["modules"]] == []


def test_an_invalid_recipe_still_gets_jsonschema_messages(write):
    bad = write("bad.yaml", "ftr: 1\nmodel: {base: m}\ndata:\n  train:\n    - {path: d.jsonl, format: alpaka}\n")
    result = CliRunner().invoke(main, ["lint", str(bad)])
    assert result.exit_code == 1
    assert "FTR002" in result.output and "did you mean alpaca?" in result.output


REALWORLD = ROOT / "tests" / "data" / "realworld"


@pytest.mark.parametrize("path", ["llamafactory/examples/inference/qwen3.yaml",  # no dataset: `required`
                                  "llamafactory/examples/merge_lora/qwen3_lora_sft.yaml"])
def test_common_schema_errors_are_described_without_jsonschema(path):
    """A native file whose recipe misses a required key or holds a value the schema does not allow (as many
    inference and merge configs do) is described by ft_recipes.recipe.schema_errors, not jsonschema."""
    result = probe("lint", str(REALWORLD / path))
    assert "jsonschema" not in result["modules"]
    assert "ft_recipes.recipe.schema_errors" in result["modules"]


def test_an_error_of_another_kind_still_gets_jsonschemas_message(write):
    bad = write("bad.yaml", "ftr: 1\nmodel: {base: m}\ntrain: {lr: -1}\n"
                            "data:\n  train:\n    - {path: d.jsonl, format: alpaca}\n")
    result = CliRunner().invoke(main, ["lint", str(bad)])
    assert result.exit_code == 1 and "train.lr" in result.output and "minimum" in result.output


def test_version_loads_no_command_module():
    modules = probe("--version")["modules"]
    assert not [m for m in modules if m.startswith("ft_recipes.cli.commands.") or m.startswith("ft_recipes.lint")]
    assert "yaml" not in modules and "jsonschema" not in modules


def test_lint_loads_only_its_own_command_module():
    modules = probe("lint", str(EXAMPLES[0]))["modules"]
    commands = sorted(m for m in modules if m.startswith("ft_recipes.cli.commands."))
    assert commands == ["ft_recipes.cli.commands.lint"]


def test_yaml_is_read_with_libyaml_when_pyyaml_has_it():
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(load._Loader, yaml.CSafeLoader)


@pytest.mark.parametrize("text, expected", [
    ("a: yes\nb: No\nc: ~\nd: null\ne: 'yes'\nf: 0x10\ng: 1_000\nh: 1e-5\ni: .inf\nj: 2001-01-01\nk: ''\n",
     {"a": True, "b": False, "c": None, "d": None, "e": "yes", "f": 16, "g": 1000, "h": 1e-5, "i": float("inf"),
      "j": "2001-01-01", "k": ""}),
    ("? !!str 1\n: !!int '7'\nx: !!bool 'true'\ny: !!null ''\n", {"1": 7, "x": True, "y": None}),
])
def test_scalars_read_as_pyyaml_reads_them(text, expected):
    assert load.load_text(text).data == expected


def _lint_many(tmp_path, n: int) -> list:
    files = []
    for i in range(n):
        source = NATIVE[i % len(NATIVE)]
        target = tmp_path / f"{i}-{source.name}"
        target.write_text(source.read_text())
        files.append(str(target))
    for source in ("data", "deepspeed_configs"):
        if (ROOT / "tests" / "data" / "native" / source).is_dir():
            os.symlink(ROOT / "tests" / "data" / "native" / source, tmp_path / source)
    return files


def test_many_files_share_catalogues_and_rule_selection(tmp_path):
    files = _lint_many(tmp_path, 24)
    catalogue._known.cache_clear()
    engine._selected.cache_clear()
    result = CliRunner().invoke(main, ["lint", *files])
    assert result.exit_code in (0, 1), result.output
    known, selected = catalogue._known.cache_info(), engine._selected.cache_info()
    assert known.misses <= 4 and known.hits >= 20  # one key table per backend and plugin list, not per file
    assert selected.misses == 1 and selected.hits >= 23


def test_many_files_findings_equal_one_file_at_a_time(tmp_path):
    files = _lint_many(tmp_path, len(NATIVE) * 2)
    together = CliRunner().invoke(main, ["lint", "--format", "json", *files])
    alone = []
    for path in files:
        catalogue._known.cache_clear()
        engine._selected.cache_clear()
        alone += json.loads(CliRunner().invoke(main, ["lint", "--format", "json", path]).output or "[]")
    key = lambda f: (f["file"], f["line"], f["col"], f["code"], f["message"])  # noqa: E731
    found = json.loads(together.output)
    assert found and sorted(map(key, found)) == sorted(map(key, alone))


def test_entry_point_precheck(tmp_path):
    site = tmp_path / "site"
    (site / "plain-1.0.dist-info").mkdir(parents=True)
    (site / "plain-1.0.dist-info" / "entry_points.txt").write_text("[console_scripts]\nx = y:z\n")
    assert not may_declare_entry_points("ft_recipes.recipe.presets", (str(site), str(tmp_path / "missing")))
    (site / "acme-1.0.dist-info").mkdir()
    (site / "acme-1.0.dist-info" / "entry_points.txt").write_text("[ft_recipes.recipe.presets]\nacme = acme\n")
    assert may_declare_entry_points("ft_recipes.recipe.presets", (str(site),))
    egg = tmp_path / "eggs" / "old.egg" / "EGG-INFO"
    egg.mkdir(parents=True)
    (egg / "entry_points.txt").write_text("[ft_recipes.recipe.presets]\nold = old\n")
    assert may_declare_entry_points("ft_recipes.recipe.presets", (str(tmp_path / "eggs"),))
    zipped = tmp_path / "lib.zip"
    zipped.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    assert may_declare_entry_points("ft_recipes.recipe.presets", (str(zipped),))  # cannot look inside: full scan


KEYS = sorted(catalogue.load("llamafactory").get("keys", {}))
words = st.one_of(st.sampled_from(KEYS), st.text("abcdefghijklmnopqrstuvwxyz_0123456789", max_size=30),
                  st.sampled_from(KEYS).map(lambda key: key[1:] + "x"), st.text(max_size=6),
                  st.text("ab", min_size=250, max_size=260))


@settings(max_examples=300, deadline=None, derandomize=bool(os.environ.get("CI")))
@given(word=words, candidates=st.one_of(st.just(KEYS), st.lists(words, max_size=20)),
       cutoff=st.sampled_from([0.0, 0.6, 0.7, 0.95, 1.0]))
def test_close_match_is_difflibs_answer(word, candidates, cutoff):
    expected = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    assert close_match(word, tuple(candidates), cutoff) == (expected[0] if expected else None)


number_text = st.text("0123456789+-._:eEinfaINF", min_size=1, max_size=12)


@settings(max_examples=500, deadline=None, derandomize=bool(os.environ.get("CI")))
@given(value=st.one_of(number_text, st.integers().map(str), st.floats().map(str)),
       tag=st.sampled_from([load._INT, load._FLOAT]))
def test_plain_numbers_read_as_pyyaml_reads_them(value, tag):
    fast = load._plain_number(tag, value)
    try:
        expected = yaml.SafeLoader("").construct_object(yaml.ScalarNode(tag, value))
    except (ValueError, yaml.YAMLError, IndexError):
        expected = None
    if fast is not None:
        assert (type(fast), repr(fast)) == (type(expected), repr(expected))


def test_real_parent_is_the_resolved_files_folder(tmp_path):
    from ft_recipes.core.paths import real_parent

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("x: 1\n")
    (tmp_path / "b" / "link.yaml").symlink_to(tmp_path / "a" / "x.yaml")
    (tmp_path / "dirlink").symlink_to(tmp_path / "a")
    for file in ("a/x.yaml", "b/link.yaml", "dirlink/x.yaml", "a/missing.yaml", "a/../b/link.yaml", "a/.."):
        assert real_parent(tmp_path / file) == (tmp_path / file).resolve().parent, file


def test_model_directories_are_looked_up_once_per_lint_run(monkeypatch, tmp_path):
    from ft_recipes.recipe import modelinfo

    asked = []
    monkeypatch.setattr(modelinfo, "_find_model_dir", lambda base: asked.append(base) or tmp_path)
    with modelinfo.remembered():
        assert modelinfo.model_dir("org/m") == modelinfo.model_dir("org/m") == tmp_path
    assert asked == ["org/m"]
    modelinfo.model_dir("org/m")  # outside a lint run nothing is remembered: a pipeline stage may make the model
    assert asked == ["org/m", "org/m"]


def test_json_files_are_parsed_once_per_lint_run_and_again_when_changed(tmp_path):
    from ft_recipes.recipe import modelinfo

    path = tmp_path / "dataset_info.json"
    path.write_text('{"a": {"file_name": "a.json"}}')
    with modelinfo.remembered():
        first = modelinfo.json_file(path)
        assert modelinfo.json_file(path) is first
        path.write_text('{"a": {"file_name": "a.json"}, "b": {"file_name": "b.json"}}')  # another size
        assert set(modelinfo.json_file(path)) == {"a", "b"}
        path.unlink()
        with pytest.raises(OSError):
            modelinfo.json_file(path)
    path.write_text('{"c": {}}')
    assert modelinfo.json_file(path) == {"c": {}}  # outside a lint run: read every time
    assert modelinfo.json_file(path) is not modelinfo.json_file(path)
    path.write_text("{not json")
    with pytest.raises(ValueError):
        modelinfo.json_file(path)


def test_linting_a_team_projects_recipe_imports_nothing_heavy(tmp_path):
    """Issue 32: the case benchmarks/bench.py times as `cold team lint` (a recipe extending a team preset found
    through [tool.ftr] preset-paths, which extends a built-in one, with a local dataset) imports nothing heavy."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench import team_project
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    recipe = team_project(tmp_path)
    result = probe("lint", str(recipe))
    assert result["code"] == 0
    assert [m for m in HEAVY if m in result["modules"]] == []
