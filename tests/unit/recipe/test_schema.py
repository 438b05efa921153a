"""The schema: every example and preset-based recipe validates; each kind of bad recipe fails at the
right key path, with the right code, position and hint."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from paths import EXAMPLES, PRESETS, ROOT

from ft_recipes.cli.main import main
from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.loaded import load_recipe

BASE = """\
ftr: 1
model: {base: org/model, template: chatml, pad_token: eos}
data:
  train:
    - {path: d.jsonl, format: alpaca}
train: {lr: 1.0e-4}
"""


def test_schema_is_valid_2020_12():
    schema = json.loads((ROOT / "schemas" / "recipe.schema.json").read_text())
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_validate(example):
    from ft_recipes.recipe.stages import has_stages, load_pipeline

    load_pipeline(example) if has_stages(example) else load_recipe(example)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_presets_validate_under_a_recipe(preset, write):
    write("d.jsonl", "{}\n")
    path = write("r.yaml", f"extends: [{preset.stem}]\n" + BASE)
    load_recipe(path)


def _errors(write, text):
    write("d.jsonl", "{}\n")
    path = write("r.yaml", text)
    with pytest.raises(FtrError) as info:
        load_recipe(path)
    return info.value.findings


def test_misspelt_key_gets_did_you_mean(write):
    findings = _errors(write, BASE + "method:\n  type: lora\n  lora: {r: 8, lora_alhpa: 16}\n")
    assert len(findings) == 1
    f = findings[0]
    assert f.code == "FTR001" and f.key == "method.lora.lora_alhpa"
    assert "method.lora.alpha" in f.hint
    assert (f.line, f.col) == (9, 16)


def test_native_spelling_points_to_recipe_key(write):
    findings = _errors(write, BASE + "learning_rate: 1.0e-4\n")
    assert findings[0].code == "FTR001"
    assert "train.lr" in findings[0].hint


def test_wrong_type(write):
    findings = _errors(write, BASE.replace("lr: 1.0e-4", "lr: fast"))
    assert [(f.code, f.key) for f in findings] == [("FTR002", "train.lr")]
    assert findings[0].line == 6


def test_quoted_number_hint(write):
    findings = _errors(write, BASE + "method: {type: lora, lora: {r: '8'}}\n")
    assert findings[0].code == "FTR002" and "without quotes" in findings[0].hint


def test_enum_did_you_mean(write):
    findings = _errors(write, BASE + "stage: dop\n")
    assert findings[0].code == "FTR002" and "dpo" in findings[0].hint


def test_missing_required(write):
    findings = _errors(write, "ftr: 1\nmodel: {template: chatml}\n")
    codes = sorted((f.code, f.message) for f in findings)
    assert any("base" in m for c, m in codes if c == "FTR003")
    assert any("data" in m for c, m in codes if c == "FTR003")


def test_yaml12_float_is_a_number(write):
    write("d.jsonl", "{}\n")
    loaded = load_recipe(write("r.yaml", BASE.replace("1.0e-4", "2e-5")))
    assert loaded.recipe.train.lr == 2e-5


@pytest.mark.parametrize("text,needle", [
    ("a: 1\na: 2\n", "duplicate key"),
    ("a: [\n", "YAML syntax"),
    ("a: &a [*a]\n", "recursive alias"),
    ("- 1\n- 2\n", "mapping"),
    ("a: !!python/object:os.system {}\n", "YAML"),
])
def test_bad_yaml_is_one_clear_error(write, text, needle):
    path = write("bad.yaml", text)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert needle in result.output
    assert "Traceback" not in result.output
    assert f"{path}:" in result.output


def test_missing_file_is_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_schema_command_prints_the_schema():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"].startswith("ft-recipes recipe")


def test_cli_imports_nothing_heavy():
    code = ("import sys, ft_recipes.cli.main, ft_recipes.recipe.loaded, ft_recipes.backends.axolotl, "
            "ft_recipes.backends.llamafactory; "
            "print(','.join(m for m in ('torch','transformers','peft','trl','numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_version_and_help():
    runner = CliRunner()
    assert runner.invoke(main, ["--version"]).output.startswith("ftr, version ")
    help_text = runner.invoke(main, ["--help"]).output
    for command in ("compile", "validate", "schema"):
        assert command in help_text


def test_cli_works_without_site_hooks():
    """Run the CLI with `python -S` (no .pth side effects): every command must import what it uses."""
    import site

    paths = [str(ROOT)] + site.getsitepackages()
    code = (f"import sys; sys.path[:0] = {paths!r}; from ft_recipes.cli.main import main\n"
            "for args in (['presets', 'list'], ['rules'], ['schema'], ['backend', 'info']):\n"
            "    try:\n        main(args, standalone_mode=False)\n    except SystemExit:\n        pass\n")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lora-sft" in proc.stdout and "FTR101" in proc.stdout
