"""The command line: `ftr` and its commands."""

from ft_recipes.cli.main import main

__all__ = ["main"]
