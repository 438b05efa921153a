"""The lint gates in front of compile and run: one policy for `ftr compile`, `ftr run` (local and submitted) and
pipelines.

- ``check_data``: the data checks (FTR004, FTR204) as errors before anything is compiled: a backend must never
  receive a missing dataset, nor rows rewritten with empty text.
- ``lint_gate``: every finding printed; errors stop a run unless ``--no-lint``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.lint.engine import lint_recipe, run_rules, stage_findings
from ft_recipes.lint.options import Options, from_project

DATA_RULES = ("FTR004", "FTR204")  # missing files; unreadable rows or rows that do not fit the declared format


def check_data(loaded) -> None:
    """FtrError (exit 1) with the data findings that are errors."""
    errors = [f for f in run_rules(loaded.recipe, Options(select=DATA_RULES)) if f.severity == "error"]
    if errors:
        raise FtrError(f"{loaded.recipe.source_file}: the data cannot be compiled ({len(errors)} problem(s))",
                       sorted(errors))


def lint_gate(findings: list[Finding], no_lint: bool, what: str = "") -> None:
    """Print every finding; FtrError (exit 1) when one is an error and ``no_lint`` is not set."""
    for finding in findings:
        print(finding.text(), file=sys.stderr)
    errors = [f for f in findings if f.severity == "error"]
    if errors and not no_lint:
        raise FtrError(f"lint found {len(errors)} error(s){what}; fix them or pass --no-lint", exit_code=1)


def gate_recipe(loaded, no_lint: bool) -> None:
    lint_gate(lint_recipe(loaded), no_lint)


def gate_pipeline(pipeline, no_lint: bool) -> None:
    lint_gate(sorted(set(stage_findings(pipeline, from_project(Path(pipeline.file).parent)))), no_lint,
        " in the stages")


def dry_gate(loaded, no_lint: bool, dry_run: bool) -> list:
    """The lint gate; a dry run goes on past its errors (printed) and returns the refusal to report."""
    try:
        gate_recipe(loaded, no_lint)
    except FtrError as exc:
        if not dry_run:
            raise
        return [exc]
    return []
