"""The user corpus's Axolotl configs, upgraded by ftr upgrade, judged by the target version's own validator
(validate_helper.py, run from each config's run directory as scripts/realworld_verdicts.py does): how many it
accepts (verdict "ok": accepted, nothing silently dropped) before and after. Figures: docs/commands/upgrade.md."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from ft_recipes.upgrade import upgrade_file

ROOT = Path(__file__).resolve().parent.parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("realworld_verdicts", ROOT / "scripts" / "realworld_verdicts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _verdicts(script, python: str, work: Path, files: list[str]) -> dict[str, str]:
    dirs = script.run_dirs("axolotl")
    records = script._helper(python, "axolotl", work, files, dirs)
    script._runtime_check(python, script.DS_CHECK, work, records, dirs)
    script._renamed_not_dropped(python, records)
    return {path: script.classify(record) for path, record in records.items()}


def _accepted(verdicts: dict[str, str]) -> int:
    return sum(v == "ok" for v in verdicts.values())


@pytest.mark.parametrize("version,fixture", [("0.19.0", "ax_python"), ("0.21.0", "ax21_python")])
# --drop repeats the same validator runs (about 3 minutes each on 2 cores): slow, run with `pytest -m slow`.
@pytest.mark.parametrize("drop", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_upgraded_user_configs_are_accepted_by_the_target_validator(version, fixture, drop, request, tmp_path):
    python = str(request.getfixturevalue(fixture))
    script = _script()
    files = script.corpus_files("axolotl", "users")
    work = tmp_path / "axolotl"
    shutil.copytree(script.corpus_dir("axolotl", "users"), work)
    before = _verdicts(script, python, work, files)
    for name in files:
        result = upgrade_file(work / name, "axolotl", version, drop)
        (work / name).write_text(result.new_text, encoding="utf-8")
    after = _verdicts(script, python, work, files)
    print(f"axolotl {version} drop={drop}: accepted before {_accepted(before)}/{len(files)}, "
          f"after {_accepted(after)}/{len(files)}")
    for name in files:
        print(f"  {name}: {before[name]} -> {after[name]}")
    assert not [n for n in files if before[n] == "ok" and after[n] != "ok"]  # an upgrade never breaks a file
    assert _accepted(after) >= _accepted(before)
