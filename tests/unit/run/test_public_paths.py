"""The public paths that outlive the package's layout (issue 33): what users' files and job scripts already name."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner


def _module(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", name, *args], capture_output=True, text=True, timeout=120)


def test_job_scripts_written_before_the_move_still_start_the_node_launcher():
    """Job scripts already on clusters run `python -m ft_recipes.launchers.node`: the same program as the new path."""
    old, new = _module("ft_recipes.launchers.node", "--help"), _module("ft_recipes.run.launchers.node", "--help")
    assert old.returncode == new.returncode == 0, old.stderr
    assert old.stdout == new.stdout and old.stdout.startswith("usage:")
    old, new = _module("ft_recipes.launchers.node", "--no-such-option"), _module("ft_recipes.run.launchers.node",
                                                                                   "--no-such-option")
    assert old.returncode == new.returncode != 0


def test_the_axolotl_plugin_path_written_into_users_configs_imports():
    from ft_recipes.integrations.axolotl import FtrPlugin

    assert callable(FtrPlugin)


def test_the_documented_lint_api_and_entry_point():
    from ft_recipes.cli import main
    from ft_recipes.lint import Options, lint_file, lint_paths, lint_recipe  # noqa: F401 - the documented names

    assert CliRunner().invoke(main, ["--help"]).exit_code == 0


def test_the_docs_generators_run_as_documented():
    for module in ("ft_recipes.lint.docs", "ft_recipes.backends.docs", "ft_recipes.cli.schema_gen"):
        result = _module(module, "--check")  # the committed files are current: exit 0
        assert result.returncode == 0, (module, result.stdout[-300:], result.stderr[-500:])
