"""``ftr presets list|show`` and ``ftr init``."""

from __future__ import annotations

from pathlib import Path

import click

from . import emit_text, guard

STARTER = """\
# yaml-language-server: $schema={schema}
# Starter recipe written by `ftr init`. Check it with `ftr lint`, then `ftr compile` or `ftr run`.
ftr: 1
extends: [{preset}]          # see `ftr presets show {preset}` for the values it sets
model:
  base: {model}      # hub id or local path
  template: chatml           # chat template (chatml, llama3, qwen, mistral, gemma, ...)
  pad_token: eos             # declare it: a missing pad token breaks training
data:
  train:
    - {{path: {data}, format: {fmt}}}   # alpaca | sharegpt | messages | preference | text
  val: {{split: 0.1}}          # never train without a validation set
output:
  dir: runs/{name}
"""

FORMATS = {"dpo-lora": "preference", "orpo-lora": "preference", "pretrain-lora": "text"}


@click.group("presets")
def presets_cmd() -> None:
    """List and show presets (built-in, FTR_PRESET_PATH, [tool.ftr] preset-paths, entry points)."""


@presets_cmd.command("list")
@guard
def list_cmd() -> None:
    """List every preset with its library and first comment line."""
    from ..presets import list_presets

    for library, name, path in list_presets():
        first = next((line[1:].strip() for line in path.read_text(encoding="utf-8").splitlines()
                      if line.startswith("#")), "")
        ref = name if library == "builtin" else f"{library}:{name}"
        click.echo(f"{ref:<24} {first}")


@presets_cmd.command("show")
@click.argument("name")
@guard
def show_cmd(name: str) -> None:
    """Print preset NAME (library:name also works)."""
    from ..presets import find_preset

    click.echo(find_preset(name).read_text(encoding="utf-8"), nl=False)


@click.command("init")
@click.option("--preset", default="lora-sft", show_default=True, help="Preset to extend.")
@click.option("--model", default="Qwen/Qwen2.5-7B-Instruct", show_default=True, help="Base model.")
@click.option("--data", default="data/train.jsonl", show_default=True, help="Training data path.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout (never overwrites without --force).")
@click.option("--force", is_flag=True)
@guard
def init_cmd(preset: str, model: str, data: str, output: Path | None, force: bool) -> None:
    """Write a commented starter recipe."""
    from ..paths import data_dir
    from ..presets import find_preset

    find_preset(preset)
    text = STARTER.format(schema=(data_dir("schemas") / "recipe.schema.json").as_uri(), preset=preset,
                          model=model, data=data, fmt=FORMATS.get(preset.split(":")[-1], "alpaca"),
                          name=preset.split(":")[-1])
    emit_text(text, output, force)
