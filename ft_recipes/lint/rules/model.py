"""FTR3xx: tokenizer and model."""

from __future__ import annotations

import difflib

from ft_recipes.lint.rule import Context, Rule, rule


def known_templates() -> set[str]:
    """ftr template names some backend can express."""
    from ft_recipes.backends import all_backends

    return {name for b in all_backends() for name in (b.capabilities.templates or ())}


@rule
class PadToken(Rule):
    code = "FTR301"
    name = "pad-token-missing"
    messages = ('none',)
    options = ('families_with_pad',)
    severity = "warning"
    summary = "No pad token declared, and the tokenizer is not known to have one."
    what = ("Reports a recipe without `model.pad_token` when the model's tokenizer (local or in the Hugging Face "
            "cache) has no pad token, or, when the tokenizer is not on this machine, when the model family is not "
            "one whose tokenizers ship a pad token (`families_with_pad`).")
    why = ("Batching needs a pad token. Axolotl stops when a Llama-family tokenizer has none; LLaMA-Factory silently "
           "sets pad = eos. pad = eos is fine for models whose eos ends every turn, but it should be a decision.")
    bad = "model: {base: meta-llama/Meta-Llama-3-8B}\n"
    good = "model: {base: meta-llama/Meta-Llama-3-8B, pad_token: eos}\n"
    fix = "Set `model.pad_token: eos`, or the tokenizer's pad token string."

    def check(self, ctx: Context) -> None:
        from ft_recipes.recipe.modelinfo import read_json, special_token

        model = ctx.recipe.model
        if model.pad_token is not None:
            return
        if read_json(model.base, "tokenizer_config.json") or read_json(model.base, "special_tokens_map.json"):
            if special_token(model.base, "pad") is None:
                ctx.report(("model", "base"), "none", base=model.base)
            return
        if not any(f in model.base.lower() for f in ctx["families_with_pad"]):
            ctx.report(("model", "base"), "none", base=model.base)


@rule
class ChatTemplate(Rule):
    code = "FTR302"
    name = "chat-template-missing"
    messages = ('no_template_local', 'no_template_hub', 'unknown_template',
                'unknown_native_template')
    options = ('stages', 'formats', 'native_template_types')
    severity = "error"
    summary = "No chat template for a chat-format SFT dataset, or a template no backend knows."
    what = ("For SFT on alpaca, sharegpt or messages data without `model.template`: an error when the tokenizer is "
            "on this machine and has no `chat_template`; a warning when it is not (the hub tokenizer may have its "
            "own). Not on a native Axolotl file whose datasets all use a fixed prompt (`type: alpaca`, "
            "`completion`, `input_output`, `messages`, ...): only `type: chat_template` uses the template. A "
            "`model.template` unknown to every backend is an error; in a native LLaMA-Factory or Axolotl "
            "file, a template that is not in that backend version's own list (generated from its source by "
            "scripts/gen_templates.py) is an error.")
    why = ("The template decides the prompt format at training and at inference; without one the backend falls back "
           "to a generic format the model never sees in deployment, and the fine-tune looks broken.")
    bad = "model: {base: ./models/my-base}\ndata:\n  train:\n    - {path: data/chat.jsonl, format: sharegpt}\n"
    good = ("model: {base: ./models/my-base, template: chatml}\ndata:\n  train:\n"
            "    - {path: data/chat.jsonl, format: sharegpt}\n")
    fix = "Set `model.template` to the template of the model family (chatml, llama3, qwen, mistral, gemma ...)."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        template = recipe.model.template
        if template is not None:
            if ctx.is_native:
                self._known_native(ctx)
            else:
                self._known(ctx, template)
            return
        if recipe.stage not in ctx["stages"]:
            return
        chat = [ds for ds in recipe.data.train if ds.format in ctx["formats"]]
        if chat and self._templated(ctx):
            self._missing(ctx, chat[0].format)

    @staticmethod
    def _templated(ctx: Context) -> bool:
        """Whether the rows get a template the file does not name: always for a recipe; for a native file that
        names none, unless its backend's dataset types say otherwise (``native_template_types``: then when one
        of its datasets has such a type)."""
        if not ctx.is_native:
            return True
        from ft_recipes.backends.catalogue import templates

        if (ctx.native or {}).get(templates(ctx.dialect, ctx.version).get("key", "")):
            return False  # a template the file names (Axolotl's tokenizer_default) is no missing one
        spec = ctx.get("native_template_types", {}).get(ctx.dialect)
        if not spec:
            return True
        entries = (ctx.native or {}).get(spec["list"])
        kinds = [e.get(spec["key"]) for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        return any(isinstance(kind, str) and kind.split(".")[0] in spec["types"] for kind in kinds)

    @staticmethod
    def _known(ctx: Context, template: str) -> None:
        known = known_templates()
        if template not in known:
            close = difflib.get_close_matches(template, sorted(known), n=1)
            suggestion = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(known))}"
            ctx.report(("model", "template"), "unknown_template", template=template, suggestion=suggestion)

    @staticmethod
    def _known_native(ctx: Context) -> None:
        """A native file's template is judged by the backend's own list (scripts/gen_templates.py)."""
        from ft_recipes.backends.catalogue import template_known, templates

        data = templates(ctx.dialect, ctx.version)
        name = (ctx.native or {}).get(data.get("key", ""))
        if not isinstance(name, str) or template_known(ctx.dialect, ctx.version, name) is not False:
            return
        close = difflib.get_close_matches(name, data["templates"], n=1)
        ctx.report(("model", "template"), "unknown_native_template", template=name, backend=ctx.dialect,
                   version=data["version"], count=len(data["templates"]),
                   suggestion=f"did you mean {close[0]}?" if close else "see the backend's template list")

    @staticmethod
    def _missing(ctx: Context, fmt: str) -> None:
        from ft_recipes.recipe.modelinfo import read_json

        base = ctx.recipe.model.base
        tokenizer = read_json(base, "tokenizer_config.json")
        if tokenizer:
            if not tokenizer.get("chat_template"):
                ctx.report(("model", "base"), "no_template_local", base=base, format=fmt)
        else:
            ctx.report(("model", "base"), "no_template_hub", base=base, format=fmt)


@rule
class PreferenceFromBase(Rule):
    code = "FTR303"
    name = "preference-on-base-model"
    messages = ('base_model',)
    options = ('instruct_markers',)
    severity = "info"
    summary = "A preference stage starting from what looks like a base (non-instruct) model."
    what = ("For dpo/orpo/kto/simpo with a hub model id that has none of `instruct_markers` in its name. Local "
            "models (often the SFT checkpoint), a pipeline stage that starts from an earlier stage and ORPO (which "
            "includes an SFT loss) are not reported.")
    why = "DPO refines a model that already follows instructions; on a base model it has little to work with."
    bad = "model: {base: Qwen/Qwen2.5-7B}\nstage: dpo\n"
    good = "model: {base: Qwen/Qwen2.5-7B-Instruct}\nstage: dpo\n"
    fix = "Run an SFT stage first and start DPO from its output, or start from an instruct model."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        if recipe.stage not in ("dpo", "kto", "simpo") or recipe.model.is_local or recipe.parent is not None:
            return
        name = recipe.model.base.lower().rsplit("/", 1)[-1]
        if not any(marker in name for marker in ctx["instruct_markers"]):
            ctx.report(("model", "base"), "base_model", stage=recipe.stage, base=recipe.model.base)


@rule
class TrustRemoteCode(Rule):
    code = "FTR304"
    name = "trust-remote-code"
    messages = ('remote_code',)
    severity = "warning"
    summary = "trust_remote_code is enabled."
    what = "Reports `model.trust_remote_code: true`."
    why = "It runs Python code from the model repository with your credentials and data on the training machine."
    bad = "model: {base: some/model, trust_remote_code: true}\n"
    good = "model: {base: some/model, trust_remote_code: true, revision: 3f2a1c9}   # ftr: noqa: FTR304\n"
    fix = "Turn it off when the architecture is in transformers; otherwise pin `model.revision` and suppress."

    def check(self, ctx: Context) -> None:
        if ctx.recipe.model.trust_remote_code:
            ctx.report(("model", "trust_remote_code"), "remote_code")
