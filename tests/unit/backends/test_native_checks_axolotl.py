"""Axolotl's own cross-key refusals, reported on native files: FSDP2 with bitsandbytes' 8-bit AdamW (found on
Axolotl's Mistral-4 examples, which its validate_config refuses); and a key it accepts and never uses."""

from click.testing import CliRunner

from ft_recipes.cli.main import main

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


def test_default_system_message_is_reported_as_never_used(tmp_path):
    """Axolotl 0.19/0.21 apply default_system_message only by replacing 'You are a helpful assistant.' in the
    chatml template, which has no such text: the file's system message is silently not used."""
    result = lint(tmp_path, BASE + "chat_template: chatml\ndefault_system_message: You are a pirate.\n")
    assert result.exit_code == 1 and "never uses default_system_message" in result.output
    assert ":10:1: FTR007" in result.output  # at the key's line
    assert "default_system_message" not in lint(tmp_path, BASE + "chat_template: chatml\n").output
