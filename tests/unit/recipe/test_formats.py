"""The recipe format version (ftr: N) and its migrations: `ftr upgrade RECIPE`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ft_recipes.cli.main import main
from ft_recipes.recipe.formats import FORMAT, Migration, Remove, Rename, migrate_text

pytest.importorskip("ruamel.yaml")

RECIPE = """ftr: 1
# the team's SFT recipe
extends: [lora-sft]
train:
  lr: 2.0e-4   # tuned on the pilot
  old_flag: false
  epochs: 3
"""
# A format 2 as a later ftr might declare it: a rename across sections and a field with no successor.
FORMAT_2 = (Migration(2, (Rename("train.lr", "train.learning_rate"), Remove("train.old_flag", "gone in 2", False)),
                      "ft-recipes 9.9 release notes"),)


def test_the_schema_takes_its_format_version_from_the_one_declaration():
    from ft_recipes.recipe.fields import recipe_schema

    assert recipe_schema(("x",))["properties"]["ftr"]["const"] == FORMAT


def test_a_recipe_of_the_current_format_has_nothing_to_upgrade(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    result = CliRunner().invoke(main, ["upgrade", str(path), "--check"])
    assert result.exit_code == 0 and "nothing to upgrade" in result.output
    assert not migrate_text(RECIPE).changed


def test_a_migration_renames_and_removes_keeping_comments_and_sets_the_version():
    result = migrate_text(RECIPE, "r.yaml", FORMAT_2)
    want = RECIPE.replace("ftr: 1", "ftr: 2").replace("  lr: 2.0e-4   #", "  learning_rate: 2.0e-4 #")
    assert result.new_text == want.replace("  old_flag: false\n", "")  # the comment stays, where the key allows
    assert [c.text for c in result.changes] == ["train.lr -> train.learning_rate", "train.old_flag: False removed "
                                                "(gone in 2)", "ftr: 2"]
    assert not result.findings


def test_a_value_a_migration_cannot_carry_is_an_error_not_a_drop():
    result = migrate_text(RECIPE.replace("old_flag: false", "old_flag: true"), "r.yaml", FORMAT_2)
    [finding] = result.findings
    assert finding.severity == "error" and finding.line == 6 and "no successor" in finding.message
    assert "old_flag: true" in result.new_text


def test_a_recipe_without_ftr_is_format_1_and_a_newer_format_is_refused():
    assert migrate_text("model: {base: m}\n", "r.yaml", FORMAT_2).new_text == "ftr: 2\nmodel: {base: m}\n"
    [finding] = migrate_text("ftr: 3\n", "r.yaml", FORMAT_2).findings
    assert "newer than this ftr's (2)" in finding.message


def test_a_native_config_needs_a_target(tmp_path):
    path = tmp_path / "ax.yml"
    path.write_text("base_model: m\nflash_attention: true\n")
    result = CliRunner().invoke(main, ["upgrade", str(path)])
    assert result.exit_code == 2 and "give --to BACKEND=VERSION" in result.output


def test_a_recipe_with_a_duplicate_key_is_a_finding_not_a_crash():
    [finding] = migrate_text("ftr: 1\nmodel: {base: m}\nmodel: {base: n}\n", "r.yaml", FORMAT_2).findings
    assert (finding.code, finding.line, finding.severity) == ("FTR000", 3, "error")
