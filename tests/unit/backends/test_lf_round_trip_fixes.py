"""LLaMA-Factory -> LLaMA-Factory keeps what LLaMA-Factory reads (the conversion oracle's round-trip rows,
scripts/conversion_oracle.py): media_dir stays the folder the images are in, and every dataset_info.json entry is
read as the source's (formatting, columns, tags; media columns verbatim). A column no recipe field holds (images)
makes a conversion to another backend refuse, or with --lossy list it as lost.

``emit.reading`` is LLaMA-Factory 0.9.5's DatasetAttr.join (data/parser.py) restricted to what its converter of
the formatting reads; the oracle checks the same with LLaMA-Factory's own parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.backends.llamafactory.emit import LOCATION, reading
from ft_recipes.cli.main import main

CORPUS = Path(__file__).resolve().parents[2] / "data" / "realworld" / "llamafactory"
USERS = Path(__file__).resolve().parents[2] / "data" / "realworld" / "users" / "llamafactory"
MLLM = [{"messages": [{"role": "user", "content": "<image>Who?"}, {"role": "assistant", "content": "Kane."}],
         "images": ["mllm_demo_data/1.jpg"]}]


def _convert(path, target: str, out: Path, *extra: str):
    return CliRunner().invoke(main, ["convert", str(path), "--to", target, "-o", str(out), "--format", "json",
                                     *extra])


def _written(out: Path) -> tuple[dict, dict]:
    return yaml.safe_load((out / "llamafactory.yaml").read_text()), json.loads((out / "dataset_info.json").read_text())


def _source_info(root: Path) -> dict:
    return json.loads((root / "data" / "dataset_info.json").read_text())


def _same_reading(source: dict, written: dict, names) -> None:
    for name in names:
        assert reading(written[name]) == reading(source[name]), name
        kept = {k: v for k, v in source[name].items() if k not in LOCATION}
        if "tags" in kept or "ranking" in kept:  # kept verbatim (a plain alpaca entry is written out in full)
            assert {k: v for k, v in written[name].items() if k not in LOCATION} == kept, name


def _vl_project(root: Path, **keys) -> Path:
    (root / "data" / "mllm_demo_data").mkdir(parents=True)
    (root / "data" / "mllm_demo.json").write_text(json.dumps(MLLM))
    (root / "data" / "mllm_demo_data" / "1.jpg").write_bytes(b"")
    (root / "data" / "dataset_info.json").write_text(json.dumps({"mllm_demo": {
        "file_name": "mllm_demo.json", "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}}))
    cfg = {"model_name_or_path": "Qwen/Qwen3-VL-4B-Instruct", "stage": "sft", "do_train": True,
           "finetuning_type": "lora", "template": "qwen3_vl_nothink", "dataset": "mllm_demo", "output_dir": "saves/x",
           **keys}
    path = root / "examples" / "cfg.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(cfg))
    return path


# --- 5. media_dir ------------------------------------------------------------------------------------------

def test_media_dir_stays_the_source_dataset_dir(tmp_path, monkeypatch):
    """media_dir defaults to dataset_dir (hparams/data_args.py); the converted dataset_dir is the output folder,
    so the folder the images are in is written out."""
    root = tmp_path / "LLaMA-Factory"
    path = _vl_project(root)
    monkeypatch.chdir(root)
    result = _convert(path, "llamafactory", tmp_path / "out")
    assert result.exit_code == 0, result.output
    cfg, _ = _written(tmp_path / "out")
    assert cfg["dataset_dir"] == str(tmp_path / "out")
    assert cfg["media_dir"] == str(root / "data")
    assert (Path(cfg["media_dir"]) / MLLM[0]["images"][0]).is_file()


def test_a_relative_media_dir_resolves_where_lf_runs(tmp_path, monkeypatch):
    root = tmp_path / "LLaMA-Factory"
    path = _vl_project(root, media_dir="data/mllm_demo_data")
    monkeypatch.chdir(root)
    assert _convert(path, "llamafactory", tmp_path / "out").exit_code == 0
    assert _written(tmp_path / "out")[0]["media_dir"] == str(root / "data" / "mllm_demo_data")


def test_no_media_dir_without_media_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    assert _convert("examples/train_lora/qwen3_lora_sft.yaml", "llamafactory", tmp_path / "out").exit_code == 0
    cfg, _ = _written(tmp_path / "out")
    assert "media_dir" not in cfg
    kept = yaml.safe_load((tmp_path / "out" / "recipe.yaml").read_text())["backends"]["llamafactory"]
    assert "dataset_info" not in kept and "media_dir" not in kept  # alpaca_en_demo: the recipe says it all


# --- 6. dataset_info entries -----------------------------------------------------------------------------------

@pytest.mark.parametrize("config, names", [
    ("examples/train_lora/qwen3vl_lora_sft.yaml", ["mllm_demo", "identity", "alpaca_en_demo"]),  # images, tags
    ("examples/train_lora/qwen3vl_lora_dpo.yaml", ["rlhf_v"]),  # hub sharegpt ranking with images
    ("examples/train_lora/qwen3_lora_dpo.yaml", ["dpo_en_demo"]),  # sharegpt ranking
    ("examples/train_lora/qwen3_lora_kto.yaml", ["kto_en_demo"]),  # tags left unset
])
def test_lf_examples_keep_their_dataset_entries(tmp_path, monkeypatch, config, names):
    monkeypatch.chdir(CORPUS)
    result = _convert(config, "llamafactory", tmp_path / "out")
    assert result.exit_code == 0, result.output
    cfg, info = _written(tmp_path / "out")
    _same_reading(_source_info(CORPUS), info, names)
    if "mllm_demo" in names:
        assert info["mllm_demo"]["columns"]["images"] == "images"
        assert cfg["media_dir"] == str(CORPUS / "data")


@pytest.mark.parametrize("project", ["BAIKEMARK__taletalk", "BAIKEMARK__qixia-rocm-lora"])
def test_user_sharegpt_sets_keep_system_and_unset_tags(tmp_path, monkeypatch, project):
    """sharegpt with a system column and four tags: system stays, the three tags left out stay None."""
    root = USERS / project
    monkeypatch.chdir(root)
    result = _convert("configs/qwen3_8b_lora.yaml", "llamafactory", tmp_path / "out")
    assert result.exit_code == 0, result.output
    cfg, info = _written(tmp_path / "out")
    names = [cfg["dataset"], cfg["eval_dataset"]]
    _same_reading(_source_info(root), info, names)
    for name in names:
        assert info[name]["columns"]["system"] == "system"
        assert reading(info[name])["system_tag"] is None and reading(info[name])["observation_tag"] is None


def test_the_converted_recipe_compiles_to_the_same_entries(tmp_path, monkeypatch):
    """The recipe convert writes is the source from then on: compiling it gives the same dataset_info."""
    monkeypatch.chdir(CORPUS)
    assert _convert("examples/train_lora/qwen3vl_lora_sft.yaml", "llamafactory", tmp_path / "out").exit_code == 0
    result = CliRunner().invoke(main, ["compile", str(tmp_path / "out" / "recipe.yaml"), "-b", "llamafactory",
                                       "-o", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    cfg, info = _written(tmp_path / "again")
    _same_reading(_source_info(CORPUS), info, ["mllm_demo", "identity", "alpaca_en_demo"])
    assert cfg["media_dir"] == str(CORPUS / "data")


def test_a_system_column_reaches_other_backends(tmp_path, monkeypatch):
    """The importer keeps columns.system even under its own name: other backends read it only when named."""
    from ft_recipes.recipe.datasets import chat_to_messages
    from ft_recipes.recipe.loaded import load_recipe

    root = USERS / "BAIKEMARK__taletalk"
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["import", "configs/qwen3_8b_lora.yaml", "-o", str(tmp_path / "r.yaml")])
    assert result.exit_code == 0, result.output
    ds = load_recipe(tmp_path / "r.yaml").recipe.data.train[0]
    assert dict(ds.columns)["system"] == "system"
    row = json.loads((root / "data" / "qixia_chat_train.json").read_text())[0]
    assert chat_to_messages(row, ds)[0] == {"role": "system", "content": row["system"]}


def test_an_edited_dataset_is_written_from_the_recipe(tmp_path, monkeypatch):
    """A kept entry that no longer says what the recipe's dataset says (a column was renamed) is not used."""
    monkeypatch.chdir(USERS / "BAIKEMARK__taletalk")
    assert _convert("configs/qwen3_8b_lora.yaml", "llamafactory", tmp_path / "out").exit_code == 0
    recipe = tmp_path / "out" / "recipe.yaml"
    data = yaml.safe_load(recipe.read_text())
    assert "qixia_train" in data["backends"]["llamafactory"]["dataset_info"]
    data["data"]["train"][0]["columns"]["system"] = "persona"
    recipe.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["compile", str(recipe), "-b", "llamafactory", "-o", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    cfg, info = _written(tmp_path / "again")
    assert info["qixia_train"]["columns"]["system"] == "persona"
    assert info["qixia_valid"]["columns"]["system"] == "system"  # unchanged: still the kept entry
    assert reading(info["qixia_valid"])["system_tag"] is None


# --- a column the recipe cannot hold, to another backend ------------------------------------------------------

def test_images_refuse_a_conversion_to_axolotl(tmp_path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    result = _convert("examples/train_lora/qwen3vl_lora_sft.yaml", "axolotl", tmp_path / "out")
    assert result.exit_code != 0
    assert "FTR005" in result.output and "mllm_demo" in result.output and "images" in result.output
    lossy = _convert("examples/train_lora/qwen3vl_lora_sft.yaml", "axolotl", tmp_path / "lossy", "--lossy")
    assert lossy.exit_code == 0, lossy.output
    report = json.loads(lossy.output[lossy.output.find("{"):])
    lost = {line["key"]: line for line in report["lines"] if line["status"] == "lost"}
    assert "images" in lost["dataset_info"]["detail"] and "media_dir" in lost


def test_a_text_only_set_still_converts_to_axolotl(tmp_path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    result = _convert("examples/train_lora/qwen3_lora_sft.yaml", "axolotl", tmp_path / "out")
    assert result.exit_code == 0, result.output
