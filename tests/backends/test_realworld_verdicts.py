"""The committed real-world verdicts (tests/data/realworld/verdicts.json for the frameworks' examples,
tests/data/realworld/users/verdicts.json for the user-repository configs) are what the pinned validators say
today: rerun them over each corpus and compare. Regenerate with `python scripts/realworld_verdicts.py`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _verdicts_script():
    spec = importlib.util.spec_from_file_location("realworld_verdicts", ROOT / "scripts" / "realworld_verdicts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("corpus", ["examples", "users"])
@pytest.mark.parametrize("backend,fixture", [("llamafactory", "lf_python"), ("axolotl", "ax_python")])
def test_committed_verdicts_are_current(backend, fixture, corpus, request):
    python = request.getfixturevalue(fixture)
    script = _verdicts_script()
    committed = json.loads(script.VERDICT_FILES[corpus].read_text(encoding="utf-8"))[backend]
    fresh = script.verdicts_for(backend, str(python), corpus)
    assert {p: e["verdict"] for p, e in fresh["files"].items()} == \
        {p: e["verdict"] for p, e in committed["files"].items()}
