"""Preset libraries: an installed package exposing the ft_recipes.recipe.presets entry point group (a fake
distribution on sys.path), [tool.ftr] preset-paths, and `ftr presets` / `ftr init`."""

import sys

import pytest
from click.testing import CliRunner

from ft_recipes.cli.main import main
from ft_recipes.recipe.loaded import load_recipe


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """A distribution `acme-presets` whose entry point `acme` points at a package directory of presets."""
    site = tmp_path / "site"
    pkg = site / "acme_presets"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "house-lora.yaml").write_text("# ACME's house LoRA settings\nftr: 1\nextends: [lora-sft]\n"
                                         "train: {lr: 1.5e-4}\n")
    dist = site / "acme_presets-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-presets\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ft_recipes.recipe.presets]\nacme = acme_presets\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("acme_presets", None)


def test_entry_point_library(fake_distribution, write):
    write("d.jsonl", "{}\n")
    recipe = write("r.yaml", "ftr: 1\nextends: [acme:house-lora]\nmodel: {base: org/m}\n"
                             "data: {train: [{path: d.jsonl, format: alpaca}]}\n")
    loaded = load_recipe(recipe)
    assert loaded.recipe.train.lr == 1.5e-4 and loaded.recipe.method.type == "lora"
    assert loaded.resolved.source(("train", "lr")).file.endswith("house-lora.yaml")
    listed = CliRunner().invoke(main, ["presets", "list"]).output
    assert "acme:house-lora" in listed and "ACME's house LoRA settings" in listed


def test_pyproject_preset_paths(tmp_path, monkeypatch, write):
    from ft_recipes.core.project import _settings_at

    write("pyproject.toml", '[tool.ftr]\npreset-paths = ["team-presets"]\n')
    write("team-presets/fast.yaml", "ftr: 1\ntrain: {epochs: 1}\n")
    write("d.jsonl", "{}\n")
    monkeypatch.chdir(tmp_path)
    _settings_at.cache_clear()
    recipe = write("r.yaml", "ftr: 1\nextends: [fast]\nmodel: {base: org/m}\n"
                             "data: {train: [{path: d.jsonl, format: alpaca}]}\n")
    assert load_recipe(recipe).recipe.train.epochs == 1


def test_presets_show_and_init(tmp_path):
    runner = CliRunner()
    assert "qlora" in runner.invoke(main, ["presets", "show", "qlora-sft"]).output
    assert runner.invoke(main, ["presets", "show", "nope"]).exit_code == 1
    out = tmp_path / "recipe.yaml"
    result = runner.invoke(main, ["init", "--preset", "qlora-sft", "--model", "org/m", "--data", "d.jsonl", "-o",
        str(out)])
    assert result.exit_code == 0
    text = out.read_text()
    assert text.startswith("# yaml-language-server: $schema=") and "extends: [qlora-sft]" in text
    assert runner.invoke(main, ["init", "-o", str(out)]).exit_code == 2  # never overwrites
    (tmp_path / "d.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    lint = runner.invoke(main, ["lint", str(out)])
    assert lint.exit_code == 0, lint.output  # a starter recipe is lint-clean
