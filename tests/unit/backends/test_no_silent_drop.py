"""A value the recipe wrote is written for the backend, refused with FTR005, or noted: never dropped with exit 0."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ft_recipes import backends
from ft_recipes.cli.main import main

PREF_ROW = json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"}) + "\n"
SFT_ROW = json.dumps({"instruction": "a", "output": "b"}) + "\n"


def _recipe(write, body: str, row: str = SFT_ROW):
    write("data.jsonl", row)
    return write("recipe.yaml", "ftr: 1\nmodel: {base: Qwen/Qwen2.5-0.5B, template: chatml, pad_token: eos}\n" + body)


def _compile(recipe, backend, tmp_path):
    return CliRunner().invoke(main, ["compile", str(recipe), "-b", backend, "-o", str(tmp_path / "out")])


DPO = "stage: dpo\nmethod: {type: lora}\ndata: {train: [{path: data.jsonl, format: preference}]}\n"
SFT = "stage: sft\ndata: {train: [{path: data.jsonl, format: alpaca}]}\n"


@pytest.mark.parametrize("backend", ["llamafactory", "axolotl"])
def test_simpo_gamma_in_a_dpo_recipe_is_refused(write, tmp_path, backend):
    recipe = _recipe(write, DPO + "preference: {simpo_gamma: 2.0}\n", PREF_ROW)
    result = _compile(recipe, backend, tmp_path)
    assert result.exit_code == 1
    assert "recipe.yaml:6:" in result.output and "FTR005" in result.output
    assert "preference.simpo_gamma only with stage: simpo" in result.output


def test_simpo_gamma_in_a_simpo_recipe_is_written(write, tmp_path):
    recipe = _recipe(write, DPO.replace("dpo", "simpo") + "preference: {simpo_gamma: 2.0}\n", PREF_ROW)
    result = _compile(recipe, "llamafactory", tmp_path)
    assert result.exit_code == 0, result.output
    assert "simpo_gamma: 2.0" in (tmp_path / "out" / "llamafactory.yaml").read_text()


def test_trl_refuses_packing_in_a_dpo_recipe(write, tmp_path):
    body = DPO.replace("format: preference}]}", "format: preference}], packing: true}")
    result = _compile(_recipe(write, body, PREF_ROW), "trl", tmp_path)
    assert result.exit_code == 1 and "data.packing only with a stage other than dpo" in result.output


def test_trl_refuses_an_encoder_size_outside_ptuning(write, tmp_path):
    body = SFT + "method: {type: prefix, prompt: {encoder_hidden_size: 256}}\ntrain: {lr: 1.0e-3}\n"
    result = _compile(_recipe(write, body), "trl", tmp_path)
    assert result.exit_code == 1 and "method.prompt.encoder_hidden_size only with method.type: ptuning" in result.output


def test_a_lora_section_under_full_fine_tuning_is_refused(write, tmp_path):
    body = SFT + "method: {type: full, lora: {r: 8}}\ntrain: {lr: 2.0e-5}\n"
    result = _compile(_recipe(write, body), "llamafactory", tmp_path)
    assert result.exit_code == 1
    assert "method.lora has no effect in this recipe (stage sft, method full)" in result.output


@pytest.mark.parametrize("backend", backends.NAMES)
def test_epochs_under_max_steps_are_noted(write, tmp_path, backend):
    write("preset.yaml", "train: {epochs: 2}\n")
    body = SFT + "extends: [preset.yaml]\ntrain: {max_steps: 10}\n"
    result = _compile(_recipe(write, body), backend, tmp_path)
    assert result.exit_code == 0, result.output
    assert "train.epochs: not written" in result.output and "used only with no train.max_steps" in result.output


def test_every_conditional_row_says_what_its_condition_tests():
    for backend in backends.all_backends():
        for row in backend.keys:
            if row.when is None:
                assert not row.needs and not row.value_only, (backend.name, row.path)
            else:
                assert bool(row.needs) != row.value_only, (backend.name, row.path)
            assert row.unused in ("refuse", "note"), (backend.name, row.path)


def _import(write, text: str):
    write("data.json", "[]")
    native = write("native.yaml", text)
    return CliRunner().invoke(main, ["import", str(native)])


LF_HEAD = "model_name_or_path: Qwen/Qwen2.5-0.5B\ndo_train: true\ndataset: identity\ntemplate: qwen\n"


def test_import_reads_every_section_the_stage_and_method_use(write):
    write("dataset_info.json", json.dumps({"identity": {"file_name": "data.json"}}))
    result = _import(write, LF_HEAD + "stage: sft\nfinetuning_type: lora\nlora_rank: 4\npref_beta: 0.3\n")
    assert result.exit_code == 0, result.output
    assert "r: 4" in result.output and "beta: 0.3" in result.output


def test_import_notes_a_key_its_backend_ignores_for_this_method(write):
    write("dataset_info.json", json.dumps({"identity": {"file_name": "data.json"}}))
    result = _import(write, LF_HEAD + "stage: sft\nfinetuning_type: full\nlora_rank: 4\n")
    assert result.exit_code == 0, result.output
    assert "lora_rank" in result.output and "the backend ignores it" in result.output
    assert "r: 4" not in result.output


def test_an_axolotl_only_dataset_kept_verbatim_is_refused_for_another_backend(write, tmp_path):
    body = SFT + "backends:\n  axolotl:\n    datasets: [{path: tatsu-lab/alpaca, type: alpaca}]\n"
    recipe = _recipe(write, body)
    result = _compile(recipe, "llamafactory", tmp_path)
    assert result.exit_code == 1
    assert "data.train is decided by Axolotl's own datasets" in result.output and "--backend axolotl" in result.output
    assert _compile(recipe, "axolotl", tmp_path).exit_code == 0


def test_importers_read_a_new_row_of_every_stage_that_uses_its_section(write):
    """No importer opens sections by hand: an Axolotl DPO file's dpo_label_smoothing is read (it used to open
    `preference` for simpo only)."""
    write("x.jsonl", "{}\n")
    result = _import(write, "base_model: Qwen/Qwen2.5-0.5B\nrl: dpo\ndpo_label_smoothing: 0.2\n"
                            "datasets: [{path: x.jsonl, type: chat_template.default}]\nadapter: lora\nlora_r: 8\n"
                            "lora_target_linear: true\nmicro_batch_size: 1\nnum_epochs: 1\noutput_dir: ./out\n")
    assert result.exit_code == 0, result.output
    assert "label_smoothing: 0.2" in result.output


def test_an_imported_kto_recipe_compiles_without_a_simpo_value_it_never_wrote(write, tmp_path):
    write("dataset_info.json", json.dumps({"identity": {"file_name": "data.json"}}))
    result = _import(write, LF_HEAD + "stage: kto\nfinetuning_type: lora\n")
    assert result.exit_code == 0, result.output
    assert "simpo_gamma" not in result.output
    recipe = write("imported.yaml", result.stdout)
    assert "beta: 0.1" in recipe.read_text()


def test_a_llamafactory_dataset_entry_kept_verbatim_is_refused_for_another_backend(write, tmp_path):
    body = SFT + "backends:\n  llamafactory:\n    dataset_info: {data: {file_name: data.jsonl, formatting: sharegpt}}\n"
    recipe = _recipe(write, body)
    result = _compile(recipe, "axolotl", tmp_path)
    assert result.exit_code == 1 and "data.train is decided by LLaMA-Factory's own dataset_info" in result.output
