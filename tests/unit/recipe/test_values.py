"""Issue 15's cases: every recipe value reaches each backend exactly, is refused (FTR005), or is noted."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from paths import ROOT

from ft_recipes import backends
from ft_recipes.cli.main import main

ROWS = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(20)]


def _recipe(tmp_path: Path, **sections) -> Path:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    doc = {"ftr": 1, "model": {"base": "Qwen/Qwen2.5-0.5B-Instruct", "template": "chatml", "pad_token": "eos"},
           "method": {"type": "lora"}, "data": {"train": [{"path": str(data), "format": "alpaca"}]},
           "output": {"dir": str(tmp_path / "out")}}
    for key, value in sections.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _compile(path: Path, backend: str, tmp_path: Path):
    out = tmp_path / f"build-{backend}"
    result = CliRunner().invoke(main, ["compile", str(path), "-b", backend, "-o", str(out), "--force"])
    main_file = {"llamafactory": "llamafactory.yaml", "axolotl": "axolotl.yaml", "trl": "trl.json"}[backend]
    cfg = None
    if result.exit_code == 0:
        text = (out / main_file).read_text()
        cfg = json.loads(text) if main_file.endswith(".json") else yaml.safe_load(text)
    return result, cfg, out / main_file


def _import(native: Path, tmp_path: Path) -> dict:
    target = tmp_path / "back.yaml"
    result = CliRunner().invoke(main, ["import", str(native), "-o", str(target)])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(target.read_text())


def test_freeze_survives_axolotl_and_converts_to_llamafactory_freeze(tmp_path):
    path = _recipe(tmp_path, method={"type": "freeze", "freeze": {"trainable_layers": 3}})
    result, cfg, native = _compile(path, "axolotl", tmp_path)
    assert result.exit_code == 0, result.output
    assert len(cfg["unfrozen_parameters"]) == 3
    back = _import(native, tmp_path)
    assert back["method"]["type"] == "freeze"
    assert back["method"]["freeze"] == {"trainable_layers": 3, "trainable_modules": "all"}
    converted = CliRunner().invoke(main, ["convert", str(native), "--to", "llamafactory"])
    assert converted.exit_code == 0, converted.output
    lf = yaml.safe_load(converted.stdout)
    assert lf["finetuning_type"] == "freeze" and lf["freeze_trainable_layers"] == 3


def test_val_split_row_count_keeps_its_meaning(tmp_path):
    result, cfg, _ = _compile(_recipe(tmp_path, data={"val": {"split": 5}}), "llamafactory", tmp_path)
    assert result.exit_code == 0 and cfg["val_size"] == 5 and isinstance(cfg["val_size"], int)
    result, cfg, _ = _compile(_recipe(tmp_path, data={"val": {"split": 5}}), "axolotl", tmp_path)
    assert result.exit_code == 0 and cfg["val_set_size"] == 5


@pytest.mark.parametrize("backend", ["llamafactory", "axolotl"])
def test_val_split_of_one_row_is_refused_where_it_reads_as_everything(backend, tmp_path):
    result, _, _ = _compile(_recipe(tmp_path, data={"val": {"split": 1}}), backend, tmp_path)
    assert result.exit_code == 1 and "FTR005" in result.output and "1.0" in result.output


def test_fractional_row_count_is_an_error(tmp_path):
    result, _, _ = _compile(_recipe(tmp_path, data={"val": {"split": 2.5}}), "llamafactory", tmp_path)
    assert result.exit_code == 1 and "FTR002" in result.output


@pytest.mark.parametrize("backend", list(backends.NAMES))
def test_tiny_cpu_example_keeps_its_eval_steps(backend, tmp_path):
    result, cfg, _ = _compile(ROOT / "recipes" / "examples" / "tiny-cpu.yaml", backend, tmp_path)
    assert result.exit_code == 0, result.output
    args = cfg["args"] if backend == "trl" else cfg
    assert args["eval_strategy"] == "steps" and args["eval_steps"] == 2


def test_steps_and_epoch_in_one_file_is_an_error(tmp_path):
    path = _recipe(tmp_path, data={"val": {"split": 0.1}}, eval={"every": "epoch", "steps": 2})
    result, _, _ = _compile(path, "llamafactory", tmp_path)
    assert result.exit_code == 1 and "eval.steps is set but eval.every is 'epoch'" in result.output


def test_cosine_with_min_lr_carries_the_floor(tmp_path):
    path = _recipe(tmp_path, train={"lr": 2e-4, "scheduler": "cosine_with_min_lr", "min_lr": 2e-5})
    _, lf, _ = _compile(path, "llamafactory", tmp_path)
    assert lf["lr_scheduler_type"] == "cosine_with_min_lr" and lf["lr_scheduler_kwargs"] == {"min_lr": 2e-5}
    _, ax, native = _compile(path, "axolotl", tmp_path)
    assert ax["lr_scheduler"] == "cosine" and ax["cosine_min_lr_ratio"] == pytest.approx(0.1)
    back = _import(native, tmp_path)
    assert back["train"]["scheduler"] == "cosine_with_min_lr"
    assert back["train"]["min_lr"] == pytest.approx(2e-5)
    _, trl, _ = _compile(path, "trl", tmp_path)
    assert trl["args"]["lr_scheduler_kwargs"] == {"min_lr": 2e-5}


def test_cosine_with_min_lr_without_floor_is_an_error(tmp_path):
    result, _, _ = _compile(_recipe(tmp_path, train={"scheduler": "cosine_with_min_lr"}), "llamafactory", tmp_path)
    assert result.exit_code == 1 and "needs train.min_lr" in result.output


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_numbers_are_errors(value, tmp_path):
    path = _recipe(tmp_path)
    path.write_text(path.read_text() + f"train:\n  lr: {value}\n")
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 1 and "FTR002" in result.output and "finite" in result.output


def test_whole_floats_in_integer_fields_are_integers(tmp_path):
    path = _recipe(tmp_path, method={"type": "lora", "lora": {"r": 2.0}},
                   train={"micro_batch_size": 4.0, "seed": 4.0})
    result, cfg, native = _compile(path, "llamafactory", tmp_path)
    assert result.exit_code == 0, result.output
    for key, value in (("lora_rank", 2), ("per_device_train_batch_size", 4), ("seed", 4)):
        assert cfg[key] == value and isinstance(cfg[key], int)
    lint = CliRunner().invoke(main, ["lint", str(native)])
    assert "FTR002" not in lint.output


def test_fractional_integer_is_an_error(tmp_path):
    result, _, _ = _compile(_recipe(tmp_path, method={"type": "lora", "lora": {"r": 2.5}}), "axolotl", tmp_path)
    assert result.exit_code == 1 and "FTR002" in result.output


def test_cpu_run_survives_an_axolotl_round_trip(tmp_path):
    _, _, native = _compile(_recipe(tmp_path, hardware={"gpus": 0}), "axolotl", tmp_path)
    assert _import(native, tmp_path)["hardware"]["gpus"] == 0


def test_rows_that_do_not_fit_the_format_are_refused(tmp_path):
    path = _recipe(tmp_path)
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    result, _, _ = _compile(path, "axolotl", tmp_path)
    assert result.exit_code == 1 and "FTR204" in result.output
    assert not (tmp_path / "build-axolotl" / "data").exists()


def test_missing_dataset_is_refused_by_compile(tmp_path):
    path = _recipe(tmp_path)
    (tmp_path / "train.jsonl").unlink()
    for backend in backends.NAMES:
        result, _, _ = _compile(path, backend, tmp_path)
        assert result.exit_code == 1 and "FTR004" in result.output, backend


@pytest.mark.parametrize("init,backend,ok", [("pissa", "llamafactory", True), ("olora", "llamafactory", False),
                                              ("olora", "axolotl", True), ("gaussian", "trl", True)])
def test_lora_init(init, backend, ok, tmp_path):
    path = _recipe(tmp_path, method={"type": "lora", "lora": {"init": init}})
    result, cfg, _ = _compile(path, backend, tmp_path)
    assert (result.exit_code == 0) == ok, result.output
    if not ok:
        assert "FTR005" in result.output and "--backend axolotl" in result.output


@pytest.mark.parametrize("stage,ok", [("sft", True), ("orpo", True), ("dpo", False), ("kto", False)])
def test_pissa_on_llamafactory_only_without_a_reference_model(stage, ok, tmp_path):
    """finetuning_args.py: "Cannot use PiSSA for current training stage" for ppo, kto and reference-model DPO
    (found by the oracle on LLaMA-Factory's own parser)."""
    path = _recipe(tmp_path, stage=stage, method={"type": "lora", "lora": {"init": "pissa"}})
    result, _, _ = _compile(path, "llamafactory", tmp_path)
    assert (result.exit_code == 0) == ok, result.output
    if not ok:
        assert "FTR005" in result.output and "PiSSA" in result.output


def test_a_field_without_a_table_row_is_refused_naming_who_can(tmp_path):
    path = _recipe(tmp_path, output={"wandb_project": "p", "report_to": "wandb"})
    result, _, _ = _compile(path, "llamafactory", tmp_path)
    assert result.exit_code == 1 and "cannot express output.wandb_project" in result.output
    assert "--backend axolotl" in result.output
