"""Chat templates on the trl backend: the Jinja that train.py sets on the tokenizer.

For a template with a slot definition (ftr's names and LLaMA-Factory's, the reference ftr trains like), the Jinja
is generated from the slots (``templates.to_jinja``), so trl renders the text LLaMA-Factory trains on, with
``{% generation %}`` around what LLaMA-Factory trains (each reply's empty thought, its whole assistant slot and the
final EOS of efficient_eos templates): trl's ``assistant_only_loss`` then trains exactly those tokens, on every
assistant turn. An Axolotl template (``axolotl:NAME``) is its own Jinja, without markers; ``tokenizer`` (or no
template) is the tokenizer's own. Without markers, train.py falls back to prompt/completion rows (the last
assistant turn trained, a fidelity note says so).
"""

from __future__ import annotations

from ft_recipes.recipe import templates as slot_templates


def chat_template(name: str | None, generation: bool = True) -> str | None:
    """The Jinja chat template trl trains ``name`` with (None: the tokenizer's own); ``generation``: with the
    markers of the trained text (training), or without (what the saved tokenizer serves: the same text)."""
    if name in (None, "tokenizer"):
        return None
    if slot_templates.qualified(name):
        return slot_templates.named_jinja(name)
    template = slot_templates.reference(name)
    return slot_templates.to_jinja(template, generation) if template else None


def marked(name: str | None) -> bool:
    """Whether trl trains ``name`` on every assistant turn exactly as the reference does (generation markers)."""
    return slot_templates.GENERATION[0] in (chat_template(name) or "")


def served_template(name: str | None) -> str | None:
    """The chat template the run directory's tokenizer carries after training (None: the tokenizer's own)."""
    return chat_template(name, generation=False)
