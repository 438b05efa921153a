"""``ftr presets list|show`` and ``ftr init``."""

from __future__ import annotations

from pathlib import Path

import click

from . import emit_text, guard

STARTER = """\
# yaml-language-server: $schema={schema}
# Starter recipe written by `ftr init`. Check it with `ftr lint`, then `ftr compile` or `ftr run`.
ftr: 1
extends: [{preset}]          # see `ftr presets show` for the values it sets
model:
  base: {model}      # hub id or local path
  template: chatml           # chat template (chatml, llama3, qwen, mistral, gemma, ...)
  pad_token: eos             # declare it: a missing pad token breaks training
data:
  train:
    - {{path: {data}, format: {fmt}}}   # alpaca | sharegpt | messages | preference | text
  val: {{split: 0.1}}          # never train without a validation set
output:
  dir: {run_dir}
"""

FORMATS = {"dpo-lora": "preference", "orpo-lora": "preference", "pretrain-lora": "text"}


@click.group("presets")
def presets_cmd() -> None:
    """List and show presets (built-in, FTR_PRESET_PATH, [tool.ftr] preset-paths, entry points)."""


@presets_cmd.command("list")
@guard
def list_cmd() -> None:
    """List every preset with its library and first comment line."""
    from ..findings import FtrError
    from ..load import read_text
    from ..presets import list_presets

    for library, name, path in list_presets():
        try:
            first = next((line[1:].strip() for line in read_text(path).splitlines() if line.startswith("#")), "")
        except FtrError as exc:  # listed anyway, with what is wrong with it
            first = f"(unreadable: {exc})"
        ref = name if library == "builtin" else f"{library}:{name}"
        click.echo(f"{ref:<24} {first}")


@presets_cmd.command("show")
@click.argument("name")
@guard
def show_cmd(name: str) -> None:
    """Print preset NAME (library:name also works)."""
    from ..load import read_text
    from ..presets import find_preset

    click.echo(read_text(find_preset(name)), nl=False)


@click.command("init")
@click.option("--preset", default="lora-sft", show_default=True, help="Preset to extend.")
@click.option("--model", default="Qwen/Qwen2.5-7B-Instruct", show_default=True, help="Base model.")
@click.option("--data", default="data/train.jsonl", show_default=True, help="Training data path.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout (never overwrites without --force).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@guard
def init_cmd(preset: str, model: str, data: str, output: Path | None, force: bool) -> None:
    """Write a commented starter recipe."""
    from ..paths import data_dir
    from ..presets import find_preset

    find_preset(preset)
    name = preset.split(":")[-1]
    values = {"preset": preset, "model": model, "data": data, "fmt": FORMATS.get(name, "alpaca"),
              "run_dir": f"runs/{name}"}
    for option in ("preset", "model", "data"):
        _check_value(option, values[option])
    text = STARTER.format(schema=(data_dir("schemas") / "recipe.schema.json").as_uri(),
                          **{key: scalar(value) for key, value in values.items()})
    _check_round_trip(text, values)
    emit_text(text, output, force)


def scalar(value: str) -> str:
    """``value`` as one YAML flow scalar, written by the YAML emitter (quoted wherever YAML needs it)."""
    import yaml

    from ..findings import UsageError

    for style in (None, '"'):  # plain when it reads back as the same string under ftr's loader (YAML 1.2 floats)
        text = yaml.safe_dump(value, default_flow_style=True, default_style=style, width=10**6, allow_unicode=True)
        text = text.removesuffix("\n").removesuffix("\n...").strip()
        if "\n" not in text and _reads_back(text, value):
            return text
    raise UsageError(f"{value!r} cannot be written as one YAML value")


def _reads_back(text: str, value: str) -> bool:
    """``text`` means ``value`` both as a block value and inside a flow collection (``{path: ...}``)."""
    from ..findings import FtrError
    from ..load import load_text

    try:
        return load_text(f"v: {text}\nw: [{text}]\n").data == {"v": value, "w": [value]}
    except FtrError:
        return False


def _check_value(option: str, value: str) -> None:
    from ..findings import UsageError

    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None or not value.strip():
        what = f"the control character {bad!r}" if bad is not None else "nothing but spaces"
        raise UsageError(f"--{option} {value!r}: contains {what}; give a plain {option} name or path")


def _check_round_trip(text: str, values: dict) -> None:
    """The written recipe must read back as exactly the given values (nothing else switched on)."""
    from ..load import load_text

    data = load_text(text, "<ftr init>").data
    train = data["data"]["train"][0]
    if (data["model"]["base"], train["path"], data["extends"], data.get("model", {}).get("trust_remote_code")) != (
            values["model"], values["data"], [values["preset"]], None):
        raise _internal_mismatch()


def _internal_mismatch():
    from ..findings import UsageError

    return UsageError("the starter recipe would not read back as the given --model/--data/--preset; "
                      "quote them differently")
