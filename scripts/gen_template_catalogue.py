#!/usr/bin/env python
"""Generate a backend's chat-template catalogue; run INSIDE that backend's environment.

    python scripts/gen_template_catalogue.py llamafactory [-o schemas/backends/templates-llamafactory-<version>.json]
    python scripts/gen_template_catalogue.py axolotl [-o schemas/backends/templates-axolotl-<version>.json]

LLaMA-Factory: every entry of ``llamafactory.data.template.TEMPLATES``. Slots are lists whose items are a string
(``{{content}}`` is the message, ``{{idx}}`` the turn index), ``{"token": T}`` (one special token by name) or
``{"special": "bos_token"|"eos_token"}`` (the tokenizer's own BOS/EOS). Per template: prefix, system, user,
assistant, observation, function slots; stop_words; efficient_eos, replace_eos, replace_jinja_template;
system_prompt (LLaMA-Factory's default_system); thought_words, enable_thinking, preserve_thinking; the Template class (``Llama2Template`` folds the
system prompt into the first user turn, ``ReasoningTemplate`` adds an empty thought block when a turn has none).

Axolotl: every member of ``axolotl.utils.schemas.enums.ChatTemplate``, with its Jinja text from
``axolotl.utils.chat_templates`` (null for ``tokenizer_default``/``jinja``, which take it from elsewhere), whether
it references ``eos_token``, and the chat_template strategy's EOS/EOT defaults (train_on_eos, train_on_eot,
roles_to_train, eot_tokens) from ``StrategyLoader._get_strategy_params`` for an empty config.
Output is stable: sorted keys, indent 1, trailing newline.
"""  # noqa: E501

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
            "system_prompt": t.default_system,  # the default system prompt
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


def _fresh_tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def render_llamafactory(model: str) -> dict:
    """Every LLaMA-Factory template's training text for ftr's sample conversations, by LLaMA-Factory's own
    encoding (fix_special_tokens, encode_multiturn, the final EOS of efficient_eos) decoded with the tokenizer."""
    import copy

    from llamafactory.data.template import TEMPLATES

    sys.path.insert(0, str(ROOT))
    from ft_recipes.recipe.templates import SAMPLES

    out = {}
    for name, original in sorted(TEMPLATES.items()):
        tokenizer = _fresh_tokenizer(model)
        template = copy.deepcopy(original)
        try:
            template.fix_special_tokens(tokenizer)
            texts = []
            for messages in SAMPLES:
                system = messages[0]["content"] if messages[0]["role"] == "system" else None
                turns = messages[1:] if system else messages
                ids = [i for pair in template.encode_multiturn(tokenizer, turns, system) for part in pair for i in part]
                if template.efficient_eos:
                    ids.append(tokenizer.eos_token_id)
                texts.append(tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
            out[name] = {"texts": texts, "eos": tokenizer.eos_token, "bos": tokenizer.bos_token}
        except (ValueError, TypeError, RuntimeError, NotImplementedError) as exc:  # e.g. a token the model lacks
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def render_axolotl(model: str, eos_tokens: list[str]) -> dict:
    """Every named Axolotl template's text for ftr's sample conversations, rendered as the tokenizer renders a
    chat template (transformers' compiled Jinja), once per EOS token; and ftr's Jinja for each LLaMA-Factory
    template (what `chat_template: jinja` gets), rendered the same way."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    sys.path.insert(0, str(ROOT))
    from ft_recipes.recipe.templates import SAMPLES, catalogue, to_jinja

    tokenizer = _fresh_tokenizer(model)

    def one(compiled, messages: list[dict], eos: str) -> str | dict:
        try:
            return compiled.render(messages=messages, bos_token=tokenizer.bos_token, eos_token=eos,
                                   add_generation_prompt=False)
        except Exception as exc:  # noqa: BLE001  a template may refuse a conversation on purpose (raise_exception)
            return {"error": f"{type(exc).__name__}: {exc}"}

    def texts(jinja: str, eos: str) -> list:
        """One text per sample; {"error": ...} for a sample the template refuses (e.g. a system prompt)."""
        compiled = _compile_jinja_template(jinja)
        return [one(compiled, m, eos) for m in SAMPLES]

    from axolotl.utils.chat_templates import _CHAT_TEMPLATES
    from axolotl.utils.schemas.enums import ChatTemplate

    accepted = {member.value for member in ChatTemplate}  # a .jinja file the config cannot name does not count
    named = {name: {eos: texts(jinja, eos) for eos in eos_tokens} for name, jinja in sorted(_CHAT_TEMPLATES.items())
             if name in accepted}
    generated = {}
    for name, template in catalogue("llamafactory", LF_VERSION).items():
        generated[name] = texts(to_jinja(template), tokenizer.eos_token)
    return {"named": named, "generated": generated, "eos": tokenizer.eos_token}


LF_VERSION = "0.9.5"
AX_VERSION = "0.19.0"


def _similarity(a: list[str], b: list[str]) -> float:
    import difflib

    return sum(difflib.SequenceMatcher(None, x, y).ratio() for x, y in zip(a, b)) / len(a)  # a, b: texts


def template_map(lf_render: dict, ax_render: dict) -> dict:
    """Which template renders which: for each LLaMA-Factory template the Axolotl templates that render ftr's
    sample conversations to the same text (and whether ftr's generated Jinja does); for each Axolotl template
    the LLaMA-Factory templates that do, else the closest by text similarity."""
    sys.path.insert(0, str(ROOT))
    from ft_recipes.recipe.templates import catalogue, label_gap

    named = ax_render["named"]
    lf_out, ax_out = {}, {}
    for name, lf in sorted(lf_render.items()):
        if "texts" not in lf:
            lf_out[name] = {"rendered": False, "why": lf["error"], "axolotl": [], "jinja_exact": None}
            continue
        same = sorted(a for a, r in named.items() if r.get(lf["eos"]) == lf["texts"])
        lf_out[name] = {"rendered": True, "axolotl": same,
            "jinja_exact": ax_render["generated"].get(name) == lf["texts"]}
    for name, entry in lf_out.items():
        entry["label_gap"] = label_gap(catalogue("llamafactory", LF_VERSION)[name])
    for name, by_eos in sorted(named.items()):
        same = sorted(n for n, lf in lf_render.items() if "texts" in lf and by_eos.get(lf["eos"]) == lf["texts"])
        entry: dict = {"llamafactory": same}
        refused = [t["error"] for t in next(iter(by_eos.values())) if isinstance(t, dict)]
        if refused:
            entry["refuses"] = f"{len(refused)} of {len(next(iter(by_eos.values())))} samples: {refused[0]}"
        if not same:  # the closest, compared on the samples the template renders
            scored = []
            for n, lf in lf_render.items():
                if "texts" in lf:
                    pairs = [(a, b) for a, b in zip(by_eos[lf["eos"]], lf["texts"]) if isinstance(a, str)]
                    scored.append((_similarity(*zip(*pairs)) if pairs else 0.0, n == name, -len(n), n))
            score, _, _, closest = max(scored)  # ties: the same name, then the shortest
            entry.update({"closest": closest, "similarity": round(score, 3)})
        ax_out[name] = entry
    return {"llamafactory": {"version": LF_VERSION, "templates": lf_out},
            "axolotl": {"version": AX_VERSION, "templates": ax_out}, "samples": "ft_recipes.recipe.templates.SAMPLES",
            "tokenizer": "tests/fixtures/tiny.py (byte-level BPE; ChatML special tokens)"}


GAPS = {"the empty thought block before each reply is trained by the slot template and masked otherwise":
        "differ: empty thought block masked on Axolotl",
        "text before the reply in the assistant slot is trained by the slot template and masked otherwise":
        "differ: text before the reply masked on Axolotl",
        "efficient_eos trains a single EOS at the end of the conversation instead of one per reply":
        "differ: efficient_eos (one EOS per conversation)",
        "text after the reply other than an EOS and one end-of-turn token":
        "differ: end of turn is more than EOS + one token",
        "the end of turn after the EOS is more than one character: the same only where it is one token":
        "same where the tokenizer keeps the text after the EOS as one token"}


def _trl_lines(total: int) -> list[str]:
    """The trl backend's paragraph: ftr's Jinja for every LLaMA-Factory template, what it trains marked."""
    from ft_recipes.recipe.templates import catalogue

    efficient = sorted(n for n, t in catalogue("llamafactory", LF_VERSION).items() if t.get("efficient_eos"))
    return [
        "trl gets ftr's Jinja for every LLaMA-Factory template (the same text), with `{% generation %}` around what",
        "LLaMA-Factory trains (each reply's empty thought and whole assistant slot), and `assistant_only_loss`, so",
        f"the same labels are expected for {total - len(efficient)} of {total} templates, the Axolotl gaps above",
        "included; measured identical (ids and labels, multi-turn, on the family test model) for the 19 templates",
        "of tests/backends/test_templates.py (chatml, qwen, qwen3, qwen3_nothink, llama3, llama2, gemma, phi3, phi4,",
        "deepseek3, deepseekr1, mistral, vicuna, zephyr, default, yi, alpaca, granite3, smollm), where the token",
        "boundaries between slots are checked too. The",
        f"{len(efficient)} with `efficient_eos` ({', '.join(f'`{n}`' for n in efficient)}) differ on",
        "multi-turn rows only (measured: falcon, glm4): LLaMA-Factory labels the first token of each later prompt as",
        "the EOS, a label that is not the token itself (trl's labels are always the token or -100). An Axolotl",
        "template (`axolotl:NAME`) or `tokenizer` has no markers: trl trains the last reply of each conversation",
        "(a fidelity note says so).",
        "",
        "After `ftr run`, the run directory's tokenizer (and `merged/`, and `ftr merge`'s output) carries the",
        "template trained, so the model is served with what it learned: Axolotl saves it itself; for LLaMA-Factory",
        "(which keeps the base model's template when it has one) and trl (whose template carries the markers) ftr",
        "writes ftr's Jinja into `chat_template.jinja` (and `tokenizer_config.json`'s `chat_template` where present);",
        "the manifest's `chat_template` records the template, who wrote it and where.",
    ]


def docs(data: dict) -> str:
    """docs/templates.md from the cross-backend map."""
    lf, ax = data["llamafactory"]["templates"], data["axolotl"]["templates"]
    named = sum(1 for e in lf.values() if e["axolotl"])
    jinja = sum(1 for e in lf.values() if not e["axolotl"] and e["jinja_exact"])
    rendered = sum(1 for e in lf.values() if e["rendered"])
    ax_exact = sum(1 for e in ax.values() if e["llamafactory"])
    lines = [
        "# Chat templates across backends",
        "",
        "Generated by `scripts/gen_template_catalogue.py docs` from schemas/backends/templates-map-*.json; do not edit.",  # noqa: E501
        "",
        "Two templates are the same when they render ftr's sample conversations "
        "(`ft_recipes.recipe.templates.SAMPLES`:",
        "one and two exchanges, with and without a system prompt) to the same text with the same tokenizer",
        "(the tiny test tokenizer, `tests/fixtures/tiny.py`): LLaMA-Factory's text is its own encoding",
        "(`Template.encode_multiturn` after `fix_special_tokens`), Axolotl's the template's Jinja as the tokenizer",
        "renders it, with the EOS ftr gives it (the LLaMA-Factory template's stop word where it replaces the EOS).",
        "",
        "A recipe's `model.template` is an ftr name (`chatml`, `qwen`, `llama3`, ...), any LLaMA-Factory template, any",
        "Axolotl template as `axolotl:NAME` (what `ftr import` writes for an Axolotl template with no identical",
        "LLaMA-Factory one), or `tokenizer` (the model's own chat template; LLaMA-Factory then gets no `template` key",
        "and parses the tokenizer's). Each backend gets the template that renders the same text:",
        "",
        f"- **LLaMA-Factory -> Axolotl: exact for {named + jinja} of {rendered}** templates that render with the test",
        f"  tokenizer ({named} by an Axolotl template of its own, {jinja} by `chat_template: jinja` with",
        "  `chat_template_jinja` that ftr generates from the template's slots). "
        f"{len(lf) - rendered} need special tokens the test tokenizer lacks.",
        f"- **Axolotl -> LLaMA-Factory: exact for {ax_exact} of {len(ax)}** Axolotl templates; the others get the",
        "  closest LLaMA-Factory template by text similarity, with a fidelity note (LLaMA-Factory 0.9.5 takes no",
        "  Jinja; `template: tokenizer` is exact when the model's own template is the one wanted).",
        "",
        "Labels: ftr trains each reply with its whole end of turn on both backends (`docs/commands/tokens.md`):",
        f"the same labels are possible for {sum(1 for e in lf.values() if e['label_gap'] is None)} of {len(lf)} "
        "templates; the `labels` column names why not for the others (Axolotl trains a reply's content, one EOS",
        "and one end-of-turn token after it; `eot_tokens` is written only where the tokenizer keeps that token whole).",
        "",
        *_trl_lines(len(lf)),
        "",
        "## LLaMA-Factory 0.9.5 templates on Axolotl 0.19.0",
        "",
        "| LLaMA-Factory | Axolotl | text exact | labels |",
        "|---|---|---|---|",
    ]
    for name, e in sorted(lf.items()):
        labels = "same" if e["label_gap"] is None else GAPS.get(e["label_gap"], e["label_gap"])
        if not e["rendered"]:
            cells = f"`jinja` (generated) | not checked: {e['why'].split(':')[0]} with the test tokenizer"
        elif e["axolotl"]:
            cells = ", ".join(f"`{a}`" for a in e["axolotl"]) + " | yes"
        else:
            cells = f"`jinja` (generated) | {'yes' if e['jinja_exact'] else 'no'}"
        lines.append(f"| `{name}` | {cells} | {labels} |")
    lines += ["", "## Axolotl 0.19.0 templates on LLaMA-Factory 0.9.5", "",
              "| Axolotl | LLaMA-Factory | exact |", "|---|---|---|"]
    for name, e in sorted(ax.items()):
        if e["llamafactory"]:
            cell, exact = ", ".join(f"`{n}`" for n in e["llamafactory"]), "yes"
        else:
            cell = f"`{e['closest']}` (closest)"
            exact = f"no: {e['similarity']:.0%} similar"
        if e.get("refuses"):
            exact += f"; Axolotl's template refuses {e['refuses'].split(':')[0]} (system prompts)"
        lines.append(f"| `{name}` | {cell} | {exact} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=["llamafactory", "axolotl", "map", "docs"])
    parser.add_argument("--from", dest="renders", nargs=2, metavar=("LF_RENDER", "AX_RENDER"),
                        help="(map) the two --render outputs; writes the cross-backend map (no backend needed)")
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--render", metavar="MODEL_DIR",
                        help="write the backend's renderings of ftr's sample conversations with this tokenizer")
    parser.add_argument("--eos", action="append", default=[], help="(axolotl --render) EOS tokens to render with")
    args = parser.parse_args(argv)
    if args.backend == "docs":
        source = ROOT / "schemas" / "backends" / f"templates-map-llamafactory-{LF_VERSION}-axolotl-{AX_VERSION}.json"
        out = args.output or ROOT / "docs" / "templates.md"
        out.write_text(docs(json.loads(source.read_text(encoding="utf-8"))), encoding="utf-8")
        print(f"{out}: written")
        return 0
    if args.backend == "map":
        lf_render, ax_render = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.renders)
        data = template_map(lf_render, ax_render)
        out = args.output or ROOT / "schemas" / "backends" / f"templates-map-llamafactory-{LF_VERSION}-axolotl-{AX_VERSION}.json"  # noqa: E501
        out.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{out}: template map")
        return 0
    if args.render:
        data = render_llamafactory(args.render) if args.backend == "llamafactory" else \
            render_axolotl(args.render, args.eos)
        args.output.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{args.output}: renderings")
        return 0
    data, version = build(args.backend)
    out = args.output or ROOT / "schemas" / "backends" / f"templates-{args.backend}-{version}.json"
    out.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    print(f"{out}: {len(data['templates'])} templates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
