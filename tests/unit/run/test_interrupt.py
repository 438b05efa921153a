"""Ctrl-C in any command exits 130 (128 + SIGINT) with one line, never 1 (invalid input) or a traceback."""

from __future__ import annotations

import click
import pytest

from ft_recipes.cli.commands import guard


def test_an_interrupted_command_exits_130(capsys):
    @guard
    def probe():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exc:
        probe()
    assert exc.value.code == 130 and capsys.readouterr().err == "ftr: interrupted\n"


def test_click_exits_pass_through():
    @guard
    def usage():
        raise click.UsageError("bad")

    with pytest.raises(click.UsageError):
        usage()
