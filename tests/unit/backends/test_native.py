"""Native configs: dialect detection, import, convert, and the round-trip property
(import -> compile to the same backend gives back every training-relevant value)."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes import backends
from ft_recipes.backends.native import detect_dialect, import_document
from ft_recipes.cli.main import main
from ft_recipes.recipe.load import load_file
from ft_recipes.recipe.normalise import normalise
from ft_recipes.recipe.validate import validate

NATIVE = Path(__file__).resolve().parents[2] / "data" / "native"
LF_FILES = sorted(NATIVE.glob("lf_*.yaml"))
AX_FILES = sorted(NATIVE.glob("ax_*.yaml"))

# Keys that do not change training: where files go, logging artefacts, and launch-time safety flags
# that `ftr run` manages itself.
COSMETIC = {"do_train", "plot_loss", "overwrite_output_dir", "dataset_dir", "dataset_prepared_path", "tf32"}
PATH_KEYS = {"output_dir", "deepspeed"}
# Deprecated spellings ftr writes in their current form (same value): transformers 5 reads warmup_steps < 1
# as a ratio and deprecates warmup_ratio.
RESPELLED = {("llamafactory", "warmup_ratio"): "warmup_steps"}


def _compile_same(path: Path, tmp_path: Path) -> tuple[dict, dict]:
    imported = import_document(load_file(path))
    assert validate(imported.resolved) == []
    recipe = normalise(imported.resolved)
    emitted = backends.get(imported.dialect).emit(recipe, tmp_path)
    return yaml.safe_load(path.read_text()), emitted.configs[emitted.main]


def _same_path(a, b, base: Path) -> bool:
    return (base / str(a)).resolve() == Path(str(b)).resolve()


def _run_path(value, config: Path) -> Path:
    """Where the backend opens a relative path: under the directory it runs in (here the working directory); a
    file found only next to the config is the one ftr reads (lint warns about it)."""
    here, beside = Path.cwd() / str(value), config.parent / str(value)
    return (beside if beside.exists() and not here.exists() else here).resolve()


@pytest.mark.parametrize("path", LF_FILES + AX_FILES, ids=lambda p: p.stem)
def test_detects_dialect(path):
    expected = "llamafactory" if path.name.startswith("lf_") else "axolotl"
    assert detect_dialect(yaml.safe_load(path.read_text())) == expected


@pytest.mark.parametrize("path", LF_FILES + AX_FILES, ids=lambda p: p.stem)
def test_round_trip(path, tmp_path):
    original, compiled = _compile_same(path, tmp_path)
    for key, value in original.items():
        if key in COSMETIC:
            continue
        dialect = "llamafactory" if path.name.startswith("lf_") else "axolotl"
        key_out = RESPELLED.get((dialect, key), key)
        if key_out != key:
            assert compiled[key_out] == value and key not in compiled, key
            continue
        assert key in compiled, f"{key} lost"
        if key in PATH_KEYS:
            assert Path(str(compiled[key])).resolve() == _run_path(value, path), key
        elif key in ("datasets", "test_datasets"):
            for before, after in zip(value, compiled[key]):
                assert _same_path(before["path"], after["path"], path.parent) or before["type"] == "alpaca"
                for field in ("field_messages", "message_property_mappings"):
                    if field in before:
                        assert after[field] == before[field], (key, field)
        elif key == "bf16" and value == "auto":
            assert compiled[key] == "auto"  # carried as written: bf16 where the GPU has it
        elif key == "special_tokens":  # ftr adds the template's EOS (issue 17) when the model's is not known
            assert compiled[key].items() >= value.items(), compiled[key]
        elif key == "learning_rate":
            assert float(compiled[key]) == float(value)
        else:
            assert compiled[key] == value, f"{key}: {value!r} became {compiled[key]!r}"


def test_lf_import_reads_dataset_info():
    imported = import_document(load_file(NATIVE / "lf_dpo.yaml"))
    train = imported.resolved.data["data"]["train"]
    assert train[0]["format"] == "preference" and train[0]["name"] == "pref_demo"
    assert Path(train[0]["path"]).is_file()
    assert imported.resolved.data["stage"] == "dpo"


def test_positions_point_at_native_keys():
    imported = import_document(load_file(NATIVE / "lf_lora.yaml"))
    recipe = normalise(imported.resolved)
    file, line, col = recipe.where(("train", "lr"))
    assert file.endswith("lf_lora.yaml")
    assert (NATIVE / "lf_lora.yaml").read_text().splitlines()[line - 1].startswith("learning_rate")


def test_import_keeps_unmapped_keys(tmp_path):
    out = tmp_path / "recipe.yaml"
    result = CliRunner().invoke(main, ["import", str(NATIVE / "lf_lora.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "kept  ddp_timeout" in result.output
    data = yaml.safe_load(out.read_text())
    assert data["backends"]["llamafactory"]["ddp_timeout"] == 180000000
    # max_samples keeps the first 1000 rows of each dataset: the recipe's num_samples
    assert [ds["num_samples"] for ds in data["data"]["train"]] == [1000, 1000]
    assert "max_samples" not in data["backends"]["llamafactory"]
    # the written recipe is itself valid and compiles
    result = CliRunner().invoke(main, ["compile", str(out), "-b", "llamafactory"])
    assert result.exit_code == 0, result.output
    assert "max_samples: 1000" in result.stdout
    # never overwritten without --force
    assert CliRunner().invoke(main, ["import", str(NATIVE / "lf_lora.yaml"), "-o", str(out)]).exit_code == 2


@pytest.mark.parametrize("path", LF_FILES, ids=lambda p: p.stem)
def test_convert_lf_to_axolotl(path, tmp_path):
    result = CliRunner().invoke(main, ["convert", str(path), "--to", "axolotl", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "out" / "axolotl.yaml").read_text())
    original = yaml.safe_load(path.read_text())
    assert float(cfg["learning_rate"]) == float(original["learning_rate"])
    assert cfg["base_model"] == original["model_name_or_path"]


@pytest.mark.parametrize("path", AX_FILES, ids=lambda p: p.stem)
def test_convert_axolotl_to_lf(path, tmp_path):
    result = CliRunner().invoke(main, ["convert", str(path), "--to", "llamafactory", "-o", str(tmp_path / "out")])
    if "type: alpaca" in path.read_text():  # Axolotl's own Alpaca prompt: LLaMA-Factory's differs
        assert result.exit_code == 1 and "FTR005" in result.output and "datasets[0].type: 'alpaca'" in result.output
        return
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "out" / "llamafactory.yaml").read_text())
    original = yaml.safe_load(path.read_text())
    assert cfg["model_name_or_path"] == original["base_model"]
    assert cfg["cutoff_len"] == original["sequence_len"]


def test_convert_reports_what_is_lost(tmp_path):
    result = CliRunner().invoke(main, ["convert", str(NATIVE / "lf_lora.yaml"), "--to", "axolotl"])
    assert result.exit_code == 0
    assert "lost  ddp_timeout" in result.output
    assert "max_samples" not in result.output  # carried: the first 1000 rows of each dataset


def test_convert_refuses_to_drop_a_key_that_changes_the_training(tmp_path):
    """A source-only key that changes what is trained (here LLaMA-Factory's DFT loss) stops the conversion with
    FTR005 at its line; --lossy converts and lists it as lost. Written at its default, it is no obstacle."""
    shutil.copytree(NATIVE / "data", tmp_path / "data")  # its dataset_info.json and rows, beside it
    native = tmp_path / "dft.yaml"
    native.write_text((NATIVE / "lf_lora.yaml").read_text() + "use_dft_loss: true\n")
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "axolotl", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    line = len(native.read_text().splitlines())
    assert f"dft.yaml:{line}:1: FTR005" in result.output and "use_dft_loss: True changes" in result.output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "axolotl", "--lossy", "-o",
                                       str(tmp_path / "out")])
    assert result.exit_code == 0 and "lost  use_dft_loss: True" in result.output
    native.write_text((NATIVE / "lf_lora.yaml").read_text() + "use_dft_loss: false\n")
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "axolotl"])
    assert result.exit_code == 0, result.output
    # the same backend keeps it
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "llamafactory"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["llamafactory", "axolotl"])
def test_keys_that_change_the_training_are_real_and_not_carried(name):
    """Each declared key is in the backend's own catalogue, and no key table row writes it (a carried key would
    never be lost)."""
    from ft_recipes import backends
    from ft_recipes.backends.catalogue import load

    backend = backends.get(name)
    known = load(name)["keys"]
    written = {part.strip() for row in backend.keys if not row.structural for part in row.native.split("/")}
    assert backend.changes_training and backend.changes_training <= set(known)
    assert not backend.changes_training & written


def test_convert_names_a_trainer_no_recipe_stage_holds(tmp_path):
    native = tmp_path / "ebft.yaml"
    native.write_text(yaml.safe_dump({"base_model": "org/model", "rl": "ebft", "adapter": "lora", "lora_r": 8,
                                      "datasets": [{"path": "org/data", "type": "ebft_strided.default"}],
                                      "micro_batch_size": 1, "learning_rate": 1e-5, "output_dir": "out"}))
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "llamafactory"])
    assert result.exit_code == 1
    assert "FTR005" in result.output and "rl: 'ebft' changes what Axolotl trains" in result.output


def test_a_hub_datasets_configuration_and_split_carry_across(tmp_path):
    """Axolotl's dataset `name` (load_dataset's configuration) and `split` were dropped on import: LLaMA-Factory
    would have read another configuration's train split. They are the recipe's subset and split."""
    native = tmp_path / "ax.yaml"
    native.write_text(yaml.safe_dump({"base_model": "org/model", "adapter": "lora", "lora_r": 8, "lora_alpha": 16,
                                      "lora_target_linear": True, "chat_template": "chatml", "sequence_len": 512,
                                      "micro_batch_size": 1, "num_epochs": 1, "learning_rate": 2e-4,
                                      "output_dir": "out", "datasets": [{
                                          "path": "org/chats", "name": "en", "split": "train[:500]",
                                          "type": "chat_template", "field_messages": "messages"}]}))
    out = tmp_path / "lf"
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "llamafactory", "-o", str(out)])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads((out / "dataset_info.json").read_text()).values()
    assert entry["hf_hub_url"] == "org/chats" and entry["subset"] == "en" and entry["split"] == "train[:500]"
    back = tmp_path / "ax-again"
    result = CliRunner().invoke(main, ["convert", str(out / "llamafactory.yaml"), "--to", "axolotl", "-o", str(back)])
    assert result.exit_code == 0, result.output
    (dataset,) = yaml.safe_load((back / "axolotl.yaml").read_text())["datasets"]
    assert (dataset["path"], dataset["name"], dataset["split"]) == ("org/chats", "en", "train[:500]")


def test_convert_refuses_dataset_keys_that_change_the_trained_tokens(tmp_path):
    """Axolotl trains the roles in roles_to_train; a recipe trains the replies. Training user turns too would be
    lost on LLaMA-Factory: refused at the key. sharegpt's `gpt` is `assistant`, no change."""
    cfg = {"base_model": "org/model", "adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True,
           "chat_template": "chatml", "sequence_len": 512, "micro_batch_size": 1, "num_epochs": 1,
           "learning_rate": 2e-4, "output_dir": "out",
           "datasets": [{"path": "org/chats", "type": "chat_template", "roles_to_train": ["user", "assistant"]}]}
    native = tmp_path / "ax.yaml"
    native.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "llamafactory"])
    assert result.exit_code == 1 and "datasets[0].roles_to_train: ['user', 'assistant'] changes" in result.output
    cfg["datasets"][0].update(roles_to_train=["gpt"], message_property_mappings={"role": "from", "content": "value"},
                              field_messages="conversations")
    native.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = CliRunner().invoke(main, ["convert", str(native), "--to", "llamafactory"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("entry,expected", [
    ({"formatting": "openai"}, ("sharegpt", {})),  # no tags: conversations / from / value / human / gpt
    ({"formatting": "openai", "tags": {"role_tag": "role", "content_tag": "content"}},
     ("messages", {"messages": "conversations"})),
    ({"formatting": "openai", "columns": {"messages": "messages"},
      "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
     ("messages", {})),
])
def test_lf_openai_entry_reads_as_llamafactory_reads_it(entry, expected):
    """LLaMA-Factory 0.9.5's DatasetAttr defaults (data/parser.py) hold for `formatting: openai` too: an entry
    that names no tags reads the `conversations` column with from/value/human/gpt, and one that names no
    `messages` column reads `conversations`."""
    from ft_recipes.backends.llamafactory.rows import columns_of

    assert columns_of(entry) == expected
