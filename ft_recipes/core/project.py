"""Project settings from the nearest pyproject.toml ([tool.ftr])."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ft_recipes.core.findings import UsageError


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        try:
            if candidate.is_file():
                return candidate
        except PermissionError:  # a folder this user cannot enter (a parent of its working directory): none there
            continue
    return None


@lru_cache(maxsize=None)
def _settings_at(path: Path | None) -> dict:
    """[tool.ftr] of ``path``; a file that cannot be read or parsed, or a setting of the wrong type, is a
    UsageError naming the file (exit 2): a silently ignored configuration is worse than none."""
    if path is None:
        return {}
    try:
        import tomllib  # only where a pyproject.toml is found
    except ImportError:  # pragma: no cover  (Python < 3.11)
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    tool = data.get("tool", {})
    settings = tool.get("ftr", {}) if isinstance(tool, dict) else {}
    _expect(isinstance(settings, dict), path, "[tool.ftr]", "must be a table", settings)
    base = path.parent
    if "preset-paths" in settings:
        settings["preset-paths"] = _paths(settings["preset-paths"], base, path, "[tool.ftr] preset-paths")
    lint = settings.get("lint", {})
    _expect(isinstance(lint, dict), path, "[tool.ftr.lint]", "must be a table", lint)
    if "rule-packs" in lint:
        lint["rule-packs"] = _paths(lint["rule-packs"], base, path, "[tool.ftr.lint] rule-packs")
    return settings


def _expect(ok: bool, path: Path, key: str, what: str, value) -> None:
    if not ok:
        raise UsageError(f"{path}: {key} {what} (got {value!r})")


def _paths(value, base: Path, path: Path, key: str) -> list[str]:
    ok = isinstance(value, list) and all(isinstance(p, str) and p for p in value)
    _expect(ok, path, key, "must be a list of paths (strings)", value)
    return [str(base / p) for p in value]
def project_settings(start: Path | None = None) -> dict:
    """The [tool.ftr] table of the nearest pyproject.toml, with paths made absolute."""
    return _settings_at(find_pyproject(start))
