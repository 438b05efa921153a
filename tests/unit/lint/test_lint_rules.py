"""Rule cases as data: tests/data/lint_cases/*.yaml, each case merged over _base.yaml and linted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ft_recipes.lint import Options, lint_file, lint_recipe
from ft_recipes.lint.docs import SECTIONS, markdown, stale
from ft_recipes.lint.registry import all_rules
from ft_recipes.recipe.loaded import load_recipe
from ft_recipes.recipe.resolve import deep_merge

CASES_DIR = Path(__file__).resolve().parents[2] / "data" / "lint_cases"
BASE = yaml.safe_load((CASES_DIR / "_base.yaml").read_text())
ROWS = {
    "alpaca": [{"instruction": f"say {w}", "input": "", "output": w} for w in ("tea", "rivers", "stars")],
    "preference": [{"instruction": f"explain {w}", "chosen": "good", "rejected": "bad"} for w in ("tea", "stars")],
    "sharegpt": [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}],
}


def _cases():
    for path in sorted(CASES_DIR.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        for case in yaml.safe_load(path.read_text())["cases"]:
            yield pytest.param(case, id=f"{path.stem}: {case['name']}")


@pytest.fixture(autouse=True)
def _no_hf_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.chdir(tmp_path)


def write_case(case: dict, directory: Path) -> Path:
    rows = case.get("rows", "alpaca")
    rows = ROWS[rows] if isinstance(rows, str) else rows
    (directory / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name, text in (case.get("files") or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    recipe = deep_merge(BASE, case.get("recipe") or {})
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("case", _cases())
def test_rule_case(case, tmp_path):
    findings = lint_file(write_case(case, tmp_path), Options())
    got = sorted(f"{f.code}:{f.severity}" for f in findings)
    assert got == sorted(case["expect"]), "\n".join(f.text() for f in findings)


def test_every_checked_rule_has_a_firing_and_a_clean_case():
    fired, files = set(), {p.stem for p in CASES_DIR.glob("FTR*.yaml")}
    for path in CASES_DIR.glob("FTR*.yaml"):
        cases = yaml.safe_load(path.read_text())["cases"]
        assert any(not c["expect"] for c in cases), f"{path.name} has no clean case"
        fired |= {e.split(":")[0] for c in cases for e in c["expect"]}
    for code, cls in all_rules().items():
        if cls.checked_here():
            assert code in files and code in fired, f"{code} has no case file or no firing case"


def test_finding_in_preset_points_into_the_preset(tmp_path):
    (tmp_path / "preset.yaml").write_text("train:\n  lr: 1.0e-5\n", encoding="utf-8")
    path = write_case({"recipe": {"extends": ["preset.yaml"], "train": {"lr": None}}}, tmp_path)
    findings = [f for f in lint_file(path, Options()) if f.code == "FTR101"]
    assert [(Path(f.file).name, f.line, f.col, f.key) for f in findings] == [("preset.yaml", 2, 7, "train.lr")]


def test_lint_recipe_api_uses_recipe_ignore(tmp_path):
    path = write_case({"recipe": {"train": {"lr": 1.0e-5}, "lint": {"ignore": ["FTR1"]}}}, tmp_path)
    assert lint_recipe(load_recipe(path), Options()) == []
    path = write_case({"recipe": {"train": {"lr": 1.0e-5}}}, tmp_path)
    assert [f.code for f in lint_recipe(load_recipe(path))] == ["FTR101"]


def test_message_names_value_and_range(tmp_path):
    path = write_case({"recipe": {"train": {"lr": 1.0e-5}}}, tmp_path)
    (finding,) = lint_file(path, Options())
    assert "1e-5" in finding.message and "5e-5 to 3e-4" in finding.message and finding.hint
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith("lr:"))
    assert (finding.file, finding.line, finding.key) == (str(path), line, "train.lr")


def test_examples_have_no_error_findings():
    root = Path(__file__).resolve().parents[3]
    for path in sorted((root / "recipes" / "examples").glob("*.yaml")):
        errors = [f.text() for f in lint_file(path, Options()) if f.severity == "error"]
        assert not errors, errors


@pytest.mark.parametrize("code", list(all_rules()))
def test_rule_docs_complete(code):
    cls = all_rules()[code]
    assert cls.code == code and cls.name and cls.summary and cls.severity in ("error", "warning", "info")
    page = markdown(cls)
    if cls.status == "stable":
        for section in SECTIONS:
            assert f"## {section}\n" in page, f"{code}: missing section {section!r}"


def test_rule_docs_are_fresh():
    assert stale() == [], "run `python -m ft_recipes.lint.docs` and commit docs/rules/"


def test_pack_messages_exist_for_rules():
    from ft_recipes.lint.pack import default_pack

    rules = default_pack()["rules"]
    for code, section in rules.items():
        assert code in all_rules(), code
        for kind, spec in section.get("messages", {}).items():
            assert spec.get("text") and spec.get("hint"), f"{code}.{kind}"
            assert spec.get("severity", "error") in ("error", "warning", "info")
