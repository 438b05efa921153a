"""Chat templates: ftr template name -> the llamafactory template that renders it.

A recipe may also name any LLaMA-Factory template (the catalogue), ``tokenizer`` (no ``template`` key:
LLaMA-Factory 0.9.5 then parses the tokenizer's own chat template), or an Axolotl template: the LLaMA-Factory
template that renders ftr's sample conversations identically (the generated cross-backend map), else the closest
one, with a fidelity note.
"""

from __future__ import annotations

from ft_recipes.recipe import templates as slot_templates

VERSION = "0.9.5"
OTHER = ("axolotl", "0.19.0")

TEMPLATES = slot_templates.FTR_TEMPLATES  # ftr names stand for this catalogue's templates (the reference)


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


known = slot_templates.known


def served_template(name: str | None) -> str | None:
    """The template LLaMA-Factory trains ``name`` with, as Jinja (ftr's, rendering the slots' text): LLaMA-Factory
    saves its own Jinja only into a tokenizer that has none, so a run's tokenizer keeps the base model's template.
    None for ``tokenizer`` (or none): the tokenizer's own is the one trained."""
    if name in (None, "tokenizer"):
        return None
    native = resolve(name)[0]
    template = slot_templates.catalogue("llamafactory", VERSION).get(native) if native else None
    return slot_templates.to_jinja(template) if template else None
