"""Shared test paths (a plain module: conftest files must not be imported by name)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "recipes" / "examples").glob("*.yaml"))
PRESETS = sorted((ROOT / "recipes" / "presets").glob("*.yaml"))
