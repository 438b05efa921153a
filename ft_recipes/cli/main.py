"""The ``ftr`` command line. Commands live in ``ft_recipes.cli.commands.<name>`` and load on demand,
so ``ftr --version`` and ``ftr lint`` start without importing anything heavy."""

from __future__ import annotations

import importlib
import importlib.util

import click

from ft_recipes import __version__

COMMANDS = {
    "compile": "ft_recipes.cli.commands.compile:compile_cmd",
    "validate": "ft_recipes.cli.commands.compile:validate_cmd",
    "schema": "ft_recipes.cli.commands.compile:schema_cmd",
    "lint": "ft_recipes.cli.commands.lint:lint_cmd",
    "rules": "ft_recipes.cli.commands.lint:rules_cmd",
    "backend": "ft_recipes.cli.commands.backend:backend",
    "presets": "ft_recipes.cli.commands.presets:presets_cmd",
    "init": "ft_recipes.cli.commands.presets:init_cmd",
    "run": "ft_recipes.cli.commands.run:run_cmd",
    "merge": "ft_recipes.cli.commands.run:merge_cmd",
    "status": "ft_recipes.cli.commands.status:status_cmd",
    "import": "ft_recipes.cli.commands.convert:import_cmd",
    "explain": "ft_recipes.cli.commands.explain:explain_cmd",
    "report": "ft_recipes.cli.commands.report:report_cmd",
    "tokens": "ft_recipes.cli.commands.tokens:tokens_cmd",
    "data": "ft_recipes.cli.commands.data:data_cmd",
    "convert": "ft_recipes.cli.commands.convert:convert_cmd",
    "eval": "ft_recipes.cli.commands.eval:eval_cmd",
    "upgrade": "ft_recipes.cli.commands.upgrade:upgrade_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    def _available(self, name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="ftr")
def main() -> None:
    """ft-recipes: one portable fine-tuning recipe for LLaMA-Factory and Axolotl.

    \b
    ftr lint recipe.yaml                          best-practice findings (file:line:col)
    ftr compile recipe.yaml --backend axolotl -o build/
    ftr run recipe.yaml --backend llamafactory    compile and launch in the backend's environment

    Exit codes: 0 success, 1 invalid input or error-level findings, 2 usage or I/O error.
    Docs: docs/commands/*.md and docs/rules/*.md, or `ftr rules CODE`.
    """
