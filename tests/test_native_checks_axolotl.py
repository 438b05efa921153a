"""Axolotl's own cross-key refusals, reported on native files: FSDP2 with bitsandbytes' 8-bit AdamW (found on
Axolotl's Mistral-4 examples, which its validate_config refuses)."""

from click.testing import CliRunner

from ft_recipes.cli import main

BASE = """base_model: Qwen/Qwen3-0.6B
datasets:
  - {path: tatsu-lab/alpaca, type: alpaca}
learning_rate: 2.0e-5
micro_batch_size: 1
num_epochs: 1
output_dir: out
fsdp_config: {fsdp_version: 2, fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP}
"""


def lint(tmp_path, text):
    path = tmp_path / "axolotl.yaml"
    path.write_text(text)
    return CliRunner().invoke(main, ["lint", str(path), "--select", "FTR007"])


def test_fsdp2_with_bnb_8bit_adamw_is_refused(tmp_path):
    result = lint(tmp_path, BASE + "optimizer: adamw_bnb_8bit\n")
    assert result.exit_code == 1 and "FSDP2 is not compatible" in result.output and "adamw_torch_8bit" in result.output


def test_torch_8bit_adamw_or_fsdp1_is_fine(tmp_path):
    assert "FSDP2" not in lint(tmp_path, BASE + "optimizer: adamw_torch_8bit\n").output
    assert "FSDP2" not in lint(tmp_path, BASE.replace("fsdp_version: 2", "fsdp_version: 1")
                               + "optimizer: adamw_bnb_8bit\n").output
