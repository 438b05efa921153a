"""Chat templates: ftr template name -> the axolotl template that renders it, and the keys that make Axolotl
train exactly the tokens ftr's reference template trains after each reply.

ftr's reference for a template is its slot definition (LLaMA-Factory's catalogue, the template ftr maps the name
to there): everything from the reply to the end of its assistant slot is trained, e.g. ``reply<|im_end|>\\n`` for
ChatML. Axolotl's chat_template strategy trains the reply, the first EOS token after it (``train_on_eos: turn``)
and the first end-of-turn token after it (``train_on_eot``, tokens from ``eot_tokens``). So ftr sets the EOS to the
template's stop word (what LLaMA-Factory's ``replace_eos`` does to the tokenizer) and names what follows it (the
newline, for ChatML) as the end-of-turn token.
"""

from __future__ import annotations

from ... import templates as slot_templates
from ..llamafactory.emit import VERSION as REFERENCE_VERSION
from ..llamafactory.templates import TEMPLATES as REFERENCE

TEMPLATES = {
    "chatml": "chatml", "qwen": "qwen_25", "qwen2.5": "qwen_25", "qwen3": "qwen3", "llama3": "llama3",
    "llama2": "llama2", "mistral": "mistral_v1", "gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma3",
    "phi3": "phi_3", "phi4": "phi_4", "deepseek3": "deepseek_v3", "alpaca": "alpaca", "vicuna": "vicuna",
    "zephyr": "zephyr", "tokenizer": "tokenizer_default",
}


def reference(name: str | None) -> dict | None:
    """The slot definition ftr's template ``name`` stands for, or None."""
    native = REFERENCE.get(name or "")
    return slot_templates.catalogue("llamafactory", REFERENCE_VERSION).get(native) if native else None


def end_of_turn_keys(name: str | None, base: str = "") -> dict:
    """Top-level Axolotl keys so that the trained span after each reply is the reference template's:
    ``special_tokens.eos_token`` (the template's stop word, unless the tokenizer's EOS is known to be it already)
    and ``eot_tokens`` (what follows it)."""
    template = reference(name)
    if template is None:
        return {}
    tokenizer_eos = slot_templates.saved_token(base, "eos_token")
    eos, rest = slot_templates.after_reply(template, tokenizer_eos)
    keys: dict = {}
    if eos and eos != tokenizer_eos:
        keys["special_tokens"] = {"eos_token": eos}
    if eos and rest.strip(" "):
        keys["eot_tokens"] = [rest]
    return keys
