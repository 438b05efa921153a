"""extends: built-in presets, relative paths, deep merge, null deletes, cycles, missing targets,
preset libraries and provenance."""

import pytest

from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.loaded import load_recipe, resolve_file
from ft_recipes.recipe.resolve import deep_merge

TAIL = """\
model: {base: org/model, template: chatml, pad_token: eos}
data:
  train:
    - {path: d.jsonl, format: alpaca}
"""


def test_deep_merge_rules():
    base = {"a": {"x": 1, "y": 2}, "l": [1, 2], "k": 1}
    over = {"a": {"y": 3}, "l": [9], "k": None}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": 3}, "l": [9]}


def test_builtin_preset_and_override(write):
    write("d.jsonl", "{}\n")
    path = write("r.yaml", "ftr: 1\nextends: [qlora-sft]\n" + TAIL + "train: {lr: 1.0e-4}\n")
    recipe = load_recipe(path).recipe
    assert recipe.method.type == "qlora"            # from qlora-sft
    assert recipe.method.lora.r == 16               # from lora-sft, two levels down
    assert recipe.train.optimizer == "paged_adamw_8bit"
    assert recipe.train.lr == 1.0e-4                # the recipe wins


def test_relative_extends_and_provenance(write):
    write("team/base.yaml", "ftr: 1\ntrain:\n  lr: 3.0e-4\n  epochs: 2\n")
    write("d.jsonl", "{}\n")
    path = write("r.yaml", "ftr: 1\nextends: team/base.yaml\n" + TAIL + "train: {epochs: 1}\n")
    resolved = resolve_file(path)
    assert resolved.data["train"] == {"lr": 3.0e-4, "epochs": 1}
    lr_src = resolved.source(("train", "lr"))
    assert lr_src.file.endswith("base.yaml") and lr_src.line == 3
    assert resolved.source(("train", "epochs")).file == str(path)


def test_null_deletes(write):
    write("base.yaml", "ftr: 1\ndata:\n  val: {split: 0.1}\n")
    write("d.jsonl", "{}\n")
    path = write("r.yaml", "ftr: 1\nextends: [./base.yaml]\n" + TAIL + "  val: null\n")
    assert load_recipe(path).recipe.data.has_validation is False


def test_cycle_is_an_error(write):
    write("a.yaml", "extends: [./b.yaml]\n")
    write("b.yaml", "extends: [./a.yaml]\n")
    with pytest.raises(FtrError) as info:
        resolve_file(write("r.yaml", "extends: [./a.yaml]\n"))
    finding = info.value.findings[0]
    assert finding.code == "FTR004" and "cycle" in finding.message


def test_missing_target(write):
    with pytest.raises(FtrError) as info:
        resolve_file(write("r.yaml", "ftr: 1\nextends: [./nope.yaml]\n"))
    finding = info.value.findings[0]
    assert finding.code == "FTR004" and finding.line == 2 and "not found" in finding.message


def test_unknown_preset_lists_known(write):
    with pytest.raises(FtrError) as info:
        resolve_file(write("r.yaml", "extends: [lora-sfft]\n"))
    assert "lora-sft" in info.value.findings[0].message


def test_preset_path_library_and_clash(write, tmp_path, monkeypatch):
    lib = tmp_path / "teamlib"
    write("teamlib/house.yaml", "ftr: 1\ntrain: {lr: 5.0e-5}\n")
    write("teamlib/lora-sft.yaml", "ftr: 1\n")
    monkeypatch.setenv("FTR_PRESET_PATH", str(lib))
    write("d.jsonl", "{}\n")
    recipe = load_recipe(write("r.yaml", "ftr: 1\nextends: [house]\n" + TAIL)).recipe
    assert recipe.train.lr == 5.0e-5
    with pytest.raises(FtrError) as info:
        resolve_file(write("r2.yaml", "extends: [lora-sft]\n"))
    message = info.value.findings[0].message
    assert "teamlib" in message and "builtin" in message
    # library:name picks one
    assert resolve_file(write("r3.yaml", "extends: [builtin:lora-sft]\n")).data["method"]["type"] == "lora"


def test_preset_pinning_an_other_recipe_version(write, tmp_path, monkeypatch):
    write("lib/old.yaml", "ftr: 2\n")
    monkeypatch.setenv("FTR_PRESET_PATH", str(tmp_path / "lib"))
    write("d.jsonl", "{}\n")
    with pytest.raises(FtrError) as info:
        load_recipe(write("r.yaml", "extends: [old]\n" + TAIL))
    finding = info.value.findings[0]
    assert finding.file.endswith("old.yaml") and finding.key == "ftr"
