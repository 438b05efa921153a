"""`ftr lint` and `ftr rules` on the command line: exit codes, options, config, suppression, formats."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator
from test_lint_rules import write_case

from ft_recipes.cli.commands.lint import FORMATS
from ft_recipes.cli.main import main
from ft_recipes.lint import Options, lint_paths
from ft_recipes.lint.reporters import REPORTERS

DATA = Path(__file__).resolve().parents[2] / "data"
GOLDEN = DATA / "lint_cases" / "golden"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)


def lint(*args: str):
    return CliRunner().invoke(main, ["lint", *args])


def case(tmp_path: Path, **recipe) -> Path:
    return write_case({"recipe": recipe}, tmp_path)


def codes(result) -> list[str]:
    return [line.split(": ")[1].split(" ")[0] for line in result.output.splitlines() if ": FTR" in line]


# Exit codes -------------------------------------------------------------------------------------------------


def test_clean_recipe_exits_0(tmp_path):
    result = lint(str(case(tmp_path)))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "All checks passed (1 file)."


def test_error_finding_exits_1(tmp_path):
    case(tmp_path, train={"lr": 1.0e-5})
    result = lint("recipe.yaml")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "recipe.yaml:25:7: FTR101 [error] learning rate 1e-5 is a full fine-tuning rate for lora sft: the adapter "
        "will barely move (recommended 5e-5 to 3e-4) (use 1e-4; 2e-4 is common for QLoRA)",
        "Found 1 problem (1 error) in 1 of 1 file."]


def test_warnings_exit_0_and_strict_exits_1(tmp_path):
    case(tmp_path, method={"lora": {"r": 128, "alpha": 256}})
    assert lint("recipe.yaml").exit_code == 0
    strict = lint("recipe.yaml", "--strict")
    assert strict.exit_code == 1 and "FTR102 [error]" in strict.output


def test_missing_path_exits_2(tmp_path):
    result = lint("nope.yaml")
    assert result.exit_code == 2 and "no such file" in result.output


def test_no_path_and_bad_code_exit_2(tmp_path):
    case(tmp_path)
    assert lint().exit_code == 2
    result = lint("recipe.yaml", "--select", "E501")
    assert result.exit_code == 2 and "not a rule code" in result.output


def test_invalid_recipe_reports_schema_findings_only(tmp_path):
    case(tmp_path, train={"learning_rate": 1.0e-6, "lr": 1.0e-5})
    result = lint("recipe.yaml")
    assert result.exit_code == 1 and codes(result) == ["FTR001"]


def test_yaml_syntax_error_is_a_finding(tmp_path):
    (tmp_path / "bad.yaml").write_text("ftr: 1\nmodel: [unclosed\n")
    result = lint("bad.yaml")
    assert result.exit_code == 1 and codes(result) == ["FTR000"]


# Selection and suppression ----------------------------------------------------------------------------------

BUSY = {"train": {"lr": 1.0e-5, "weight_decay": 0.3}, "method": {"lora": {"r": 128, "alpha": 256}}}


def test_select_and_ignore_prefixes(tmp_path):
    case(tmp_path, **BUSY)
    assert codes(lint("recipe.yaml")) == ["FTR102", "FTR101", "FTR105"]
    assert codes(lint("recipe.yaml", "--select", "FTR10", "--ignore", "FTR101")) == ["FTR102", "FTR105"]
    assert codes(lint("recipe.yaml", "--select", "FTR1", "--ignore", "FTR10", "--extend-select", "FTR105")) \
        == ["FTR105"]
    assert codes(lint("recipe.yaml", "--ignore", "FTR101,FTR102")) == ["FTR105"]


def test_noqa_comments(tmp_path):
    path = case(tmp_path, **BUSY)
    text = path.read_text()
    text = text.replace("lr: 1.0e-05", "lr: 1.0e-05  # ftr: noqa: FTR101")
    text = text.replace("weight_decay: 0.3", "weight_decay: 0.3  # ftr: noqa")
    text = text.replace("r: 128", "r: 128  # ftr: noqa: FTR999")
    path.write_text(text)
    result = lint("recipe.yaml")
    assert codes(result) == ["FTR102"] and result.exit_code == 0
    assert codes(lint("recipe.yaml", "--no-noqa")) == ["FTR102", "FTR101", "FTR105"]


def test_noqa_in_preset_line(tmp_path):
    (tmp_path / "preset.yaml").write_text("train:\n  lr: 1.0e-5   # ftr: noqa FTR101\n")
    case(tmp_path, extends=["preset.yaml"], train={"lr": None})
    assert lint("recipe.yaml").exit_code == 0


def test_recipe_lint_ignore(tmp_path):
    case(tmp_path, lint={"ignore": ["FTR101", "FTR10"]}, **BUSY)
    assert lint("recipe.yaml").exit_code == 0 and codes(lint("recipe.yaml")) == []


def test_pyproject_settings(tmp_path):
    case(tmp_path, **BUSY)
    (tmp_path / "pyproject.toml").write_text('[tool.ftr.lint]\nignore = ["FTR101"]\nstrict = true\n')
    result = lint("recipe.yaml")
    assert codes(result) == ["FTR102", "FTR105"] and result.exit_code == 1
    assert "FTR102 [error]" in result.output
    assert codes(lint("recipe.yaml", "--select", "FTR105")) == ["FTR105"]


def test_pyproject_unknown_setting_exits_2(tmp_path):
    case(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.ftr.lint]\nselcet = ["FTR1"]\n')
    result = lint("recipe.yaml")
    assert result.exit_code == 2 and "selcet" in result.output


def test_rule_pack_overrides_thresholds_and_severity(tmp_path):
    case(tmp_path, method={"lora": {"r": 48, "alpha": 96}})
    assert codes(lint("recipe.yaml")) == []
    (tmp_path / "team.yaml").write_text("rules:\n  FTR102:\n    max: 32\n    severity: error\n")
    (tmp_path / "pyproject.toml").write_text('[tool.ftr.lint]\nrule-packs = ["team.yaml"]\n')
    result = lint("recipe.yaml")
    assert result.exit_code == 1 and "FTR102 [error] LoRA rank r=48 is above 32" in result.output


def test_rule_pack_deep_merges_ranges(tmp_path):
    case(tmp_path, train={"lr": 3.0e-5})
    assert codes(lint("recipe.yaml")) == ["FTR101"]
    (tmp_path / "team.yaml").write_text(
        "rules:\n  FTR101:\n    ranges:\n      adapter:\n        sft: {warn_below: null}\n")
    assert codes(lint("recipe.yaml", "--rule-pack", "team.yaml")) == []
    assert codes(lint("recipe.yaml", "--rule-pack", "team.yaml", "--select", "FTR101")) == []


def test_rule_pack_with_unknown_code_exits_2(tmp_path):
    case(tmp_path)
    (tmp_path / "team.yaml").write_text("rules:\n  FTR999: {max: 1}\n")
    result = lint("recipe.yaml", "--rule-pack", "team.yaml")
    assert result.exit_code == 2 and "FTR999" in result.output


# Paths ------------------------------------------------------------------------------------------------------


def test_directories_globs_and_sorting(tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        write_case({"recipe": {"train": {"lr": 1.0e-5}}}, tmp_path / name)
    (tmp_path / "a" / "workflow.yaml").write_text("on: push\n")          # not a recipe: skipped in directories
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "p.yaml").write_text("ftr: 1\nstage: sft\n")  # partial preset: skipped
    result = lint(".")
    assert result.exit_code == 1
    files = [line.split(":")[0] for line in result.output.splitlines() if ": FTR" in line]
    assert files == ["a/recipe.yaml", "b/recipe.yaml"]
    assert "in 2 of 2 files" in result.output
    assert lint("*/recipe.yaml").output == result.output
    assert lint("nothing/*.yaml").exit_code == 2


def test_lint_paths_api(tmp_path):
    case(tmp_path, **BUSY)
    findings = lint_paths(["recipe.yaml"], Options(select=("FTR10",), ignore=("FTR105",), strict=True))
    assert [(f.code, f.severity) for f in findings] == [("FTR102", "error"), ("FTR101", "error")]


def test_bundled_examples_lint_without_errors():
    result = CliRunner().invoke(main, ["lint", str(ROOT / "recipes" / "examples")])
    assert result.exit_code == 0, result.output


# Formats ----------------------------------------------------------------------------------------------------


def test_reporters_registered_for_every_cli_format():
    assert set(REPORTERS) == set(FORMATS)


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("FTR_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


GOLDEN_RECIPE = {"train": {"lr": 1.0e-5, "scheduler": "constant"}, "method": {"lora": {"r": 128, "alpha": 256}}}


def test_json_golden(tmp_path):
    case(tmp_path, **GOLDEN_RECIPE)
    result = lint("recipe.yaml", "--format", "json")
    assert result.exit_code == 1
    assert [f["code"] for f in json.loads(result.output)] == ["FTR102", "FTR101", "FTR110"]
    _golden("busy.json", result.output)


def test_github_golden(tmp_path):
    case(tmp_path, **GOLDEN_RECIPE)
    result = lint("recipe.yaml", "--format", "github")
    assert result.output.startswith("::warning file=recipe.yaml,line=10,col=8,title=FTR102::")
    _golden("busy.github", result.output)


def test_github_escapes(tmp_path):
    from ft_recipes.core.findings import Finding

    text = REPORTERS["github"]().render([Finding("a,b:c.yaml", 1, 2, "FTR101", "info", "50%\nnext")], 1)
    assert text == "::notice file=a%2Cb%3Ac.yaml,line=1,col=2,title=FTR101::50%25%0Anext"


def test_sarif_is_valid_and_complete(tmp_path):
    case(tmp_path, **GOLDEN_RECIPE)
    result = lint("recipe.yaml", "--format", "sarif", "-o", "out.sarif")
    assert result.exit_code == 1 and result.output == ""
    log = json.loads((tmp_path / "out.sarif").read_text())
    schema = json.loads((DATA / "sarif-2.1.0.json").read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(log), key=str)
    assert not errors, errors[0].message
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {"FTR101", "FTR102", "FTR000"} <= {r["id"] for r in rules}
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("FTR102", "warning"), ("FTR101", "error"),
                                                           ("FTR110", "note")]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "recipe.yaml" and loc["region"]["startLine"] >= 1
    rule = next(r for r in rules if r["id"] == "FTR101")
    assert rule["help"]["markdown"].startswith("# FTR101") and rule["helpUri"].endswith("FTR101.md")


def test_sarif_for_a_clean_run_is_valid(tmp_path):
    case(tmp_path)
    result = lint("recipe.yaml", "--format", "sarif")
    log = json.loads(result.output)
    schema = json.loads((DATA / "sarif-2.1.0.json").read_text())
    assert not list(Draft7Validator(schema).iter_errors(log)) and log["runs"][0]["results"] == []


# ftr rules --------------------------------------------------------------------------------------------------


def test_rules_table_and_docs():
    table = CliRunner().invoke(main, ["rules"])
    assert table.exit_code == 0
    assert any(line.startswith("FTR101  warning  learning-rate-out-of-range") for line in table.output.splitlines())
    assert "FTR404" in table.output and "[planned]" in table.output
    doc = CliRunner().invoke(main, ["rules", "ftr101"])
    assert doc.exit_code == 0 and doc.output.startswith("# FTR101: learning-rate-out-of-range")
    assert (ROOT / "docs" / "rules" / "FTR101.md").read_text().rstrip() == doc.output.rstrip()
    assert CliRunner().invoke(main, ["rules", "FTR999"]).exit_code == 2
    data = json.loads(CliRunner().invoke(main, ["rules", "--format", "json"]).output)
    assert {"code": "FTR102", "severity": "warning"}.items() <= next(r for r in data if r["code"] == "FTR102").items()


def test_only_recipes_skips_other_yaml(tmp_path):
    case(tmp_path, train={"lr": 1.0e-5})
    (tmp_path / "workflow.yaml").write_text("on: push\n")
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "p.yaml").write_text("ftr: 1\nstage: sft\n")
    result = lint("--only-recipes", "recipe.yaml", "workflow.yaml", "presets/p.yaml")
    assert codes(result) == ["FTR101"] and "1 of 1 file" in result.output
    assert "FTR001" in codes(lint("workflow.yaml"))


def test_pre_commit_hook_definition():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "ftr-lint")
    assert hook["language"] == "python" and hook["entry"].startswith("ftr lint") and hook["types_or"] == ["yaml"]


def test_native_files_get_catalogue_findings_and_rules(tmp_path):
    """An Axolotl file: unknown keys (which Axolotl drops silently) with did-you-mean, quoted numbers,
    deprecations, unknown dataset keys, and the best-practice rules at the native keys."""
    from click.testing import CliRunner

    from ft_recipes.cli.main import main

    path = tmp_path / "axolotl.yaml"
    path.write_text("base_model: NousResearch/Meta-Llama-3-8B-Instruct\nadapter: lora\nlora_r: 256\n"
                    "lora_alhpa: 16\nlora_dropout: 0.8\nlearning_rate: 1e-5\nmicro_batch_size: \"2\"\n"
                    "datasets:\n  - path: data.jsonl\n    typ: chat_template\nflash_attention: true\n")
    (tmp_path / "data.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    result = CliRunner().invoke(main, ["lint", str(path), "--format", "json"])
    assert result.exit_code == 1
    import json

    found = {(f["code"], f["line"]) for f in json.loads(result.output)["findings"]} \
        if isinstance(json.loads(result.output), dict) else {(f["code"], f["line"]) for f in json.loads(result.output)}
    for expected in [("FTR001", 4), ("FTR002", 7), ("FTR001", 10), ("FTR006", 11), ("FTR102", 3), ("FTR104", 5),
                     ("FTR101", 6)]:
        assert expected in found, (expected, sorted(found))
    bad = CliRunner().invoke(main, ["lint", str(path), "--backend-version", "axolotl=9.9"])
    assert bad.exit_code == 2 and "available" in bad.output


def test_llamafactory_file_enum_and_unknown_key(tmp_path):
    from click.testing import CliRunner

    from ft_recipes.cli.main import main

    path = tmp_path / "lf.yaml"
    path.write_text("model_name_or_path: Qwen/Qwen2.5-7B-Instruct\nstage: sft\nfinetuning_type: qlora\n"
                    "do_train: true\nlora_rnak: 8\nlearning_rate: 1.0e-4\ntemplate: qwen\nflash_attn: flash_attention_2\n")  # noqa: E501
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 1
    assert "lf.yaml:3:18: FTR002" in result.output and "did you mean lora?" in result.output
    assert "lf.yaml:5:1: FTR001" in result.output and "did you mean lora_rank?" in result.output
    assert "lf.yaml:8:13: FTR002" in result.output


def test_newest_axolotl_catalogue(tmp_path):
    """0.21.0 removed the FSDP1 `fsdp:` list: the 0.21 catalogue flags it, the 0.19 one does not."""
    from click.testing import CliRunner

    from ft_recipes.cli.main import main

    path = tmp_path / "axolotl.yaml"
    path.write_text("base_model: org/m\nfsdp: [full_shard]\nlearning_rate: 1.0e-4\n"
                    "datasets: [{path: d.jsonl, type: chat_template}]\n")
    new = CliRunner().invoke(main, ["lint", str(path), "--select", "FTR001,FTR006", "--backend-version",
                                    "axolotl=0.21.0"])
    old = CliRunner().invoke(main, ["lint", str(path), "--select", "FTR001,FTR006", "--backend-version",
                                    "axolotl=0.19.0"])
    assert "axolotl.yaml:2:1: FTR006 [error] 'fsdp' was removed in axolotl 0.21.0" in new.output
    assert "ftr upgrade" in new.output
    assert "FTR001" not in old.output and "FTR006 [error]" not in old.output  # 0.19: fsdp is deprecated
