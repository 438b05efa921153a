"""Axolotl -> Axolotl keeps what the file says (the conversion oracle's former KNOWN bugs, scripts/
conversion_oracle.py): the LoRA targets, tf32, the end of each trained reply (special_tokens, eot_tokens) and an
absent warmup are written back as the file had them, kept under backends.axolotl where no recipe value says the
same; converting to LLaMA-Factory reports each (or refuses, as before), never silently."""

import os
from pathlib import Path

import yaml
from click.testing import CliRunner

from ft_recipes.cli.main import main

BASE = {"base_model": "org/model", "adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True,
        "sequence_len": 512, "micro_batch_size": 2, "num_epochs": 1, "learning_rate": 2e-4, "output_dir": "out",
        "warmup_steps": 10, "tf32": False, "datasets": [{"path": "org/chat", "type": "chat_template"}]}
ABSENT = object()


def _write(tmp_path: Path, **keys) -> Path:
    cfg = {**BASE, **keys}
    native = tmp_path / "ax.yaml"
    native.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if v is not ABSENT}, sort_keys=False))
    return native


def _convert(native: Path, target: str):
    old = os.getcwd()
    os.chdir(native.parent)  # where Axolotl runs
    try:
        return CliRunner().invoke(main, ["convert", str(native), "--to", target, "-o",
                                         str(native.parent / f"out-{target}")])
    finally:
        os.chdir(old)


def _round_trip(native: Path) -> tuple[dict, str]:
    result = _convert(native, "axolotl")
    assert result.exit_code == 0, result.output
    return yaml.safe_load((native.parent / "out-axolotl" / "axolotl.yaml").read_text()), result.output


def _line(output: str, status: str, key: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(f"{status}  {key}")]
    assert lines, output
    return lines[0]


# --- 1. LoRA targets (examples/minimax/m2-qlora.yaml, examples/deepseek-v4/v4-flash-nvfp4-lora.yaml) -----------

def test_fused_expert_parameters_alone_do_not_widen_to_every_linear_layer(tmp_path):
    params = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
    cfg, _ = _round_trip(_write(tmp_path, lora_target_linear=ABSENT, lora_target_parameters=params))
    assert cfg["lora_target_linear"] is False and "lora_target_modules" not in cfg
    assert cfg["lora_target_parameters"] == params
    result = _convert(_write(tmp_path, lora_target_linear=ABSENT, lora_target_parameters=params), "llamafactory")
    assert result.exit_code == 1 and "FTR005" in result.output and "lora_target_parameters:" in result.output


def test_no_target_at_all_stays_peft_default_and_is_refused_elsewhere(tmp_path):
    cfg, _ = _round_trip(_write(tmp_path, lora_target_linear=ABSENT))
    assert not cfg["lora_target_linear"] and "lora_target_modules" not in cfg
    result = _convert(_write(tmp_path, lora_target_linear=ABSENT), "llamafactory")
    assert result.exit_code == 1 and "FTR005" in result.output


def test_a_module_regex_keeps_lora_target_linear_as_written(tmp_path):
    regex = r".*\.(q_proj|v_proj)$"
    cfg, _ = _round_trip(_write(tmp_path, lora_target_modules=regex))
    assert cfg["lora_target_linear"] is True and cfg["lora_target_modules"] == regex
    cfg, _ = _round_trip(_write(tmp_path, lora_target_linear=ABSENT, lora_target_modules=regex))
    assert not cfg.get("lora_target_linear") and cfg["lora_target_modules"] == regex


def test_named_modules_and_all_linear_still_round_trip(tmp_path):
    cfg, _ = _round_trip(_write(tmp_path, lora_target_linear=False, lora_target_modules=["q_proj", "v_proj"]))
    assert cfg["lora_target_linear"] is False and cfg["lora_target_modules"] == ["q_proj", "v_proj"]
    cfg, _ = _round_trip(_write(tmp_path))
    assert cfg["lora_target_linear"] is True and "lora_target_modules" not in cfg


# --- 2. tf32 (absent: Axolotl's 'auto'; examples/ebft/llama-1b-ebft-opencode-novllm.yaml) ----------------------

def test_absent_tf32_is_axolotls_auto_not_false(tmp_path):
    cfg, _ = _round_trip(_write(tmp_path, tf32=ABSENT))
    assert cfg["tf32"] == "auto"
    for value in (True, False, "auto"):
        assert _round_trip(_write(tmp_path, tf32=value))[0]["tf32"] == value


def test_tf32_is_reported_for_llamafactory(tmp_path):
    result = _convert(_write(tmp_path, tf32=ABSENT), "llamafactory")
    assert result.exit_code == 0, result.output
    assert "TF32" in _line(result.output, "lost", "tf32: 'auto'")
    result = _convert(_write(tmp_path, tf32=True), "llamafactory")
    assert result.exit_code == 0 and "lost  tf32: True" in result.output
    result = _convert(_write(tmp_path, tf32=False), "llamafactory")
    assert result.exit_code == 0 and not any(line.split()[1:2] == ["tf32:"] for line in result.output.splitlines())


def test_a_recipe_still_gets_tf32_false(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"ftr": 1, "model": {"base": "org/model"}, "stage": "sft",
                                      "method": {"type": "lora"},
                                      "data": {"train": [{"hub": "org/chat", "format": "messages"}]}}))
    result = CliRunner().invoke(main, ["compile", str(recipe), "-b", "axolotl", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "out" / "axolotl.yaml").read_text())
    assert cfg["tf32"] is False and cfg["warmup_ratio"] == 0.03


# --- 3. the end of each reply (examples/mistral/orpo/mistral-qlora-orpo.yml) -----------------------------------

def test_the_files_own_end_of_turn_is_kept_and_the_difference_reported(tmp_path):
    cfg, output = _round_trip(_write(tmp_path, chat_template="chatml"))
    assert cfg["chat_template"] == "chatml"
    assert not cfg.get("special_tokens") and not cfg.get("eot_tokens")  # nothing the file did not have
    assert "approximated 0," in output  # a round trip writes back the file's own end of turn: nothing differs


def test_a_pad_token_is_kept_and_no_eos_token_is_added(tmp_path):
    cfg, _ = _round_trip(_write(tmp_path, chat_template="chatml", special_tokens={"pad_token": "<pad>"}))
    assert cfg["special_tokens"] == {"pad_token": "<pad>"} and not cfg.get("eot_tokens")


def test_the_files_own_eos_and_eot_tokens_round_trip(tmp_path):
    tokens = {"eos_token": "<|im_end|>"}
    cfg, _ = _round_trip(_write(tmp_path, chat_template="chatml", special_tokens=tokens, eot_tokens=["\n"]))
    assert cfg["special_tokens"] == tokens and cfg["eot_tokens"] == ["\n"]


def test_the_end_of_turn_difference_is_reported_for_llamafactory(tmp_path):
    result = _convert(_write(tmp_path, chat_template="chatml"), "llamafactory")
    assert result.exit_code == 0, result.output
    assert "'<|im_end|>'" in _line(result.output, "lost", "special_tokens")
    assert "end-of-turn" in _line(result.output, "lost", "eot_tokens")


def test_a_recipe_still_gets_the_templates_end_of_turn(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"ftr": 1, "model": {"base": "org/model", "template": "chatml"},
                                      "stage": "sft", "method": {"type": "lora"},
                                      "data": {"train": [{"hub": "org/chat", "format": "messages"}]}}))
    result = CliRunner().invoke(main, ["compile", str(recipe), "-b", "axolotl", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "out" / "axolotl.yaml").read_text())
    assert cfg["special_tokens"]["eos_token"] == "<|im_end|>" and cfg["eot_tokens"] == ["\n"]


# --- 4. absent warmup (Axolotl: min(int(0.03 * steps), 100) steps) ---------------------------------------------

def test_absent_warmup_stays_axolotls_default(tmp_path):
    cfg, _ = _round_trip(_write(tmp_path, warmup_steps=ABSENT))
    assert cfg.get("warmup_ratio") is None and cfg.get("warmup_steps") is None
    recipe = yaml.safe_load((tmp_path / "out-axolotl" / "recipe.yaml").read_text())
    assert recipe["train"]["warmup_ratio"] == 0.03  # the nearest reading, for another backend
    assert _round_trip(_write(tmp_path, warmup_steps=ABSENT, warmup_ratio=0.1))[0]["warmup_ratio"] == 0.1
    cfg = _round_trip(_write(tmp_path))[0]
    assert cfg["warmup_steps"] == 10 and "warmup_ratio" not in cfg


def test_absent_warmup_is_reported_for_llamafactory(tmp_path):
    result = _convert(_write(tmp_path, warmup_steps=ABSENT), "llamafactory")
    assert result.exit_code == 0, result.output
    assert "at most 100 steps" in _line(result.output, "lost", "warmup_ratio")
    cfg = yaml.safe_load((tmp_path / "out-llamafactory" / "llamafactory.yaml").read_text())
    assert cfg["warmup_steps"] == 0.03


# --- a note belongs to the backend compiled for (issue 32) -----------------------------------------------------

def test_compile_says_nothing_of_how_another_backend_holds_out_rows_and_convert_does(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"ftr": 1, "model": {"base": "org/model", "template": "chatml"},
                                      "data": {"train": [{"hub": "org/chat", "format": "messages"}],
                                               "val": {"split": 0.1}}}))
    for backend in ("llamafactory", "axolotl"):
        result = CliRunner().invoke(main, ["compile", str(recipe), "-b", backend, "-o", str(tmp_path / backend)])
        assert result.exit_code == 0, result.output
        assert "shuffl" not in result.output, result.output
    result = _convert(_write(tmp_path, val_set_size=0.1), "llamafactory")
    assert "LLaMA-Factory shuffles (seeded) before holding out" in _line(result.output, "approximated", "val_set_size")


def test_the_end_of_turn_axolotl_trains_is_an_approximation_for_llamafactory_only(tmp_path):
    """Axolotl trains a reply and its EOS; LLaMA-Factory trains the template's whole assistant slot (ChatML: the
    newline after <|im_end|>): found by the conversion oracle's data check, reported by convert to LLaMA-Factory
    and not in a round trip."""
    native = _write(tmp_path, chat_template="chatml")
    result = _convert(native, "llamafactory")
    assert result.exit_code == 0, result.output
    assert "'\\n' after it" in _line(result.output, "approximated", "chat_template")
    assert "approximated 0," in _round_trip(native)[1]
    (tmp_path / "eot").mkdir()
    with_eot = _write(tmp_path / "eot", chat_template="chatml", eot_tokens=["\n"])
    assert "trains each reply and its EOS" not in _convert(with_eot, "llamafactory").output
