#!/usr/bin/env python
"""Generate a backend's chat-template catalogue; run INSIDE that backend's environment.

    python scripts/gen_templates.py llamafactory [-o schemas/backends/templates-llamafactory-<version>.json]
    python scripts/gen_templates.py axolotl [-o schemas/backends/templates-axolotl-<version>.json]

LLaMA-Factory: every entry of ``llamafactory.data.template.TEMPLATES``. Slots are lists whose items are a string
(``{{content}}`` is the message, ``{{idx}}`` the turn index), ``{"token": T}`` (one special token by name) or
``{"special": "bos_token"|"eos_token"}`` (the tokenizer's own BOS/EOS). Per template: prefix, system, user,
assistant, observation, function slots; stop_words; efficient_eos, replace_eos, replace_jinja_template;
default_system; thought_words, enable_thinking, preserve_thinking; the Template class (``Llama2Template`` folds the
system prompt into the first user turn, ``ReasoningTemplate`` adds an empty thought block when a turn has none).

Axolotl: every member of ``axolotl.utils.schemas.enums.ChatTemplate``, with its Jinja text from
``axolotl.utils.chat_templates`` (null for ``tokenizer_default``/``jinja``, which take it from elsewhere), whether
it references ``eos_token``, and the chat_template strategy's EOS/EOT defaults (train_on_eos, train_on_eot,
roles_to_train, eot_tokens) from ``StrategyLoader._get_strategy_params`` for an empty config.
Output is stable: sorted keys, indent 1, trailing newline.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

ROOT = Path(__file__).resolve().parents[1]


def _slot(item) -> object:
    if isinstance(item, str):
        return item
    if isinstance(item, set):
        return {"special": sorted(item)[0]}
    if isinstance(item, dict):
        return {"token": item["token"]}
    raise TypeError(f"unexpected slot item {item!r}")


def _slots(formatter) -> list:
    return [_slot(item) for item in formatter.slots]


def llamafactory_templates() -> dict:
    from llamafactory.data.template import TEMPLATES

    out = {}
    for name, t in sorted(TEMPLATES.items()):
        out[name] = {
            "class": type(t).__name__,
            "prefix": _slots(t.format_prefix),
            "system": _slots(t.format_system),
            "user": _slots(t.format_user),
            "assistant": _slots(t.format_assistant),
            "observation": _slots(t.format_observation),
            "function": _slots(t.format_function),
            "tool_format": t.format_tools.tool_format,
            "default_system": t.default_system,
            "stop_words": list(t.stop_words),
            "efficient_eos": t.efficient_eos,
            "replace_eos": t.replace_eos,
            "replace_jinja_template": t.replace_jinja_template,
            "thought_words": list(t.thought_words),
            "enable_thinking": t.enable_thinking,
            "preserve_thinking": t.preserve_thinking,
            "mm_plugin": type(t.mm_plugin).__name__,
        }
    return out


def _strategy_defaults() -> dict:
    """The chat_template strategy's per-dataset defaults, as its loader fills them for an empty config."""
    from axolotl.prompt_strategies.chat_template import StrategyLoader
    from axolotl.utils.dict import DictDefault

    params = StrategyLoader()._get_strategy_params(DictDefault({}), {})
    return {k: v for k, v in params.items() if k not in ("train_on_inputs", "sequence_len")}


def axolotl_templates() -> dict:
    from axolotl.utils import chat_templates
    from axolotl.utils.schemas.enums import ChatTemplate

    get = getattr(chat_templates, "get_chat_template", None)
    texts = getattr(chat_templates, "_CHAT_TEMPLATES", None) or getattr(chat_templates, "CHAT_TEMPLATES", {})
    out = {}
    for member in ChatTemplate:
        name = member.value
        text = texts.get(name)
        if text is None and get is not None and name not in ("tokenizer_default", "jinja"):
            text = get(name)
        out[name] = {"jinja": text, "uses_eos_token": bool(text) and "eos_token" in text,
                     "source": "axolotl" if text else ("tokenizer" if name == "tokenizer_default" else "config")}
    return out


def build(backend: str) -> tuple[dict, str]:
    if backend == "llamafactory":
        version = importlib.metadata.version("llamafactory")
        return {"backend": backend, "version": version, "templates": llamafactory_templates()}, version
    version = importlib.metadata.version("axolotl")
    data = {"backend": backend, "version": version, "templates": axolotl_templates(),
            "strategy_defaults": _strategy_defaults()}
    return data, version


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=["llamafactory", "axolotl"])
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    data, version = build(args.backend)
    out = args.output or ROOT / "schemas" / "backends" / f"templates-{args.backend}-{version}.json"
    out.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    print(f"{out}: {len(data['templates'])} templates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
