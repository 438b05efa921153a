"""FTR305: the template the model is trained with is the one it will be served with."""

from __future__ import annotations

from ft_recipes.lint.rule import Context, Rule, rule


def _training_text(name: str, messages: list[dict], bos: str | None, eos: str | None) -> str | None:
    """The training text under template ``name``, from the first backend whose templates part renders it."""
    from ft_recipes.backends import all_backends

    for backend in all_backends():
        module = backend.part("templates")
        render = getattr(module, "training_text", None) if module else None
        text = render(name, messages, bos, eos) if render else None
        if text is not None:
            return text
    return None


def _renders_turns(jinja: str) -> bool:
    """A chat template reads the messages and their content (placeholders such as "{{ messages }}" do not)."""
    return "messages" in jinja and "content" in jinja


@rule
class InferenceTemplate(Rule):
    code = "FTR305"
    name = "inference-template-differs"
    messages = ('differs', 'family')
    options = ('instruct_markers',)
    severity = "warning"
    summary = "The model's own chat template renders a conversation differently from the training template."
    what = ("When the base model's tokenizer is on this machine (a local path or the local Hugging Face cache; "
            "never a download) and has a chat template, renders ftr's sample conversations (one and two exchanges, "
            "with and without a system prompt) with it and with the recipe's `model.template`, and reports the "
            "first difference. When the tokenizer is not on this machine, an instruct or chat model of a known family "
            "(`modelinfo.FAMILY_TEMPLATES`: Qwen, Llama 2/3, Mistral, Gemma, Phi, Zephyr) is checked by name: "
            "a template of another family is reported. Silent when `model.template` is unset, `tokenizer` or a "
            "backend's own (`axolotl:NAME`).")
    why = ("Serving stacks (vLLM, TGI, transformers pipelines, Ollama imports) format prompts with the tokenizer's "
           "saved chat template. A model trained on another format sees unfamiliar prompts in deployment: answers "
           "degrade, or it never emits its end-of-turn token and runs on.")
    bad = "model: {base: ./models/Qwen2.5-7B-Instruct, template: llama3}\n"
    good = "model: {base: ./models/Qwen2.5-7B-Instruct, template: qwen}\n"
    fix = ("Set `model.template` to the model's own family (or `tokenizer`), or ship the trained model with the "
           "training template in its tokenizer_config.json.")

    @staticmethod
    def example_setup(directory) -> None:
        """The examples' local model: a tokenizer whose saved chat template is Qwen's (ChatML)."""
        from ft_recipes.recipe import templates

        model = directory / "models" / "Qwen2.5-7B-Instruct"
        model.mkdir(parents=True)
        (model / "chat_template.jinja").write_text(templates.to_jinja(templates.reference("qwen")), encoding="utf-8")
        (model / "tokenizer_config.json").write_text('{"eos_token": "<|im_end|>"}', encoding="utf-8")

    def check(self, ctx: Context) -> None:
        from ft_recipes.recipe import templates

        recipe = ctx.recipe
        if recipe.model.template in (None, "tokenizer"):
            return
        saved = templates.saved_chat_template(recipe.model.base)
        if saved is None:
            self._by_family(ctx)
            return
        if not _renders_turns(saved):
            return  # a saved template that renders no conversation: nothing to compare
        bos = templates.saved_token(recipe.model.base, "bos_token")
        eos = templates.saved_token(recipe.model.base, "eos_token")
        # every sample the model's template accepts: a default system prompt shows only in those without one
        for messages in templates.SAMPLES:
            try:
                served = templates.render_jinja(saved, messages, bos, eos)
                trained = _training_text(recipe.model.template, messages, bos, eos)
            except templates.TemplateRefused:
                continue
            if trained is not None and served != trained:
                pos, ours, theirs = templates.first_difference(trained, served)
                ctx.report(("model", "template"), "differs", template=recipe.model.template, offset=pos,
                           trained=ours, served=theirs)
                return

    @staticmethod
    def _by_family(ctx: Context) -> None:
        """No tokenizer on this machine: an instruct model of a known family against its family's template."""
        from ft_recipes.lint.rules.model import known_templates
        from ft_recipes.recipe.modelinfo import family_template

        model = ctx.recipe.model
        if model.template not in known_templates():
            return  # FTR302 reports it
        name = model.base.lower().rsplit("/", 1)[-1]
        family = None if model.is_local else family_template(model.base)
        if family is None or ":" in model.template or not any(m in name for m in ctx["instruct_markers"]):
            return  # a base model may learn any template; a backend's own template is taken as meant
        own, stems = family
        if not model.template.lower().startswith(stems):
            ctx.report(("model", "template"), "family", template=model.template, base=model.base, own=own)
