"""The trl backend: the emitted script compiles, reads every value from its config, and the other
backends refuse prompt-learning methods with FTR005 naming trl."""

import json
import py_compile

import pytest
from click.testing import CliRunner
from paths import ROOT

from ft_recipes.cli.main import main

EXAMPLES = ROOT / "recipes" / "examples"


def test_script_compiles_and_reads_config(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compile", str(EXAMPLES / "qlora-sft-sharegpt.yaml"), "-b", "trl", "-o",
        str(out)])
    assert result.exit_code == 0, result.output
    py_compile.compile(str(out / "train.py"), doraise=True)
    cfg = json.loads((out / "trl.json").read_text())
    assert cfg["quant"] == {"bits": 4, "type": "nf4", "double_quant": True, "compute_dtype": "bf16"}
    assert cfg["args"]["learning_rate"] == 2e-4 and cfg["args"]["optim"] == "paged_adamw_8bit"
    script = (out / "train.py").read_text()
    assert "2e-4" not in script and "0.0002" not in script  # values live in the config only


@pytest.mark.parametrize("backend", ["llamafactory", "axolotl"])
def test_prompt_methods_need_trl(backend):
    result = CliRunner().invoke(main, ["compile", str(EXAMPLES / "prefix-sft.yaml"), "-b", backend])
    assert result.exit_code == 1
    assert "FTR005" in result.output and "--backend trl" in result.output


def test_trl_refuses_what_it_cannot_run():
    result = CliRunner().invoke(main, ["compile", str(EXAMPLES / "freeze-sft.yaml"), "-b", "trl"])
    assert result.exit_code == 1 and "FTR005" in result.output
