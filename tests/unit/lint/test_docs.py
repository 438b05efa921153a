"""Every command has a docs page and help text."""

import pytest
from click.testing import CliRunner
from paths import ROOT

from ft_recipes.cli.main import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_docs_and_help(command):
    page = ROOT / "docs" / "commands" / f"{command}.md"
    assert page.is_file(), f"docs/commands/{command}.md is missing"
    assert f"ftr {command}" in page.read_text() or command in ("init", "presets")
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and len(result.output) > 80
