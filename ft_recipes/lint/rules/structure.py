"""FTR0xx: structure and schema. FTR000-FTR003 are reported by the loader and the schema (validate.py);
they are registered here for their documentation and SARIF metadata."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.lint.rule import Context, Rule, rule


@rule
class YamlUnreadable(Rule):
    code = "FTR000"
    name = "yaml-unreadable"
    severity = "error"
    reported_by = "loader"
    summary = "The file is not YAML that ftr can read safely."
    what = ("Reports YAML syntax errors, duplicate keys, tags, merge keys (`<<`), recursive aliases, alias bombs, "
            "files that are not UTF-8 and files over 2 MB.")
    why = ("PyYAML keeps the last of two duplicate keys without a word, so a value you think you set is silently "
           "replaced; tags can construct objects; aliases can expand to gigabytes. None of these belong in a recipe.")
    bad = "train:\n  lr: 1.0e-4\n  lr: 2.0e-4\n"
    good = "train:\n  lr: 2.0e-4\n"
    fix = "Fix the YAML at the reported position; reuse settings with `extends:` instead of anchors and merge keys."


@rule
class UnknownKey(Rule):
    code = "FTR001"
    name = "unknown-key"
    severity = "error"
    reported_by = "schema"
    summary = "A key the recipe schema does not know, with a did-you-mean."
    what = "Reports keys that are not in schemas/recipe.schema.json, suggesting the closest known key."
    why = ("A misspelt key is not a setting: LLaMA-Factory rejects unknown keys without a hint and Axolotl silently "
           "drops them, so the run trains with a default you did not choose.")
    bad = "method:\n  lora: {r: 16, lora_alhpa: 32}\n"
    good = "method:\n  lora: {r: 16, alpha: 32}\n"
    fix = "Rename the key as suggested, or see `ftr schema` for the keys of each section."


@rule
class WrongValue(Rule):
    code = "FTR002"
    name = "wrong-value"
    severity = "error"
    reported_by = "schema"
    summary = "A value of the wrong type, or not in the allowed set."
    what = "Reports values whose type or range the schema rejects: quoted numbers, unknown optimizers or schedulers."
    why = "Backends coerce or reject such values at start-up, after the job has queued; some coerce silently."
    bad = 'method:\n  lora: {r: "8"}\ntrain:\n  optimizer: adam\n'
    good = "method:\n  lora: {r: 8}\ntrain:\n  optimizer: adamw_torch\n"
    fix = "Write numbers without quotes and pick a value from the allowed list shown in the hint."


@rule
class MissingValue(Rule):
    code = "FTR003"
    name = "missing-value"
    severity = "error"
    reported_by = "schema"
    summary = "A required value is missing (base model, training data)."
    what = "Reports a recipe without `model.base` or `data.train`, or a dataset without `format`."
    why = "Without them there is nothing to train; the backends fail late with a less helpful message."
    bad = "ftr: 1\nmodel: {template: chatml}\n"
    good = ("ftr: 1\nmodel: {base: Qwen/Qwen2.5-7B-Instruct, template: qwen}\n"
            "data:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n")
    fix = "Add the missing key; `ftr init` writes a complete starter recipe."


@rule
class MissingFile(Rule):
    code = "FTR004"
    name = "missing-file"
    messages = ('dataset_missing', 'deepspeed_missing', 'dataset_missing_native', 'dataset_beside', 'deepspeed_beside',
                'dataset_undefined', 'dataset_no_registry', 'dataset_unchecked', 'deepspeed_missing_native')
    severity = "error"
    summary = "A referenced file is missing: dataset path, `extends` target, DeepSpeed config."
    what = ("Reports a local dataset path that does not exist, a DeepSpeed config path that does not exist, and "
            "(from the resolver) an `extends` target that cannot be found or that forms a cycle. In a native "
            "LLaMA-Factory or Axolotl file, paths are resolved as the backend resolves them: against the directory "
            "it runs in (the working directory, or `--run-dir`), LLaMA-Factory dataset names through "
            "`<dataset_dir>/dataset_info.json` (a name it does not define is an error, and so is a registry that is "
            "neither there nor next to the config, or unreadable: LLaMA-Factory refuses to start). Hub datasets "
            "(`dataset_dir: ONLINE`) are not checked (info); without `--run-dir`, a file found only next to the "
            "config is a warning.")
    why = "The backend would fail only after the model has been downloaded and loaded, minutes into the job."
    bad = "data:\n  train:\n    - {path: data/trian.jsonl, format: alpaca}\n"
    good = "data:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n"
    fix = ("Fix the path: in a recipe, dataset and DeepSpeed paths are relative to the file that declares them; in a "
           "native file, to the directory the backend runs in.")
    deepspeed_presets = ("zero2", "zero3", "zero3_offload")

    def check(self, ctx: Context) -> None:
        from ft_recipes.recipe.datasets import path_note

        recipe = ctx.recipe
        for ds in recipe.data.train + recipe.data.val:
            if ds.path is not None and ds.path.exists() and path_note(ds.path, "beside"):
                ctx.report(ds.key_path + ("path",), "dataset_beside", path=ds.path, reason=path_note(ds.path, "beside"))
            if ds.path is None or ds.path.exists():
                continue
            name = ds.name or ds.path.name
            if path_note(ds.path, "unchecked"):
                ctx.report(ds.key_path + ("path",), "dataset_unchecked", name=name,
                           reason=path_note(ds.path, "unchecked"))
            elif path_note(ds.path, "no_registry"):
                ctx.report(ds.key_path + ("path",), "dataset_no_registry", name=name,
                           reason=path_note(ds.path, "no_registry"))
            elif path_note(ds.path, "undefined"):
                ctx.report(ds.key_path + ("path",), "dataset_undefined", name=name,
                           reason=path_note(ds.path, "undefined"))
            elif ctx.is_native:
                ctx.report(ds.key_path + ("path",), "dataset_missing_native", path=ds.path, backend=ctx.dialect,
                           run_dir=_run_dir())
            else:
                ctx.report(ds.key_path + ("path",), "dataset_missing", path=ds.path)
        value = recipe.hardware.deepspeed
        if value and value not in self.deepspeed_presets:
            if ctx.is_native:
                self._native_deepspeed(ctx, value)
                return
            from ft_recipes.backends.emitted import deepspeed_path  # the path the emitters will write

            target = Path(deepspeed_path(recipe))
            if not target.exists():
                ctx.report(("hardware", "deepspeed"), "deepspeed_missing", path=target)

    @staticmethod
    def _native_deepspeed(ctx: Context, value) -> None:
        """Both backends open the DeepSpeed JSON relative to the directory they run in."""
        from ft_recipes.recipe.datasets import resolve_local, run_dir_given

        if not isinstance(value, str) or value.lstrip().startswith("{"):
            return  # an inline DeepSpeed config
        target = resolve_local(value)
        beside = (Path(ctx.recipe.source_file).resolve().parent / value).resolve()
        if target.exists():
            return
        if not run_dir_given() and beside.exists():
            ctx.report(("hardware", "deepspeed"), "deepspeed_beside", path=beside, backend=ctx.dialect,
                       run_dir=_run_dir())
            return
        ctx.report(("hardware", "deepspeed"), "deepspeed_missing_native", path=target, backend=ctx.dialect,
                   run_dir=_run_dir())


def _run_dir() -> str:
    from ft_recipes.recipe.datasets import run_dir

    return str(run_dir())


@rule
class Contradiction(Rule):
    code = "FTR007"
    name = "contradictory-settings"
    messages = ('quant_full', 'steps_and_epochs')
    severity = "error"
    summary = ("Settings that contradict each other (quantization with full fine-tuning; epochs and max_steps; "
               "a native value its backend overrides).")
    what = ("Reports 4/8-bit quantization of the base model with full or freeze fine-tuning, and `train.epochs` "
            "together with `train.max_steps` in the same file (a preset's epochs overridden by the recipe's "
            "max_steps is fine; in a native file, which its backend runs with max_steps winning, a warning). On a "
            "native file, also a value its backend accepts and then overrides (each "
            "backend lists them: e.g. one that turns a feature on unless another key turns it off, or Axolotl's "
            "default_system_message, which it accepts and never uses).")
    why = ("Quantized weights cannot be updated by the optimizer: QLoRA trains LoRA adapters on top of the frozen "
           "4-bit model. With both epochs and max_steps, the Hugging Face Trainer silently lets max_steps win.")
    bad = "method:\n  type: full\n  quant: {bits: 4}\n"
    good = "method:\n  type: qlora\n  quant: {bits: 4, type: nf4}\n"
    fix = "Use `method.type: qlora` for 4-bit training, or drop `method.quant`; keep one of epochs and max_steps."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        quant = recipe.method.quant
        if quant is not None and not recipe.method.saves_adapter:
            ctx.report(("method", "quant"), "quant_full", bits=quant.bits, method=recipe.method.type)
        train = recipe.train
        written = recipe.provenance  # only values the user wrote, not defaults filled in by ftr or a backend
        if train.epochs is not None and train.max_steps is not None and \
                ("train", "epochs") in written and ("train", "max_steps") in written:
            if written[("train", "epochs")].file == written[("train", "max_steps")].file:
                # a native file runs as written (max_steps wins): a warning there, an error in a recipe
                ctx.report(("train", "max_steps"), "steps_and_epochs", epochs=train.epochs, steps=train.max_steps)
