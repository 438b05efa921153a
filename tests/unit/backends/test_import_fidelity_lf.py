"""Import and convert keep what the backend would train (issue 26): relative paths in a native file resolve where
its backend runs, in both importers; LLaMA-Factory's own defaults (save_total_limit: keep every checkpoint) and
the keys that change what it does or writes (plot_loss, overwrite_output_dir, neat_packing, quantization_method)
are carried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.backends.native import import_document
from ft_recipes.cli.main import main
from ft_recipes.recipe.datasets import running_from
from ft_recipes.recipe.load import load_file
from ft_recipes.recipe.loaded import load_any, load_recipe
from ft_recipes.recipe.validate import validate

CORPUS = Path(__file__).resolve().parents[2] / "data" / "realworld" / "llamafactory"
QWEN3_FULL = "examples/train_full/qwen3_full_sft.yaml"
ROWS = [{"instruction": "hi", "input": "", "output": "hello"}]


def _lf_root(root: Path) -> Path:
    """A LLaMA-Factory checkout's layout: data/dataset_info.json and a DeepSpeed config under examples/."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "dataset_info.json").write_text(json.dumps({"sft": {"file_name": "sft.json"}}))
    (root / "data" / "sft.json").write_text(json.dumps(ROWS))
    (root / "examples" / "deepspeed").mkdir(parents=True)
    (root / "examples" / "deepspeed" / "ds_z3.json").write_text("{}")
    return root


def _write(path: Path, **keys) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: v for k, v in keys.items() if v is not None}))  # JSON is YAML
    return path


def _lf(root: Path, **keys) -> Path:
    cfg = {"model_name_or_path": "Qwen/Qwen3-0.6B", "stage": "sft", "do_train": True, "finetuning_type": "lora",
           "template": "qwen3_nothink", "dataset": "sft", "learning_rate": 1.0e-4, "output_dir": "saves/x", **keys}
    return _write(root / "examples" / "train" / "cfg.yaml", **cfg)


def _ax(root: Path, **keys) -> Path:
    cfg = {"base_model": "Qwen/Qwen3-0.6B", "datasets": [{"path": "org/chat", "type": "chat_template"}],
           "adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True, "learning_rate": 1.0e-4,
           "micro_batch_size": 1, "num_epochs": 1, "sequence_len": 512, "output_dir": "./outputs/x", **keys}
    return _write(root / "examples" / "model" / "cfg.yaml", **cfg)


def _imported(path: Path, run_dir: Path | None = None):
    with running_from(run_dir):
        return import_document(load_file(path))


def _convert(path: Path | str, target: str, out: Path, *extra: str) -> tuple[dict, str]:
    result = CliRunner().invoke(main, ["convert", str(path), "--to", target, "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    main_file = next(p for p in out.iterdir() if p.suffix in (".yaml", ".json") and p.stem == target)
    text = main_file.read_text()
    return (json.loads(text) if main_file.suffix == ".json" else yaml.safe_load(text)), result.output


# --- paths: relative to where the backend runs -------------------------------------------------------------

@pytest.mark.parametrize("target", ["llamafactory", "axolotl"])
def test_lf_example_converts_with_paths_from_where_lf_runs(tmp_path, monkeypatch, target):
    monkeypatch.chdir(CORPUS)
    cfg, _ = _convert(QWEN3_FULL, target, tmp_path / "out")
    assert Path(cfg["deepspeed"]) == (CORPUS / "examples/deepspeed/ds_z3_config.json").resolve()
    assert Path(cfg["deepspeed"]).is_file()
    assert Path(cfg["output_dir"]) == (CORPUS / "saves/qwen3-4b/full/sft").resolve()  # not under examples/


def test_run_dir_option_is_where_relative_paths_resolve(tmp_path, monkeypatch):
    root = _lf_root(tmp_path / "LLaMA-Factory")
    path = _lf(root, deepspeed="examples/deepspeed/ds_z3.json")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg, _ = _convert(path, "llamafactory", tmp_path / "out", "--run-dir", str(root))
    assert cfg["deepspeed"] == str(root / "examples/deepspeed/ds_z3.json")
    assert cfg["output_dir"] == str(root / "saves/x")


@pytest.mark.parametrize("make", [_lf, _ax])
def test_a_missing_deepspeed_file_is_named_by_the_conversion(tmp_path, monkeypatch, make):
    root = _lf_root(tmp_path / "run")
    monkeypatch.chdir(root)
    path = make(root, deepspeed="deepspeed_configs/zero9.json")
    target = "axolotl" if make is _lf else "llamafactory"
    result = CliRunner().invoke(main, ["convert", str(path), "--to", target, "-o", str(tmp_path / "out")])
    assert f"{root / 'deepspeed_configs' / 'zero9.json'} does not exist" in result.output


@pytest.mark.parametrize("make", [_lf, _ax])
def test_a_missing_dataset_file_is_named_by_the_conversion(tmp_path, monkeypatch, make):
    root = _lf_root(tmp_path / "run")
    (root / "data" / "sft.json").unlink()
    monkeypatch.chdir(root)
    path = make(root, datasets=[{"path": "data/sft.json", "type": "alpaca"}] if make is _ax else None)
    result = CliRunner().invoke(main, ["convert", str(path), "--to", "llamafactory" if make is _lf else "axolotl",
                                       "-o", str(tmp_path / "out"), "--lossy"])
    assert f"dataset file {root / 'data' / 'sft.json'} does not exist" in result.output


def test_a_deepspeed_file_only_next_to_the_config_is_the_one_converted(tmp_path, monkeypatch):
    root = _lf_root(tmp_path / "project")
    path = _lf(root, deepspeed="ds.json")
    (path.parent / "ds.json").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with running_from(None, str(root / "data")):
        loaded = load_any(path)
    from ft_recipes.backends.emitted import deepspeed_path

    assert deepspeed_path(loaded.recipe) == str(path.parent / "ds.json")


def test_axolotl_paths_resolve_where_axolotl_runs(tmp_path, monkeypatch):
    root = tmp_path / "axolotl"
    (root / "deepspeed_configs").mkdir(parents=True)
    (root / "deepspeed_configs" / "zero1.json").write_text("{}")
    (root / "models" / "base").mkdir(parents=True)
    monkeypatch.chdir(root)
    path = _ax(root, base_model="models/base", lora_model_dir="adapters/a", deepspeed="deepspeed_configs/zero1.json")
    data = _imported(path).resolved.data
    assert data["output"]["dir"] == str(root / "outputs" / "x")
    assert data["hardware"]["deepspeed"] == str(root / "deepspeed_configs" / "zero1.json")
    assert data["model"]["base"] == str(root / "models" / "base")
    assert data["model"]["adapter"] == str(root / "adapters" / "a")
    default = _imported(_ax(root, output_dir=None)).resolved.data
    assert default["output"]["dir"] == str(root / "model-out")  # Axolotl's ./model-out


def test_lf_default_output_dir_and_local_model_resolve_where_lf_runs(tmp_path, monkeypatch):
    root = _lf_root(tmp_path / "LLaMA-Factory")
    (root / "models" / "qwen").mkdir(parents=True)
    monkeypatch.chdir(root)
    data = _imported(_lf(root, output_dir=None, model_name_or_path="models/qwen",
                         adapter_name_or_path="saves/sft")).resolved.data
    assert data["output"]["dir"] == str(root / "trainer_output")  # transformers' default
    assert data["model"]["base"] == str(root / "models" / "qwen")
    assert data["model"]["adapter"] == str(root / "saves" / "sft")
    hub = _imported(_lf(root)).resolved.data
    assert hub["model"]["base"] == "Qwen/Qwen3-0.6B"


@pytest.mark.parametrize("make", [_lf, _ax])
def test_an_imported_recipe_holds_paths_relative_to_itself(tmp_path, monkeypatch, make):
    root = _lf_root(tmp_path / "run")
    (root / "deepspeed_configs").mkdir()
    (root / "deepspeed_configs" / "z.json").write_text("{}")
    (root / "models" / "m").mkdir(parents=True)
    monkeypatch.chdir(root)
    keys = {"deepspeed": "deepspeed_configs/z.json"}
    if make is _ax:
        (root / "data" / "chat.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "x"}]}))
        keys.update(datasets=[{"path": "data/chat.jsonl", "type": "chat_template"}], base_model="models/m")
    else:
        keys.update(model_name_or_path="models/m")
    path = make(root, **keys)
    direct = load_any(path).recipe
    recipe_file = tmp_path / "shared" / "recipes" / "r.yaml"
    result = CliRunner().invoke(main, ["import", str(path), "-o", str(recipe_file)])
    assert result.exit_code == 0, result.output
    text = recipe_file.read_text()
    assert str(tmp_path) not in text  # no machine paths
    written = yaml.safe_load(text)
    assert written["output"]["dir"] == "../../run/" + ("outputs/x" if make is _ax else "saves/x")
    assert written["model"]["base"] == "../../run/models/m"
    monkeypatch.chdir(tmp_path)  # the recipe means the same files from anywhere
    again = load_recipe(recipe_file).recipe
    assert again.output.dir == direct.output.dir
    assert again.hardware.deepspeed and Path(recipe_file.parent / again.hardware.deepspeed).resolve() == \
        root / "deepspeed_configs" / "z.json"
    assert again.model.base == direct.model.base and again.model.is_local
    assert [d.path for d in again.data.train] == [d.path for d in direct.data.train]


def test_imported_recipe_next_to_the_config_keeps_a_deepspeed_file_found_beside_it(tmp_path, monkeypatch):
    root = _lf_root(tmp_path / "project")
    path = _lf(root, deepspeed="ds.json")
    (path.parent / "ds.json").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    recipe_file = tmp_path / "r.yaml"
    result = CliRunner().invoke(main, ["import", str(path), "-o", str(recipe_file), "--dataset-dir",
                                       str(root / "data")])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(recipe_file.read_text())["hardware"]["deepspeed"] == "project/examples/train/ds.json"


# --- defaults: what LLaMA-Factory does when a key is absent ----------------------------------------------------

@pytest.mark.parametrize("native,recipe", [(None, "all"), (3, 3), (0, "all"), (-1, "all")])
def test_lf_save_total_limit(tmp_path, monkeypatch, native, recipe):
    root = _lf_root(tmp_path / "LLaMA-Factory")
    monkeypatch.chdir(root)
    imported = _imported(_lf(root, save_total_limit=native))
    assert imported.resolved.data["output"]["save_total_limit"] == recipe


@pytest.mark.parametrize("native,recipe", [(None, 4), (2, 2), (0, 4), (-1, "all")])
def test_axolotl_save_total_limit(tmp_path, native, recipe):
    imported = _imported(_ax(tmp_path, save_total_limit=native), tmp_path)
    assert imported.resolved.data["output"]["save_total_limit"] == recipe


@pytest.mark.parametrize("target,key,keep_all", [("llamafactory", "save_total_limit", None),
                                                  ("axolotl", "save_total_limit", -1),
                                                  ("trl", "args.save_total_limit", None)])
def test_keep_every_checkpoint_is_written_as_each_backend_reads_it(tmp_path, monkeypatch, target, key, keep_all):
    """transformers keeps every checkpoint for None or a limit <= 0; Axolotl turns None and 0 into 4."""
    root = _lf_root(tmp_path / "LLaMA-Factory")
    monkeypatch.chdir(root)
    cfg, _ = _convert(_lf(root), target, tmp_path / "out", "--lossy")
    for part in key.split(".")[:-1]:
        cfg = cfg[part]
    assert key.split(".")[-1] in cfg and cfg[key.split(".")[-1]] == keep_all


@pytest.mark.parametrize("value,ok", [("all", True), (1, True), (0, False), ("some", False)])
def test_recipe_save_total_limit_values(tmp_path, value, ok):
    from ft_recipes.recipe.resolve import resolve

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"ftr": 1, "model": {"base": "Qwen/Qwen3-0.6B"}, "stage": "sft",
                                      "method": {"type": "lora"}, "train": {"lr": 1.0e-4},
                                      "data": {"train": [{"hub": "org/d", "format": "alpaca"}]},
                                      "output": {"save_total_limit": value}}))
    errors = [f for f in validate(resolve(load_file(recipe))) if f.key.startswith("output")]
    assert (errors == []) is ok, errors


def test_plot_loss_and_overwrite_output_dir_are_carried_to_lf(tmp_path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    cfg, _ = _convert(QWEN3_FULL, "llamafactory", tmp_path / "out")
    assert cfg["plot_loss"] is True and cfg["overwrite_output_dir"] is True


def test_plot_loss_is_named_as_lost_across_backends(tmp_path, monkeypatch):
    """plot_loss draws training_loss.png after training: it does not change the training, so the conversion goes
    on and names it."""
    monkeypatch.chdir(CORPUS)
    _, output = _convert(QWEN3_FULL, "axolotl", tmp_path / "out")
    assert "lost  plot_loss: True" in output


def test_neat_packing_is_packing(tmp_path, monkeypatch):
    root = _lf_root(tmp_path / "LLaMA-Factory")
    monkeypatch.chdir(root)
    assert _imported(_lf(root, neat_packing=True)).resolved.data["data"]["packing"] is True
    plain = _imported(_lf(root, packing=True))
    assert [n.key for n in plain.notes if n.changes_training] == ["packing"]


@pytest.mark.parametrize("method,noted", [("bnb", False), ("hqq", True)])
def test_quantization_method_other_than_bitsandbytes_changes_training(tmp_path, monkeypatch, method, noted):
    root = _lf_root(tmp_path / "LLaMA-Factory")
    monkeypatch.chdir(root)
    imported = _imported(_lf(root, quantization_bit=4, quantization_method=method))
    assert any(n.key == "quantization_method" and n.changes_training for n in imported.notes) is noted
    assert ("quantization_method" in imported.passthrough) is noted
