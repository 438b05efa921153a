"""normalise: the typed recipe with every default explicit, declared once in recipe.py."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.recipe import model as r
from ft_recipes.recipe.loaded import load_recipe

HEAD = "ftr: 1\nmodel: {base: Qwen/Qwen2.5-0.5B, template: chatml}\ndata: {train: [{path: d.jsonl, format: alpaca}]}\n"


def _load(write, body: str = ""):
    write("d.jsonl", '{"instruction": "a", "output": "b"}\n')
    return load_recipe(write("r.yaml", HEAD + body)).recipe


def test_defaults_are_the_dataclasses_own(write):
    recipe = _load(write)
    assert recipe.data.max_length == r.Data.max_length
    assert recipe.output.save_total_limit == r.Output.save_total_limit
    assert recipe.method.type == r.Method.type and recipe.method.lora == r.Lora(alpha=2 * r.Lora.r)
    assert recipe.train == r.Train()


def test_only_the_sections_the_stage_and_method_use_are_built(write):
    recipe = _load(write, "method: {type: full}\n")
    assert recipe.method.lora is None and recipe.preference is None
    recipe = _load(write, "stage: dpo\n")
    assert recipe.preference == r.Preference()
    recipe = _load(write, "preference: {beta: 0.2}\n")  # written under sft: kept (LLaMA-Factory reads pref_beta)
    assert recipe.preference.beta == 0.2


def test_lists_become_tuples_and_whole_floats_integers(write):
    recipe = _load(write, "method: {type: lora, lora: {r: 8.0, target: [q_proj, v_proj]}}\n"
                          "hardware: {setup: [echo hi]}\n")
    assert recipe.method.lora.r == 8 and isinstance(recipe.method.lora.r, int)
    assert recipe.method.lora.target == ("q_proj", "v_proj") and recipe.hardware.setup == ("echo hi",)


def test_paths_are_absolute_against_the_file_that_wrote_them(write, tmp_path):
    recipe = _load(write, "output: {dir: runs/x}\n")
    assert recipe.output.dir == (tmp_path / "runs" / "x").resolve()
    assert recipe.data.train[0].path == (tmp_path / "d.jsonl").resolve()
    assert Path(recipe.source_file).name == "r.yaml"


def test_a_step_count_implies_the_steps_cadence(write):
    recipe = _load(write, "eval: {steps: 50}\noutput: {save_steps: 100}\n")
    assert (recipe.eval.strategy, recipe.eval.steps) == ("steps", 50)
    assert (recipe.output.save, recipe.output.save_steps) == ("steps", 100)
