"""``ftr presets list|show`` and ``ftr init``."""

from __future__ import annotations

from pathlib import Path

import click

from ft_recipes.cli.commands import emit_text, guard

STARTER = """\
# yaml-language-server: $schema={schema}
# Starter recipe written by `ftr init`. Check it with `ftr lint`, then `ftr compile` or `ftr run`.
ftr: 1
extends: [{preset}]          # see `ftr presets show` for the values it sets
model:
  base: {model}      # hub id or local path
  template: {template}           # {template_note}
  pad_token: eos             # declare it: a missing pad token breaks training
data:
  train:
    - {{path: {data}, format: {fmt}}}   # {format_note}
  val: {{split: 0.1}}          # never train without a validation set
output:
  dir: {run_dir}
"""

FORMATS = {"dpo-lora": "preference", "orpo-lora": "preference", "pretrain-lora": "text"}
DATA_FORMATS = ("alpaca", "sharegpt", "messages", "preference", "text")


@click.group("presets")
def presets_cmd() -> None:
    """List and show presets (built-in, FTR_PRESET_PATH, [tool.ftr] preset-paths, entry points)."""


@presets_cmd.command("list")
@guard
def list_cmd() -> None:
    """List every preset with its library and first comment line."""
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.load import read_text
    from ft_recipes.recipe.presets import list_presets

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
    from ft_recipes.recipe.load import read_text
    from ft_recipes.recipe.presets import find_preset

    click.echo(read_text(find_preset(name)), nl=False)


@click.command("init")
@click.option("--preset", default="lora-sft", show_default=True, help="Preset to extend.")
@click.option("--model", default="Qwen/Qwen2.5-7B-Instruct", show_default=True, help="Base model.")
@click.option("--data", default="data/train.jsonl", show_default=True, help="Training data path.")
@click.option("--template", default=None,
              help="Chat template (default: the model family's, e.g. llama3 for Llama 3; chatml if unknown).")
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default=None,
              help="Data format (default: read from the data file's first row, else the preset's).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout (never overwrites without --force).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@guard
def init_cmd(preset: str, model: str, data: str, template: str | None, fmt: str | None, output: Path | None,
             force: bool) -> None:
    """Write a commented starter recipe: the template from the model family, the format from the data."""
    from ft_recipes.recipe.presets import find_preset

    find_preset(preset)
    name = preset.split(":")[-1]
    for option, value in (("preset", preset), ("model", model), ("data", data), ("template", template)):
        if value is not None:
            _check_value(option, value)
    folder = output.parent if output is not None else Path.cwd()
    template, template_note = _template(model, template)
    rows = folder / data if (folder / data).exists() else Path(data)  # relative to the recipe, else to here
    fmt, format_note = _format(rows, fmt, FORMATS.get(name, "alpaca"))
    values = {"preset": preset, "model": model, "data": data, "fmt": fmt, "template": template,
              "run_dir": f"runs/{name}"}
    text = STARTER.format(schema=_schema_ref(folder), template_note=template_note, format_note=format_note,
                          **{key: scalar(value) for key, value in values.items()})
    _check_round_trip(text, values)
    emit_text(text, output, force)


def _template(model: str, given: str | None) -> tuple[str, str]:
    """The chat template and the comment that says where it came from."""
    from ft_recipes.recipe.modelinfo import family_template

    if given is not None:
        _check_template(given)
        return given, "chat template given to ftr init"
    family = family_template(model)
    if family is not None:
        return family[0], "the model family's chat template (ftr init read it from the model name)"
    return "chatml", "model family unknown to ftr: set the model's own (llama3, qwen, mistral, gemma, ...)"


def _check_template(name: str) -> None:
    import difflib

    from ft_recipes.core.findings import UsageError
    from ft_recipes.recipe.templates import FTR_TEMPLATES, known

    names = known()
    if name not in names:
        close = difflib.get_close_matches(name, sorted(FTR_TEMPLATES), n=1) or \
            difflib.get_close_matches(name, sorted(names), n=1)
        hint = f"did you mean {close[0]}?" if close else "`ftr rules FTR302` says where the names come from"
        raise UsageError(f"--template {name!r}: not a template any backend knows; {hint}")


def _format(path: Path, given: str | None, default: str) -> tuple[str, str]:
    """The data format and the comment that says where it came from."""
    if given is not None:
        return given, "data format given to ftr init"
    found = format_of_rows(path)
    if found is not None:
        return found, f"read from the rows of {path.name}"
    return default, "alpaca | sharegpt | messages | preference | text"


def format_of_rows(path: Path) -> str | None:
    """The recipe format of the data file's first row (None: no such file, unreadable, or no known shape)."""
    from ft_recipes.recipe.datasets import iter_rows

    try:
        row = next(iter_rows(path, limit=1), None)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(row, dict):
        return None
    if "chosen" in row and "rejected" in row:
        return "preference"
    shapes = (("conversations", "sharegpt"), ("messages", "messages"), ("instruction", "alpaca"),
              ("text", "text"))
    return next((fmt for key, fmt in shapes if key in row), None)


def _schema_ref(folder: Path) -> str:
    """The recipe schema relative to the recipe's folder, as the examples name it; a URI across drives."""
    import os

    from ft_recipes.core.paths import data_dir

    schema = data_dir("schemas") / "recipe.schema.json"
    try:
        return Path(os.path.relpath(schema, folder.resolve())).as_posix()
    except ValueError:
        return schema.as_uri()


def scalar(value: str) -> str:
    """``value`` as one YAML flow scalar, written by the YAML emitter (quoted wherever YAML needs it)."""
    import yaml

    from ft_recipes.core.findings import UsageError

    for style in (None, '"'):  # plain when it reads back as the same string under ftr's loader (YAML 1.2 floats)
        text = yaml.safe_dump(value, default_flow_style=True, default_style=style, width=10**6, allow_unicode=True)
        text = text.removesuffix("\n").removesuffix("\n...").strip()
        if "\n" not in text and _reads_back(text, value):
            return text
    raise UsageError(f"{value!r} cannot be written as one YAML value")


def _reads_back(text: str, value: str) -> bool:
    """``text`` means ``value`` both as a block value and inside a flow collection (``{path: ...}``)."""
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.load import load_text

    try:
        return load_text(f"v: {text}\nw: [{text}]\n").data == {"v": value, "w": [value]}
    except FtrError:
        return False


def _check_value(option: str, value: str) -> None:
    from ft_recipes.core.findings import UsageError

    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None or not value.strip():
        what = f"the control character {bad!r}" if bad is not None else "nothing but spaces"
        raise UsageError(f"--{option} {value!r}: contains {what}; give a plain {option} name or path")


def _check_round_trip(text: str, values: dict) -> None:
    """The written recipe must read back as exactly the given values (nothing else switched on)."""
    from ft_recipes.recipe.load import load_text

    data = load_text(text, "<ftr init>").data
    train = data["data"]["train"][0]
    got = (data["model"]["base"], data["model"]["template"], train["path"], train["format"], data["extends"],
           data.get("model", {}).get("trust_remote_code"))
    if got != (values["model"], values["template"], values["data"], values["fmt"], [values["preset"]], None):
        raise _internal_mismatch()


def _internal_mismatch():
    from ft_recipes.core.findings import UsageError

    return UsageError("the starter recipe would not read back as the given --model/--data/--preset; "
                      "quote them differently")
