"""Project settings from the nearest pyproject.toml ([tool.ftr])."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def _settings_at(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        import tomllib  # only where a pyproject.toml is found
    except ImportError:  # pragma: no cover  (Python < 3.11)
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    settings = data.get("tool", {}).get("ftr", {})
    base = path.parent
    for key in ("preset-paths",):
        if key in settings:
            settings[key] = [str(base / p) for p in settings[key]]
    if "lint" in settings and "rule-packs" in settings["lint"]:
        settings["lint"]["rule-packs"] = [str(base / p) for p in settings["lint"]["rule-packs"]]
    return settings


def project_settings(start: Path | None = None) -> dict:
    """The [tool.ftr] table of the nearest pyproject.toml, with paths made absolute."""
    return _settings_at(find_pyproject(start))
