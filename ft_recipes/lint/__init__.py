"""ftr lint: best-practice rules on the normalised recipe.

Public API::

    from ft_recipes.lint import Options, lint_paths, lint_recipe
    from ft_recipes.recipe.loaded import load_recipe
    findings = lint_recipe(load_recipe("recipe.yaml"))
    findings = lint_paths(["recipes/"], Options(select=("FTR1",), strict=True))
"""

from __future__ import annotations

from ft_recipes.lint.engine import lint_file, lint_paths, lint_recipe
from ft_recipes.lint.options import Options

__all__ = ["Options", "lint_file", "lint_paths", "lint_recipe"]
