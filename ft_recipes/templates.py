"""Chat templates as data: the generated per-backend catalogues (schemas/backends/templates-<backend>-<version>.json,
written by scripts/gen_template_catalogue.py) and what ftr derives from a slot template (a template given as prefix /
system / user / assistant slots, ``{{content}}`` standing for the message): the text it renders, the tokens it
trains after each reply, and a Jinja chat template that renders the same text."""

from __future__ import annotations

import json
from functools import lru_cache

from .modelinfo import read_json
from .paths import data_dir

CONTENT = "{{content}}"
EOS_UNKNOWN = "{{eos_token}}"  # the tokenizer's EOS, when ftr does not know which token that is

# The conversations two templates must render identically to count as the same template.
SAMPLES = [
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
     {"role": "assistant", "content": "Blue."}],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
     {"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Red."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
     {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another?"},
     {"role": "assistant", "content": "Red."}],
]


@lru_cache(maxsize=None)
def catalogue(backend: str, version: str) -> dict:
    """The templates of ``backend`` ``version`` by name ({} when there is no catalogue for it)."""
    path = data_dir("schemas") / "backends" / f"templates-{backend}-{version}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))["templates"]
    except (OSError, ValueError, KeyError):
        return {}


# --- the reference: what ftr's template names stand for ----------------------------------------------------
# ftr's template names stand for slot definitions in one generated catalogue (LLaMA-Factory's templates are slot
# definitions, so its catalogue is the reference); each backend maps from these names to its own templates.
# A recipe may also name a backend's own template as "BACKEND:NAME" for the backends listed in NAMED.
REFERENCE = ("llamafactory", "0.9.5")
NAMED = (("axolotl", "0.19.0"),)
NOT_NAMEABLE = ("jinja", "tokenizer_default")  # catalogue entries that are modes, not templates
FTR_TEMPLATES = {
    "chatml": "chatml", "qwen": "qwen", "qwen2.5": "qwen", "qwen3": "qwen3", "qwen3_nothink": "qwen3_nothink",
    "llama3": "llama3", "llama2": "llama2", "mistral": "mistral", "gemma": "gemma", "gemma2": "gemma",
    "gemma3": "gemma3", "phi3": "phi", "phi4": "phi4", "deepseek3": "deepseek3", "alpaca": "alpaca",
    "vicuna": "vicuna", "zephyr": "zephyr", "default": "default", "empty": "empty",
}


def reference_name(name: str | None) -> str | None:
    """The reference template ftr's template ``name`` stands for, or None."""
    if name in FTR_TEMPLATES:
        return FTR_TEMPLATES[name]
    return name if name and name in catalogue(*REFERENCE) else None


def reference(name: str | None) -> dict | None:
    """The slot definition ftr's template ``name`` stands for, or None."""
    native = reference_name(name)
    return catalogue(*REFERENCE).get(native) if native else None


def qualified(name: str | None) -> tuple[str, str, str] | None:
    """(backend, version, its template) for a "BACKEND:NAME" template name, else None."""
    head, sep, native = (name or "").partition(":")
    for backend, version in NAMED:
        if sep and head == backend:
            return backend, version, native
    return None


def named_jinja(name: str | None) -> str | None:
    """The Jinja of a "BACKEND:NAME" template, from that backend's catalogue (None if unknown or not qualified)."""
    found = qualified(name)
    return catalogue(found[0], found[1]).get(found[2], {}).get("jinja") if found else None


def known() -> set[str]:
    """Every template name a recipe may give: ftr's, the reference catalogue's, "BACKEND:NAME" and ``tokenizer``
    (read from the small name lists, schemas/backends/templates/)."""
    from .catalogue import templates as names

    out = set(FTR_TEMPLATES) | set(names(*REFERENCE).get("templates", [])) | {"tokenizer"}
    for backend, version in NAMED:
        out |= {f"{backend}:{n}" for n in names(backend, version).get("templates", []) if n not in NOT_NAMEABLE}
    return out


@lru_cache(maxsize=None)
def cross_map(a: str, a_version: str, b: str, b_version: str) -> dict:
    """The generated map between two backends' templates (templates-map-<a>-<ver>-<b>-<ver>.json): per template
    of each, the other's templates that render ftr's samples identically, or the closest one."""
    path = data_dir("schemas") / "backends" / f"templates-map-{a}-{a_version}-{b}-{b_version}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def pick(candidates: list[str], *preferred: str | None) -> str | None:
    """The first preferred name among candidates, else the first candidate."""
    return next((p for p in preferred if p in candidates), candidates[0] if candidates else None)


def eos_of(template: dict, tokenizer_eos: str | None = None) -> str | None:
    """The end-of-sequence token the template trains with: its first stop word when it replaces the
    tokenizer's EOS, else the tokenizer's own."""
    if template.get("replace_eos") and template.get("stop_words"):
        return template["stop_words"][0]
    return tokenizer_eos


def _text(item, bos: str | None, eos: str | None) -> str:
    if isinstance(item, str):
        return item
    if "token" in item:
        return item["token"]
    return {"bos_token": bos, "eos_token": eos}.get(item["special"]) or ""  # any other name renders nothing


def slot_text(slots: list, bos: str | None = None, eos: str | None = None, **values: str) -> str:
    """A slot list as text, placeholders filled (``content``, ``idx``)."""
    out = []
    for item in slots:
        text = _text(item, bos, eos)
        if isinstance(item, str):
            for name, value in values.items():
                text = text.replace("{{" + name + "}}", value, 1)
        out.append(text)
    return "".join(out)


def after_reply(template: dict, tokenizer_eos: str | None = None) -> tuple[str | None, str]:
    """What follows a reply's text in its trained span: (the EOS token if the span starts with one, the rest).
    E.g. ChatML: ("<|im_end|>", "\n"); Llama 3: ("<|eot_id|>", ""). An EOS the template takes from the tokenizer
    is ``tokenizer_eos``, or EOS_UNKNOWN when that is not known."""
    eos = eos_of(template, tokenizer_eos)
    slots = template["assistant"]
    tail = []
    for i, item in enumerate(slots):
        if isinstance(item, str) and CONTENT in item:
            tail = [item.split(CONTENT, 1)[1], *slots[i + 1:]]
            break
    if tail and tail[0] == "" and len(tail) > 1 and tail[1] == {"special": "eos_token"}:
        return eos or EOS_UNKNOWN, slot_text(tail[2:], eos=eos)
    text = slot_text(tail, eos=eos)
    if eos and text.startswith(eos):
        return eos, text[len(eos):]
    return None, text


def saved_token(base: str, which: str) -> str | None:
    """A special token (``eos_token``, ``bos_token``) as the model's local tokenizer_config.json saves it."""
    value = read_json(base, "tokenizer_config.json").get(which) if base else None
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def single_token(base: str, text: str) -> bool | None:
    """Whether the model's local tokenizer (tokenizer.json) encodes ``text`` as one token: a byte-level BPE
    vocabulary entry for it, or the text itself in the vocabulary; None when there is no local tokenizer.json."""
    data = read_json(base, "tokenizer.json") if base else {}
    vocab = (data.get("model") or {}).get("vocab")
    if not isinstance(vocab, dict):
        return None
    byte_level = "ByteLevel" in json.dumps(data.get("pre_tokenizer"))
    piece = "".join(_BYTE_LEVEL.get(ch, ch) for ch in text) if byte_level else text
    return piece in vocab


_BYTE_LEVEL = {"\n": "\u010a", " ": "\u0120", "\t": "\u0109"}


def _jinja_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _jinja_slots(slots: list, eos: str | None, placeholder: str) -> str:
    """A slot list as a Jinja expression (``+`` of literals and variables)."""
    parts = []
    for item in slots:
        if isinstance(item, str):
            for i, piece in enumerate(item.split(CONTENT)):
                if i:
                    parts.append(placeholder)
                for j, sub in enumerate(piece.split("{{idx}}")):
                    if j:
                        parts.append("(loop.index0 // 2) | string")
                    if sub:
                        parts.append(_jinja_literal(sub))
        elif "token" in item:
            parts.append(_jinja_literal(item["token"]))
        elif item["special"] == "bos_token":
            parts.append("bos_token")
        elif item["special"] == "eos_token":
            parts.append(_jinja_literal(eos) if eos else "eos_token")
    return " + ".join(parts) or "''"


def thought(template: dict) -> str:
    """The empty thought block a reasoning template puts before a reply that has none ('' for others)."""
    kind = template.get("class", "")
    if not kind.endswith("ReasoningTemplate") or template.get("enable_thinking") is False:
        return ""
    opening, closing = template["thought_words"]
    return closing if kind.startswith("Glm47") else opening + closing


def _has_thought(template: dict, content: str) -> bool:
    return any(word.strip() in content for word in template["thought_words"])


GENERATION = ("{% generation %}", "{% endgeneration %}")  # transformers' markers of the trained (assistant) text


def to_jinja(template: dict, generation: bool = False) -> str:
    """A Jinja chat template that renders the conversation as the slot template does in training: prefix, the
    system prompt (the template's default when the conversation has none) on the first turn (folded into the
    first user message for templates of class Llama2Template), user and assistant slots, an empty thought before
    replies of reasoning templates, and the final EOS of templates with efficient_eos. ``generation``: the text the
    slot template trains (each reply's empty thought and whole assistant slot, the final EOS of efficient_eos) is
    marked with ``{% generation %}``, as transformers' ``return_assistant_tokens_mask`` reads it; same text."""
    start, end = GENERATION if generation else ("", "")
    eos = eos_of(template)
    folded = template.get("class") == "Llama2Template"
    system = _jinja_slots(template["system"], eos, "system_message")
    user = _jinja_slots(template["user"], eos, "content")
    assistant = _jinja_slots(template["assistant"], eos, "content")
    empty = thought(template)
    out = []
    if template["prefix"]:
        out.append("{{ " + _jinja_slots(template["prefix"], eos, "''") + " }}")
    out.append("{% set system_message = " + _jinja_literal(template.get("system_prompt") or "") + " %}")
    out.append("{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}"
               "{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}")
    if not folded:
        out.append("{% if system_message %}{{ " + system + " }}{% endif %}")
    out.append("{% for message in loop_messages %}{% set content = message['content'] %}")
    if folded:
        out.append("{% if loop.first and system_message %}{% set content = " + system + " + content %}{% endif %}")
    out.append("{% if message['role'] == 'user' %}{{ " + user + " }}")
    out.append("{% elif message['role'] == 'assistant' %}" + start)
    if empty:
        opening, closing = (_jinja_literal(word.strip()) for word in template["thought_words"])
        out.append("{% if " + opening + " not in content and " + closing + " not in content %}{{ "
                   + _jinja_literal(empty) + " }}{% endif %}")
    out.append("{{ " + assistant + " }}" + end + "{% endif %}{% endfor %}")
    if template.get("efficient_eos"):
        out.append(start + "{{ " + (_jinja_literal(eos) if eos else "eos_token") + " }}" + end)
    return "".join(out)


def render(template: dict, messages: list[dict], bos: str | None, eos: str | None) -> str:
    """The training text of ``messages`` under the slot template (what to_jinja renders, in Python)."""
    eos = eos_of(template, eos)
    system = template.get("system_prompt") or ""
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    folded = template.get("class") == "Llama2Template"
    out = [slot_text(template["prefix"], bos, eos)]
    if system and not folded:
        out.append(slot_text(template["system"], bos, eos, content=system))
    for i, message in enumerate(messages):
        content = message["content"]
        if message["role"] == "user":
            if i == 0 and system and folded:
                content = slot_text(template["system"], bos, eos, content=system) + content
            out.append(slot_text(template["user"], bos, eos, content=content, idx=str(i // 2)))
        elif message["role"] == "assistant":
            if not _has_thought(template, content):
                out.append(thought(template))
            out.append(slot_text(template["assistant"], bos, eos, content=content))
    if template.get("efficient_eos"):
        out.append(eos or "")
    return "".join(out)


def saved_chat_template(base: str) -> str | None:
    """The chat template saved with the model's local tokenizer (chat_template.jinja, or tokenizer_config.json's
    ``chat_template``; the default one when that is a list of named templates). Never downloads."""
    from .modelinfo import model_dir

    directory = model_dir(base) if base else None
    if directory is None:
        return None
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    value = read_json(base, "tokenizer_config.json").get("chat_template")
    if isinstance(value, list):
        value = next((t.get("template") for t in value if isinstance(t, dict) and t.get("name") == "default"), None)
    return value if isinstance(value, str) else None


class TemplateRefused(Exception):
    """A chat template raised on a conversation (``raise_exception``) or is not valid Jinja."""


def render_jinja(text: str, messages: list[dict], bos: str | None, eos: str | None) -> str:
    """Render a Jinja chat template as transformers does (sandboxed, trim_blocks/lstrip_blocks). Needs jinja2."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateRefused(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(text).render(messages=messages, bos_token=bos or "", eos_token=eos or "",
                                            add_generation_prompt=False)
    except TemplateError as exc:
        raise TemplateRefused(str(exc)) from exc


def first_difference(a: str, b: str) -> tuple[int, str, str]:
    """(offset, a's text there, b's text there) of the first difference between two renderings."""
    pos = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return pos, a[max(pos - 10, 0): pos + 20], b[max(pos - 10, 0): pos + 20]


def label_gap(template: dict) -> str | None:
    """Why a backend that trains a reply's content plus one EOS and one end-of-turn token after it (Axolotl's
    chat_template) cannot train exactly what this slot template trains; None when it can."""
    if thought(template):
        return "the empty thought block before each reply is trained by the slot template and masked otherwise"
    before = template["assistant"][0] if template["assistant"] else ""
    if not (isinstance(before, str) and before.startswith(CONTENT)):
        return "text before the reply in the assistant slot is trained by the slot template and masked otherwise"
    if template.get("efficient_eos"):
        return "efficient_eos trains a single EOS at the end of the conversation instead of one per reply"
    eos, rest = after_reply(template)
    if rest and eos is None:
        return "text after the reply other than an EOS and one end-of-turn token"
    if len(rest) > 1:
        return "the end of turn after the EOS is more than one character: the same only where it is one token"
    return None


TEMPLATE_FILE = "chat_template.jinja"


def carry(directory, text: str) -> bool:
    """Make the tokenizer saved in ``directory`` carry chat template ``text`` (``chat_template.jinja``, which
    transformers reads first, and ``tokenizer_config.json``'s ``chat_template`` where it has one). True when a
    file was written; False when it carries it already or there is no saved tokenizer."""
    from pathlib import Path

    from .writes import atomic_write

    directory = Path(directory)
    config_path = directory / "tokenizer_config.json"
    if not config_path.is_file() or _saved_in(directory) == text:
        return False
    atomic_write(directory / TEMPLATE_FILE, text)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if "chat_template" in config:
        config["chat_template"] = text
        atomic_write(config_path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return True


def _saved_in(directory) -> str | None:
    jinja = directory / TEMPLATE_FILE
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    value = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
    return value if isinstance(value, str) else None
