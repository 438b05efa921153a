"""Axolotl plugin: runs the ftr rules when Axolotl loads a config.

    plugins:
      - ft_recipes.integrations.axolotl.FtrPlugin
    ftr_fail_on_error: true      # optional: stop before training on error-level findings
    ftr_ignore: [FTR106]         # optional

ft-recipes must be installed in Axolotl's environment (`pip install ft-recipes`; its dependencies are light).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

try:
    from axolotl.integrations.base import BasePlugin
except ImportError:  # imported outside Axolotl (docs, tests): the plugin is still usable as a plain object
    BasePlugin = object


def lint_config(cfg: dict) -> list:
    """ftr findings for an Axolotl config mapping (its file, when Axolotl knows it, for positions)."""
    import yaml

    source = cfg.get("axolotl_config_path")
    if source and Path(str(source)).is_file():
        return _lint_file(str(source), cfg)
    plain = {k: v for k, v in dict(cfg).items() if not k.startswith("ftr_")}
    with tempfile.TemporaryDirectory(prefix="ftr-axolotl-config-") as tmp:
        path = os.path.join(tmp, "axolotl.yaml")
        with open(path, "w", encoding="utf-8") as out:
            yaml.safe_dump(plain, out, sort_keys=False)
        return _lint_file(path, cfg)


def _lint_file(path: str, cfg: dict) -> list:
    from ft_recipes.core.findings import FtrError
    from ft_recipes.lint import lint_recipe
    from ft_recipes.recipe.loaded import load_any

    try:
        loaded = load_any(path, "axolotl")
    except FtrError as exc:
        return list(exc.findings)
    ignore = tuple(cfg.get("ftr_ignore") or ())
    return [f for f in lint_recipe(loaded) if not f.code.startswith(ignore or ("-",))]


class FtrPlugin(BasePlugin):
    """Prints ftr findings at config load; with ``ftr_fail_on_error: true`` errors stop the run."""

    def get_input_args(self) -> str:
        return "ft_recipes.integrations.axolotl_args.FtrArgs"

    def register(self, cfg: dict) -> None:
        findings = lint_config(cfg)
        for finding in findings:
            print(f"ftr: {finding.text()}", file=sys.stderr)
        errors = [f for f in findings if f.severity == "error"]
        if errors and cfg.get("ftr_fail_on_error"):
            raise ValueError(f"ftr: {len(errors)} error-level finding(s); fix them or set ftr_fail_on_error: false")
