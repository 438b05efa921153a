"""`train.gradient_checkpointing: offload`: Axolotl's `gradient_checkpointing: offload` (and the
`activation_offloading: true` 0.19 turns it into), LLaMA-Factory's `use_unsloth_gc`, trl's
`activation_offloading`; imported from each dialect and emitted to each backend, with a fidelity note where
the offloading implementation differs."""

import json

import yaml
from click.testing import CliRunner

from ft_recipes.cli.main import main


def write(tmp_path, name, text):
    (tmp_path / "d.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    path = tmp_path / name
    path.write_text(text)
    return path


AXOLOTL = """base_model: Qwen/Qwen3-0.6B
datasets:
  - {path: d.jsonl, type: chat_template}
adapter: lora
lora_r: 8
lora_alpha: 16
lora_target_linear: true
learning_rate: 2.0e-4
micro_batch_size: 2
gradient_accumulation_steps: 4
num_epochs: 1
gradient_checkpointing: offload
output_dir: out
"""


def imported(tmp_path, path):
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.stdout[result.stdout.index("ftr: 1"):])


def test_axolotl_offload_both_spellings_import_as_offload(tmp_path):
    assert imported(tmp_path, write(tmp_path, "a.yaml", AXOLOTL))["train"]["gradient_checkpointing"] == "offload"
    new = AXOLOTL.replace("gradient_checkpointing: offload",
        "gradient_checkpointing: true\nactivation_offloading: true")
    assert imported(tmp_path, write(tmp_path, "b.yaml", new))["train"]["gradient_checkpointing"] == "offload"
    disk = AXOLOTL.replace("gradient_checkpointing: offload",
        "gradient_checkpointing: true\nactivation_offloading: disk")
    recipe = imported(tmp_path, write(tmp_path, "c.yaml", disk))
    assert recipe["train"]["gradient_checkpointing"] is True  # disk offloading has no recipe value: kept as is
    assert recipe["backends"]["axolotl"]["activation_offloading"] == "disk"


def test_offload_reaches_every_backend(tmp_path):
    path = write(tmp_path, "a.yaml", AXOLOTL)
    result = CliRunner().invoke(main, ["convert", str(path), "--to", "llamafactory", "-o", str(tmp_path / "lf")])
    assert result.exit_code == 0, result.output
    assert "use_unsloth_gc" in result.output  # the fidelity note: another offloading implementation
    cfg = yaml.safe_load((tmp_path / "lf" / "llamafactory.yaml").read_text())
    assert cfg["use_unsloth_gc"] is True and cfg["disable_gradient_checkpointing"] is False
    back = imported(tmp_path, tmp_path / "lf" / "llamafactory.yaml")
    assert back["train"]["gradient_checkpointing"] == "offload"
    result = CliRunner().invoke(main, ["convert", str(path), "--to", "trl", "-o", str(tmp_path / "trl")])
    assert result.exit_code == 0, result.output
    args = json.loads((tmp_path / "trl" / "trl.json").read_text())["args"]
    assert args["gradient_checkpointing"] is True and args["activation_offloading"] is True
    result = CliRunner().invoke(main, ["convert", str(path), "--to", "axolotl", "-o", str(tmp_path / "ax")])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((tmp_path / "ax" / "axolotl.yaml").read_text())
    assert cfg["gradient_checkpointing"] is True and cfg["activation_offloading"] is True
