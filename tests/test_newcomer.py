"""A newcomer's and a team's first week (issue 32): install lines, FTR305 on every install, lint/report outputs,
`ftr init` choosing the template and format."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes import __version__
from ft_recipes.cli import main

from paths import ROOT


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def ftr(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def check_install():
    spec = importlib.util.spec_from_file_location("check_install", ROOT / "scripts" / "check_install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Install and CI -----------------------------------------------------------------------------------------------


def test_documented_install_lines_are_the_ones_ci_runs():
    docs = check_install().documented()  # raises when docs/ci.md and docs/install.md disagree
    assert docs["git"] == f'pip install "ft-recipes @ git+https://github.com/ft-recipes/ft-recipes@v{__version__}"'
    assert f"pip install dist/ft_recipes-{__version__}-py3-none-any.whl" in docs["wheel"]
    assert "python -m build" in docs["wheel"]


def test_pre_commit_example_pins_the_release_tag_of_this_version():
    config = yaml.safe_load(check_install().documented()["pre-commit"])
    repo = config["repos"][0]
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert repo["rev"] == f"v{__version__}"
    assert {h["id"] for h in repo["hooks"]} <= {h["id"] for h in hooks}
    assert f"git tag -a v{__version__}" in (ROOT / "docs" / "install.md").read_text()


def test_no_doc_installs_from_the_package_index():
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    offenders = [p.name for p in pages if re.search(r"pip install ft-recipes\b(?![\[@])", p.read_text())]
    assert offenders == []


def test_ci_runs_the_install_check():
    assert "python3 scripts/check_install.py" in (ROOT / ".ci" / "run").read_text()


def test_jinja2_is_a_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.lower().startswith("jinja2") for dep in project["dependencies"])
