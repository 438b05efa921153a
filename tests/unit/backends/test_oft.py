"""OFT (orthogonal fine-tuning, a PEFT adapter): carried from LLaMA-Factory's own OFT example to a recipe and
back with every value, to trl's peft OFTConfig, and refused for Axolotl (which has no OFT) naming the backends
that can."""

import json
import os

import yaml
from click.testing import CliRunner
from paths import ROOT

from ft_recipes.cli.main import main

LF_CORPUS = ROOT / "tests" / "data" / "realworld" / "llamafactory"
OFT_EXAMPLE = "examples/extras/oft/llama3_oft_sft.yaml"


def convert(tmp_path, target):
    cwd = os.getcwd()
    os.chdir(LF_CORPUS)  # LLaMA-Factory resolves dataset names from the working directory
    try:
        return CliRunner().invoke(main, ["convert", OFT_EXAMPLE, "--to", target, "-o", str(tmp_path / target)])
    finally:
        os.chdir(cwd)


def test_import_keeps_oft_settings():
    cwd = os.getcwd()
    os.chdir(LF_CORPUS)
    try:
        result = CliRunner().invoke(main, ["import", OFT_EXAMPLE])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    recipe = yaml.safe_load(result.stdout[result.stdout.index("ftr: 1"):])
    assert recipe["method"] == {"type": "oft", "oft": {"rank": 0, "block_size": 32, "target": "all-linear",
                                                       "dropout": 0.0}}


def test_llamafactory_round_trip_keeps_oft(tmp_path):
    result = convert(tmp_path, "llamafactory")
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "llamafactory" / "llamafactory.yaml").read_text())
    assert cfg["finetuning_type"] == "oft" and cfg["oft_block_size"] == 32 and cfg["oft_target"] == "all"
    assert cfg["oft_rank"] == 0 and cfg["module_dropout"] == 0.0


def test_trl_gets_peft_oft_config(tmp_path):
    result = convert(tmp_path, "trl")
    assert result.exit_code == 0, result.output
    cfg = json.loads((tmp_path / "trl" / "trl.json").read_text())
    assert cfg["method"]["type"] == "oft" and cfg["method"]["oft"]["block_size"] == 32
    assert "OFTConfig(r=oft[\"rank\"], oft_block_size=oft[\"block_size\"]" in (tmp_path / "trl" / "train.py").read_text()  # noqa: E501


def test_axolotl_refuses_oft_naming_who_can(tmp_path):
    result = convert(tmp_path, "axolotl")
    assert result.exit_code == 1
    assert "FTR005" in result.output and "no oft method" in result.output
    assert "--backend llamafactory" in result.output and "--backend trl" in result.output
    assert not (tmp_path / "axolotl").exists()
