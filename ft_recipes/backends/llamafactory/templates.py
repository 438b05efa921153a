"""Chat templates: ftr template name -> the llamafactory template that renders it.

A recipe may also name any LLaMA-Factory template (the catalogue), ``tokenizer`` (no ``template`` key:
LLaMA-Factory 0.9.5 then parses the tokenizer's own chat template), or an Axolotl template: the LLaMA-Factory
template that renders ftr's sample conversations identically (the generated cross-backend map), else the closest
one, with a fidelity note.
"""

from __future__ import annotations

from ... import templates as slot_templates

VERSION = "0.9.5"
OTHER = ("axolotl", "0.19.0")

TEMPLATES = {
    "chatml": "chatml", "qwen": "qwen", "qwen2.5": "qwen", "qwen3": "qwen3", "qwen3_nothink": "qwen3_nothink",
    "llama3": "llama3", "llama2": "llama2", "mistral": "mistral", "gemma": "gemma", "gemma2": "gemma",
    "gemma3": "gemma3", "phi3": "phi", "phi4": "phi4", "deepseek3": "deepseek3", "alpaca": "alpaca",
    "vicuna": "vicuna", "zephyr": "zephyr", "default": "default", "empty": "empty",
}


def resolve(name: str) -> tuple[str | None, str | None]:
    """(LLaMA-Factory template or None for the tokenizer's own, a fidelity note or None); KeyError if unknown."""
    if name == "tokenizer":
        return None, None
    if name in TEMPLATES:
        return TEMPLATES[name], None
    if name in slot_templates.catalogue("llamafactory", VERSION):
        return name, None
    name = name.removeprefix(OTHER[0] + ":")  # "axolotl:NAME": Axolotl's own NAME (an imported Axolotl file)
    other = slot_templates.cross_map("llamafactory", VERSION, *OTHER).get(OTHER[0], {}).get("templates", {})
    entry = other.get(name)
    if entry is None:
        raise KeyError(name)
    exact = slot_templates.pick(entry["llamafactory"], name)
    if exact:
        return exact, None
    return entry["closest"], (f"LLaMA-Factory has no template that renders like Axolotl's {name!r}; using the closest, "
                              f"{entry['closest']!r} ({entry['similarity']:.0%} similar text on ftr's samples)")


def known() -> set[str]:
    """Every template name a recipe may give: ftr's, LLaMA-Factory's, ``axolotl:NAME``, ``tokenizer`` (read from
    the backends' small name lists, schemas/backends/templates/)."""
    from ...catalogue import templates as names

    ax = names("axolotl", "0.19.0").get("templates", [])
    return (set(TEMPLATES) | set(names("llamafactory", "0.9.5").get("templates", [])) | {"tokenizer"}
            | {"axolotl:" + n for n in ax if n not in ("jinja", "tokenizer_default")})


def served_template(name: str | None) -> str | None:
    """The template LLaMA-Factory trains ``name`` with, as Jinja (ftr's, rendering the slots' text): LLaMA-Factory
    saves its own Jinja only into a tokenizer that has none, so a run's tokenizer keeps the base model's template.
    None for ``tokenizer`` (or none): the tokenizer's own is the one trained."""
    if name in (None, "tokenizer"):
        return None
    native = resolve(name)[0]
    template = slot_templates.catalogue("llamafactory", VERSION).get(native) if native else None
    return slot_templates.to_jinja(template) if template else None
