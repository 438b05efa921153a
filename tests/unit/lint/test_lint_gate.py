"""The lint gates (lint/gate.py) and pipeline lint (lint/engine.py): one policy for compile, run and pipelines."""

from __future__ import annotations

import pytest

from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.lint.engine import lint_pipeline
from ft_recipes.lint.gate import check_data, lint_gate
from ft_recipes.recipe.loaded import load_recipe

RECIPE = "ftr: 1\nmodel: {base: Qwen/Qwen2.5-0.5B, template: chatml, pad_token: eos}\n"


def test_lint_gate_prints_every_finding_and_stops_on_an_error_unless_told(capsys):
    warning = Finding("r.yaml", 1, 1, "FTR107", "warning", "small batch")
    error = Finding("r.yaml", 2, 1, "FTR101", "error", "lr too low")
    lint_gate([warning], no_lint=False)
    with pytest.raises(FtrError, match="lint found 1 error"):
        lint_gate([warning, error], no_lint=False)
    lint_gate([error], no_lint=True)
    assert capsys.readouterr().err.count("FTR101") == 2


def test_check_data_refuses_a_missing_dataset(write):
    recipe = write("r.yaml", RECIPE + "data: {train: [{path: missing.jsonl, format: alpaca}]}\n")
    with pytest.raises(FtrError) as exc:
        check_data(load_recipe(recipe))
    assert [f.code for f in exc.value.findings] == ["FTR004"]


def test_lint_pipeline_reads_the_project_options_when_given_none(write):
    write("d.jsonl", '{"instruction": "a", "output": "b"}\n')
    path = write("p.yaml", RECIPE + "data: {train: [{path: d.jsonl, format: alpaca}]}\nstages:\n  - {name: sft}\n")
    findings = lint_pipeline(path)
    assert findings and all("stage sft" in f.message for f in findings)
