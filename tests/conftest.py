import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `from paths import ...`


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
