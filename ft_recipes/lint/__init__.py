"""ftr lint: best-practice rules on the normalised recipe.

Public API::

    from ft_recipes.lint import Options, lint_paths, lint_recipe
    findings = lint_recipe(pipeline.load_recipe("recipe.yaml"))
    findings = lint_paths(["recipes/"], Options(select=("FTR1",), strict=True))
"""

from __future__ import annotations

from .engine import lint_file, lint_paths, lint_recipe
from .options import Options

__all__ = ["Options", "lint_file", "lint_paths", "lint_recipe"]
