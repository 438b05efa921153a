"""Environments install their pins with uv when it is there, with pip's own package sources, and pip otherwise."""

import subprocess
import sys
from pathlib import Path

from ft_recipes import envs


def test_uv_gets_pips_sources(monkeypatch):
    monkeypatch.delenv("FTR_NO_UV", raising=False)
    monkeypatch.setattr(envs.shutil, "which", lambda name: "/opt/bin/uv" if name == "uv" else None)
    argv = envs._uv(Path(sys.executable))
    assert argv[:5] == ["/opt/bin/uv", "pip", "install", "--no-deps", "--python"]
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in config.splitlines():
        if line.partition("=")[0].endswith(".find-links"):
            for item in line.partition("=")[2].strip("'\" ").split():
                assert ["--find-links", item] == argv[argv.index(item) - 1:argv.index(item) + 1]


def test_pip_without_uv_or_when_told(monkeypatch):
    monkeypatch.setenv("FTR_NO_UV", "1")
    assert envs._uv(Path(sys.executable)) is None
    assert envs._pip(Path("/env/bin/python"))[:4] == ["/env/bin/python", "-m", "pip", "install"]
