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

from ft_recipes.recipe import templates as slot_templates
from ft_recipes.recipe.templates import known, reference, reference_name  # noqa: F401  (known: the names a recipe may give)

REFERENCE_VERSION = slot_templates.REFERENCE[1]

# also for 0.21.0: its template catalogues are the same (tests/unit/backends/test_backend_versions.py)
VERSION = "0.19.0"
PREFIX = "axolotl:"  # a recipe template "axolotl:NAME" is Axolotl's NAME exactly

TEMPLATES = {
    "chatml": "chatml", "qwen": "qwen_25", "qwen2.5": "qwen_25", "qwen3": "qwen3", "llama3": "llama3",
    "llama2": "llama2", "mistral": "mistral_v1", "gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma3",
    "phi3": "phi_3", "phi4": "phi_4", "deepseek3": "deepseek_v3", "alpaca": "alpaca", "vicuna": "vicuna",
    "zephyr": "zephyr", "tokenizer": "tokenizer_default",
}


def chat_template_keys(name: str | None) -> dict:
    """``chat_template`` (and ``chat_template_jinja``) for ftr's template ``name``: the Axolotl template that
    renders ftr's sample conversations as the reference does (the generated map; ftr's own choice first), else
    ftr's Jinja generated from the reference's slots (exact by construction, checked by the map), else an
    Axolotl template of that name. KeyError if none."""
    if name is None:  # Axolotl's default, tokenizer_default, is the same: a file without the key keeps it so
        return {}
    if name == "tokenizer":
        return {"chat_template": "tokenizer_default"}
    if name.startswith(PREFIX):  # an Axolotl template by its own name, from an imported Axolotl file
        if name[len(PREFIX):] not in slot_templates.catalogue("axolotl", VERSION):
            raise KeyError(name)
        return {"chat_template": name[len(PREFIX):]}
    native = reference_name(name)
    if native is None:
        if name in slot_templates.catalogue("axolotl", VERSION):
            return {"chat_template": name}
        raise KeyError(name)
    entry = _map().get(native, {})
    exact = slot_templates.pick(entry.get("axolotl", []), TEMPLATES.get(name), name, native)
    if exact:
        return {"chat_template": exact}
    return {"chat_template": "jinja", "chat_template_jinja": slot_templates.to_jinja(reference(name))}


def _map() -> dict:
    full = slot_templates.cross_map("llamafactory", REFERENCE_VERSION, "axolotl", VERSION)
    return full.get("llamafactory", {}).get("templates", {})


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
    if eos and eos not in (tokenizer_eos, slot_templates.EOS_UNKNOWN):
        keys["special_tokens"] = {"eos_token": eos}
    if eos and rest and _one_token(base, rest, eos):
        keys["eot_tokens"] = [rest]
    return keys


# End-of-turn tokens whose families' tokenizers encode a lone newline as one token (byte-level BPE; Gemma).
NEWLINE_ONE_TOKEN = ("<|im_end|>", "<end_of_turn>")


def _one_token(base: str, text: str, eos: str) -> bool:
    """Axolotl refuses an eot_token that encodes as several tokens: only name one the tokenizer keeps whole."""
    whole = slot_templates.single_token(base, text)
    return whole if whole is not None else (text == "\n" and eos in NEWLINE_ONE_TOKEN)


def import_name(native: str | None) -> str | None:
    """The recipe template for an Axolotl file's ``chat_template``: a name ftr emits back as that same template
    (ftr's, or LLaMA-Factory's when it renders identically), else ``axolotl:NAME``; "tokenizer" for a written
    tokenizer_default, None for none (the same reading; each comes back as the file had it)."""
    if native is None:
        return None
    if native == "tokenizer_default":
        return "tokenizer"
    full = slot_templates.cross_map("llamafactory", REFERENCE_VERSION, "axolotl", VERSION)
    same = full.get("axolotl", {}).get("templates", {}).get(native, {}).get("llamafactory", [])
    back = [ftr for ftr, ax in TEMPLATES.items() if ax == native]
    for candidate in back + same:
        try:
            if chat_template_keys(candidate) == {"chat_template": native}:
                return candidate
        except KeyError:
            continue
    return PREFIX + native


def training_text(name: str | None, messages: list[dict], bos: str | None, eos: str | None) -> str | None:
    """The text ftr trains ``messages`` as under template ``name`` (None when it is the tokenizer's own)."""
    if name in (None, "tokenizer"):
        return None
    if slot_templates.qualified(name):
        jinja = slot_templates.named_jinja(name)
        return slot_templates.render_jinja(jinja, messages, bos, eos) if jinja else None
    template = reference(name)
    return slot_templates.render(template, messages, bos, eos) if template else None


def served_template(name: str | None) -> None:
    """None: Axolotl sets the template it trains with on the tokenizer (``load_tokenizer``) and saves it."""
    return None
