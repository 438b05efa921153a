"""Recipe -> LLaMA-Factory 0.9.5 config (``llamafactory.yaml``) plus its ``dataset_info.json``.

Every value whose default differs from Axolotl's is written explicitly (BACKENDS.md section 2).
"""

from __future__ import annotations

from pathlib import Path

from ...emit import Emitted, Note, apply_passthrough, deepspeed_path, unsupported
from .templates import TEMPLATES
from .templates import resolve as resolve_template
from ...recipe import PROMPT_METHODS, Dataset, Recipe

NAME = "llamafactory"
VERSION = "0.9.5"
MAIN = "llamafactory.yaml"
DATASET_INFO = "dataset_info.json"

STAGES = {"pt": ("pt", None), "sft": ("sft", None), "rm": ("rm", None), "ppo": ("ppo", None),
          "dpo": ("dpo", "sigmoid"), "orpo": ("dpo", "orpo"), "simpo": ("dpo", "simpo"), "kto": ("kto", None)}
SHAREGPT_TAGS = {"role": "role_tag", "content": "content_tag", "user": "user_tag", "assistant": "assistant_tag"}


def _dataset_entry(ds: Dataset, stage: str) -> dict:
    entry: dict = {"hf_hub_url": ds.hub} if ds.hub else {"file_name": str(ds.path)}
    if ds.split != "train":
        entry["split"] = ds.split
    if ds.num_samples:
        entry["num_samples"] = ds.num_samples
    columns: dict = {}
    if ds.format == "alpaca":
        columns = {"prompt": ds.column("instruction"), "query": ds.column("input"), "response": ds.column("output")}
        entry["formatting"] = "alpaca"
    elif ds.format == "preference":
        prompt = ds.column("prompt") if "prompt" in dict(ds.columns) else ds.column("instruction")
        columns = {"prompt": prompt,
                   "query": ds.column("input"), "chosen": ds.column("chosen"), "rejected": ds.column("rejected")}
        entry["formatting"] = "alpaca"
        entry["ranking"] = True
    elif ds.format in ("sharegpt", "messages"):
        default = "conversations" if ds.format == "sharegpt" else "messages"
        columns = {"messages": ds.column("messages") if "messages" in dict(ds.columns) else default}
        entry["formatting"] = "sharegpt"
        tags = ({"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "system_tag": "system"} if ds.format == "sharegpt" else
                {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"})
        for std, tag in SHAREGPT_TAGS.items():
            if std in dict(ds.columns):
                tags[tag] = ds.column(std)
        entry["tags"] = tags
    elif ds.format == "text":
        columns = {"prompt": ds.column("text")}
    for optional, lf_name in (("system", "system"), ("history", "history"), ("tools", "tools")):
        if optional in dict(ds.columns):
            columns[lf_name] = ds.column(optional)
    entry["columns"] = columns
    return entry


def _method(recipe: Recipe, cfg: dict) -> None:
    method = recipe.method
    cfg["finetuning_type"] = {"lora": "lora", "qlora": "lora", "full": "full", "freeze": "freeze"}[method.type]
    if method.lora:
        lora = method.lora
        cfg["lora_rank"] = lora.r
        cfg["lora_alpha"] = int(lora.alpha) if float(lora.alpha).is_integer() else lora.alpha
        cfg["lora_dropout"] = lora.dropout
        cfg["lora_target"] = "all" if lora.target == "all-linear" else ",".join(lora.target)
        cfg["use_dora"] = lora.dora
        cfg["use_rslora"] = lora.rslora
        if lora.modules_to_save:
            cfg["additional_target"] = ",".join(lora.modules_to_save)
    if method.quant:
        cfg["quantization_bit"] = method.quant.bits
        cfg["quantization_method"] = "bnb"
        if method.quant.bits == 4:
            cfg["quantization_type"] = method.quant.type
            cfg["double_quantization"] = method.quant.double_quant
    if method.freeze:
        cfg["freeze_trainable_layers"] = method.freeze.trainable_layers
        modules = method.freeze.trainable_modules
        cfg["freeze_trainable_modules"] = modules if isinstance(modules, str) else ",".join(modules)


def _notes(recipe: Recipe) -> list[Note]:
    notes = []
    quant = recipe.method.quant
    if quant and quant.bits == 4 and quant.compute_dtype != {"bf16": "bf16", "fp16": "fp16"}.get(recipe.train.precision, "fp32"):
        notes.append(Note("method.quant.compute_dtype",
                          f"LLaMA-Factory derives the 4-bit compute dtype from the training precision "
                          f"({recipe.train.precision}), not {quant.compute_dtype}"))
    if recipe.model.pad_token not in (None, "eos"):
        notes.append(Note("model.pad_token", "LLaMA-Factory has no pad-token key: it uses the tokenizer's pad token, "
                                             "or EOS when there is none"))
    if recipe.data.val_split:
        notes.append(Note("data.val.split", "LLaMA-Factory shuffles (seeded) before holding out validation rows; "
                                            "Axolotl takes them without shuffling: the rows differ"))
    return notes


def _check(recipe: Recipe) -> None:
    if recipe.method.type in PROMPT_METHODS:
        raise unsupported(recipe, ("method", "type"), f"LLaMA-Factory has no {recipe.method.type} tuning",
                          "use --backend trl, which supports prefix, ptuning and prompt tuning")
    if recipe.stage not in STAGES:
        raise unsupported(recipe, ("stage",), f"LLaMA-Factory {VERSION} has no {recipe.stage} stage",
                          "use --backend axolotl, which supports grpo")
    if recipe.data.overlength == "drop" and not recipe.data.packing:
        raise unsupported(recipe, ("data", "overlength"),
                          "LLaMA-Factory truncates over-long examples and cannot drop them",
                          "set data.overlength: truncate, or use --backend axolotl")
    template = recipe.model.template
    try:
        resolve_template(template) if template is not None else None
    except KeyError:
        raise unsupported(recipe, ("model", "template"), f"no LLaMA-Factory template for {template!r}",
                          f"known templates: {', '.join(sorted(TEMPLATES))}, or any LLaMA-Factory or Axolotl "
                          "template name") from None


def emit(recipe: Recipe, out_dir: Path) -> Emitted:
    _check(recipe)
    t, d = recipe.train, recipe.data
    stage, pref_loss = STAGES[recipe.stage]
    cfg: dict = {"model_name_or_path": recipe.model.base, "trust_remote_code": recipe.model.trust_remote_code}
    if recipe.model.revision:
        cfg["model_revision"] = recipe.model.revision
    template_note = None
    if recipe.model.template:  # issue 17: any LF/Axolotl template name; "tokenizer" = no key
        native, template_note = resolve_template(recipe.model.template)
        if native:
            cfg["template"] = native
    cfg.update({"stage": stage, "do_train": True})
    _method(recipe, cfg)
    if recipe.preference:
        cfg["pref_beta"] = recipe.preference.beta
        cfg["pref_ftx"] = recipe.preference.ftx
        if pref_loss:
            cfg["pref_loss"] = pref_loss
        if recipe.stage == "simpo":
            cfg["simpo_gamma"] = recipe.preference.simpo_gamma
    info = {ds.name: _dataset_entry(ds, recipe.stage) for ds in (*d.train, *d.val)}
    cfg["dataset"] = ",".join(ds.name for ds in d.train)
    if d.val:
        cfg["eval_dataset"] = ",".join(ds.name for ds in d.val)
    cfg["dataset_dir"] = str(out_dir)
    cfg["val_size"] = d.val_split
    cfg["cutoff_len"] = d.max_length
    cfg["packing"] = d.packing
    if d.packing and recipe.stage == "sft":
        cfg["neat_packing"] = True
    cfg["train_on_prompt"] = d.train_on_prompt
    if d.system_prompt is not None:
        cfg["default_system"] = d.system_prompt
    if d.num_workers:
        cfg["preprocessing_num_workers"] = d.num_workers
    cfg["output_dir"] = str(recipe.output.dir)
    if t.max_steps is not None:  # max_steps decides; writing epochs too would read as a contradiction
        cfg["max_steps"] = t.max_steps
    else:
        cfg["num_train_epochs"] = float(t.epochs)
        cfg["max_steps"] = -1
    cfg["per_device_train_batch_size"] = t.micro_batch_size
    cfg["gradient_accumulation_steps"] = t.grad_accum
    cfg["learning_rate"] = float(t.lr)
    cfg["lr_scheduler_type"] = t.scheduler
    # transformers 5 (LLaMA-Factory 0.9.5 pins 5.6) deprecates warmup_ratio: warmup_steps < 1 is a ratio
    cfg["warmup_steps"] = t.warmup_steps if t.warmup_steps is not None else float(t.warmup_ratio or 0.0)
    cfg["weight_decay"] = float(t.weight_decay)
    cfg["optim"] = t.optimizer
    cfg["bf16"] = t.precision == "bf16"
    cfg["fp16"] = t.precision == "fp16"
    cfg["disable_gradient_checkpointing"] = not t.gradient_checkpointing
    cfg["seed"] = t.seed
    cfg["max_grad_norm"] = float(t.max_grad_norm)
    cfg["logging_steps"] = t.logging_steps
    cfg["eval_strategy"] = recipe.eval.strategy if d.has_validation else "no"
    if recipe.eval.strategy == "steps":
        cfg["eval_steps"] = recipe.eval.steps or _ratio(recipe.eval.per_epoch, t)
    cfg["per_device_eval_batch_size"] = recipe.eval.batch_size or t.micro_batch_size
    o = recipe.output
    cfg["save_strategy"] = o.save
    if o.save == "steps":
        cfg["save_steps"] = o.save_steps or _ratio(o.per_epoch, t) or 500
    if o.save_total_limit:
        cfg["save_total_limit"] = o.save_total_limit
    cfg["report_to"] = list(o.report_to) or "none"
    if o.run_name:
        cfg["run_name"] = o.run_name
    cfg["plot_loss"] = False
    if recipe.hardware.deepspeed:
        cfg["deepspeed"] = deepspeed_path(recipe)
    notes = _notes(recipe) + ([Note("model.template", template_note)] if template_note else [])
    notes += apply_passthrough(cfg, recipe, NAME)
    emitted = Emitted(NAME, VERSION, MAIN, configs={MAIN: cfg, DATASET_INFO: info}, notes=notes)
    return emitted



def _ratio(per_epoch: int | None, t) -> float | None:
    """N times per epoch as Hugging Face's fraction-of-total-steps (what Axolotl's *_per_epoch computes)."""
    if not per_epoch:
        return None
    return round(1.0 / (per_epoch * (t.epochs if t.max_steps is None and t.epochs else 1.0)), 6)


# Recipe key -> the LLaMA-Factory key it becomes (for `ftr explain`).
NATIVE_KEYS = {
    "model.base": "model_name_or_path", "model.template": "template", "model.trust_remote_code": "trust_remote_code",
    "model.pad_token": "(tokenizer; no key)", "stage": "stage / pref_loss", "method.type": "finetuning_type",
    "method.lora.r": "lora_rank", "method.lora.alpha": "lora_alpha", "method.lora.dropout": "lora_dropout",
    "method.lora.target": "lora_target", "method.lora.dora": "use_dora", "method.lora.rslora": "use_rslora",
    "method.lora.modules_to_save": "additional_target", "method.quant.bits": "quantization_bit",
    "method.quant.type": "quantization_type", "method.quant.double_quant": "double_quantization",
    "method.quant.compute_dtype": "(from bf16/fp16)", "method.freeze.trainable_layers": "freeze_trainable_layers",
    "method.freeze.trainable_modules": "freeze_trainable_modules", "preference.beta": "pref_beta",
    "preference.ftx": "pref_ftx", "preference.simpo_gamma": "simpo_gamma", "data.train": "dataset + dataset_info.json",
    "data.val.split": "val_size", "data.val.datasets": "eval_dataset", "data.max_length": "cutoff_len",
    "data.packing": "packing / neat_packing", "data.overlength": "(always truncates)",
    "data.train_on_prompt": "train_on_prompt", "data.system_prompt": "default_system",
    "data.num_workers": "preprocessing_num_workers", "train.epochs": "num_train_epochs", "train.max_steps": "max_steps",
    "train.micro_batch_size": "per_device_train_batch_size", "train.grad_accum": "gradient_accumulation_steps",
    "train.lr": "learning_rate", "train.scheduler": "lr_scheduler_type", "train.warmup_ratio": "warmup_steps (< 1: ratio)",
    "train.warmup_steps": "warmup_steps", "train.weight_decay": "weight_decay", "train.optimizer": "optim",
    "train.precision": "bf16 / fp16", "train.gradient_checkpointing": "disable_gradient_checkpointing (negated)",
    "train.seed": "seed", "train.max_grad_norm": "max_grad_norm", "train.logging_steps": "logging_steps",
    "eval.every": "eval_strategy", "eval.steps": "eval_steps", "eval.per_epoch": "eval_steps (fraction)",
    "eval.batch_size": "per_device_eval_batch_size", "output.dir": "output_dir", "output.save": "save_strategy",
    "output.save_steps": "save_steps", "output.per_epoch": "save_steps (fraction)",
    "output.save_total_limit": "save_total_limit", "output.report_to": "report_to", "output.run_name": "run_name",
    "hardware.deepspeed": "deepspeed",
}
