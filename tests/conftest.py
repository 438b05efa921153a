import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # for `from paths import ...`
# Test modules share helpers by module name (`from test_hardening import recipe`) across the folders that mirror the
# package: every folder holding test modules is importable, whichever of them pytest collects first.
for _folder in sorted({p.parent for p in TESTS.rglob("test_*.py")} - {TESTS}):
    sys.path.append(str(_folder))


@pytest.fixture
def write(tmp_path):
    """write("name.yaml", text) -> path inside tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(autouse=True)
def _isolate_presets(monkeypatch):
    monkeypatch.delenv("FTR_PRESET_PATH", raising=False)
