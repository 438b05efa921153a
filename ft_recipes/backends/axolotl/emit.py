"""Recipe -> Axolotl 0.19 config (``axolotl.yaml``).

Chat and instruction data is rendered through the recipe's chat template (``type: chat_template``),
so a recipe means the same prompts on Axolotl as on LLaMA-Factory. Alpaca and preference rows are
rewritten into messages under ``data/`` next to the config, since Axolotl's ``type: alpaca`` uses a
fixed Alpaca prompt instead of the chat template.
"""

from __future__ import annotations

from pathlib import Path

from ...datasets import (alpaca_to_messages, iter_rows, preference_to_conversational, preference_to_conversations,
                         preference_to_messages)
from ...emit import Emitted, Note, apply_passthrough, deepspeed_path, unsupported
from ...findings import Finding, FtrError
from ...modelinfo import config as model_config
from ...modelinfo import special_token
from .templates import TEMPLATES, chat_template_keys, end_of_turn_keys
from ...recipe import PROMPT_METHODS, Dataset, Recipe

NAME = "axolotl"
VERSION = "0.19.0"
MAIN = "axolotl.yaml"

RL = {"dpo": "dpo", "orpo": "orpo", "kto": "kto", "simpo": "simpo", "grpo": "grpo"}
SCHEDULERS = {"cosine_with_min_lr": "cosine", "warmup_stable_decay": "warmup_stable_decay"}
# Preference stages whose rows ftr hands to trl in its conversational form, rendered by the chat template there.
TRL_RENDERED = ("dpo", "simpo")
CPU_FLAGS = {"lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False,
             "lora_embedding_kernel": False}


def _check(recipe: Recipe) -> None:
    if recipe.method.type in PROMPT_METHODS:
        raise unsupported(recipe, ("method", "type"), f"Axolotl has no {recipe.method.type} tuning",
                          "use --backend trl, which supports prefix, ptuning and prompt tuning")
    if recipe.stage == "ppo":
        raise unsupported(recipe, ("stage",), f"Axolotl {VERSION} has no PPO stage",
                          "use --backend llamafactory, which supports ppo")
    if recipe.stage == "kto":
        raise unsupported(recipe, ("stage",), "ftr does not yet emit KTO datasets for Axolotl",
                          "use --backend llamafactory for kto")
    try:
        chat_template_keys(recipe.model.template)
    except KeyError:
        raise unsupported(recipe, ("model", "template"), f"no Axolotl chat template for {recipe.model.template!r}",
                          f"known templates: {', '.join(sorted(TEMPLATES))}, or any LLaMA-Factory or Axolotl "
                          "template name") from None


def _rows(recipe: Recipe, ds: Dataset) -> list[dict]:
    try:
        rows = list(iter_rows(ds.path, ds.num_samples))
    except (OSError, ValueError) as exc:
        file, line, col = recipe.where(ds.key_path + ("path",))
        raise FtrError(f"{ds.path}: {exc}", [Finding(file, line, col, "FTR004", "error",
                                                     f"cannot read dataset {ds.path}: {exc}",
                                                     "Axolotl needs alpaca/preference rows rewritten as messages; "
                                                     "ftr reads .jsonl/.json", ".".join(map(str, ds.key_path)))])
    return rows


def _dataset(recipe: Recipe, ds: Dataset, out_dir: Path, data_files: dict) -> dict:
    entry: dict = {"path": ds.hub or str(ds.path)}
    if ds.hub and ds.split != "train":
        entry["split"] = ds.split
    if ds.format == "text":
        entry.update({"type": "completion", "field": ds.column("text")})
        return entry
    needs_rewrite = ds.format in ("alpaca", "preference")
    if needs_rewrite:
        if ds.hub:
            raise unsupported(recipe, ds.key_path, f"ftr cannot rewrite hub dataset {ds.hub!r} for Axolotl",
                              "download it and point `path` at the file, or convert it to messages")
        convert = alpaca_to_messages
        if ds.format == "preference":
            convert = preference_to_conversations if recipe.stage == "orpo" else preference_to_messages
            if recipe.stage in TRL_RENDERED:  # issue 17: trl renders the reply with its end of turn, as LF does
                convert = preference_to_conversational
        name = f"data/{ds.name}.jsonl"
        data_files[name] = [convert(row, ds) for row in _rows(recipe, ds)]
        entry = {"path": str(out_dir / name), "ds_type": "json"}
    elif ds.path is not None:
        entry["ds_type"] = "json" if ds.path.suffix in (".jsonl", ".json") else ds.path.suffix.lstrip(".")
    if recipe.stage == "orpo":  # ORPO keeps the SFT dataset schema and reads full conversations
        entry["type"] = "chat_template.argilla"
        return entry
    if needs_rewrite and recipe.stage in TRL_RENDERED:  # no type: rows go to trl as they are
        entry.pop("ds_type", None)
        return entry
    if ds.format == "preference" or recipe.stage in RL:
        entry.pop("ds_type", None)  # Axolotl's DPO dataset schema drops it silently
        entry.update({"type": "chat_template.default", "field_messages": "messages",
                      "field_chosen": "chosen", "field_rejected": "rejected"})
        return entry
    entry["type"] = "chat_template"
    entry["field_messages"] = "messages" if needs_rewrite else ds.column(
        "messages") if "messages" in dict(ds.columns) else ("conversations" if ds.format == "sharegpt" else "messages")
    if ds.format == "sharegpt" and not needs_rewrite:
        entry["message_property_mappings"] = {"role": ds.column("role") if "role" in dict(ds.columns) else "from",
                                              "content": ds.column("content") if "content" in dict(ds.columns)
                                              else "value"}
    entry["roles_to_train"] = ["assistant"]
    entry["train_on_eos"] = "turn"
    return entry


def _method(recipe: Recipe, cfg: dict) -> None:
    method = recipe.method
    if method.type in ("lora", "qlora"):
        cfg["adapter"] = "qlora" if method.type == "qlora" or (method.quant and method.quant.bits == 4) else "lora"
    quant = method.quant
    cfg["load_in_4bit"] = bool(quant and quant.bits == 4)
    cfg["load_in_8bit"] = bool(quant and quant.bits == 8)
    if quant and quant.bits == 4:
        kwargs = {}
        if quant.type != "nf4":
            kwargs["bnb_4bit_quant_type"] = quant.type
        if not quant.double_quant:
            kwargs["bnb_4bit_use_double_quant"] = False
        if kwargs:
            cfg["bnb_config_kwargs"] = kwargs
    if method.lora:
        lora = method.lora
        cfg["lora_r"] = lora.r
        cfg["lora_alpha"] = int(lora.alpha) if float(lora.alpha).is_integer() else lora.alpha
        cfg["lora_dropout"] = lora.dropout
        if lora.target == "all-linear":
            cfg["lora_target_linear"] = True
        else:
            cfg["lora_target_linear"] = False
            cfg["lora_target_modules"] = list(lora.target)
        cfg["peft_use_dora"] = lora.dora
        cfg["peft_use_rslora"] = lora.rslora
        if lora.modules_to_save:
            cfg["lora_modules_to_save"] = list(lora.modules_to_save)
    if method.freeze:
        cfg["unfrozen_parameters"] = _unfrozen(recipe)


def _unfrozen(recipe: Recipe) -> list[str]:
    layers = model_config(recipe.model.base).get("num_hidden_layers")
    if not isinstance(layers, int):
        raise unsupported(recipe, ("method", "freeze"),
                          "freeze tuning on Axolotl needs the model's layer count (config.json not found locally)",
                          "use a local or cached model, or set backends.axolotl.unfrozen_parameters")
    n = recipe.method.freeze.trainable_layers
    chosen = range(layers - n, layers) if n > 0 else range(0, -n)
    modules = recipe.method.freeze.trainable_modules
    suffix = r"\..*" if modules == "all" else r"\..*(" + "|".join(modules) + r").*"
    return [rf"model\.layers\.{i}{suffix}" for i in chosen]


def _notes(recipe: Recipe) -> list[Note]:
    notes = []
    if recipe.model.template == "qwen":
        notes.append(Note("model.template", "LLaMA-Factory's qwen template adds Qwen's default system prompt to rows "
                                            "without one; Axolotl's qwen_25 renders the tokenizer's template"))
    if recipe.data.val_split:
        notes.append(Note("data.val.split", "Axolotl holds out validation rows without shuffling; "
                                            "LLaMA-Factory shuffles (seeded) first"))
    return notes


def emit(recipe: Recipe, out_dir: Path) -> Emitted:
    _check(recipe)
    t, d, o = recipe.train, recipe.data, recipe.output
    cfg: dict = {"base_model": recipe.model.base, "trust_remote_code": recipe.model.trust_remote_code}
    if recipe.model.revision:
        cfg["revision_of_model"] = recipe.model.revision
    cfg.update(chat_template_keys(recipe.model.template))  # issue 17: named if it renders the same, else jinja
    if recipe.model.pad_token:
        pad = special_token(recipe.model.base, "eos") if recipe.model.pad_token == "eos" else recipe.model.pad_token
        if pad is None:
            raise unsupported(recipe, ("model", "pad_token"),
                              "pad_token: eos needs the EOS token string for Axolotl, and this model's is unknown",
                              "write the token itself, e.g. pad_token: '</s>'")
        cfg["special_tokens"] = {"pad_token": pad}
    for key, value in end_of_turn_keys(recipe.model.template, recipe.model.base).items():  # issue 17: same labels as LLaMA-Factory
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    if recipe.stage in RL:
        cfg["rl"] = RL[recipe.stage]
    if recipe.stage == "rm":
        cfg["reward_model"] = True
    _method(recipe, cfg)
    if recipe.preference and recipe.stage in RL:
        if recipe.stage == "orpo":
            cfg["orpo_alpha"] = recipe.preference.beta
        else:
            cfg["rl_beta"] = recipe.preference.beta
        if recipe.stage == "simpo":
            cfg["simpo_gamma"] = recipe.preference.simpo_gamma
    data_files: dict = {}
    cfg["datasets"] = [_dataset(recipe, ds, out_dir, data_files) for ds in d.train]
    if d.val:
        cfg["test_datasets"] = [_dataset(recipe, ds, out_dir, data_files) for ds in d.val]
    else:
        cfg["val_set_size"] = d.val_split
    if any("type" not in entry for entry in cfg["datasets"]) and recipe.stage in TRL_RENDERED:
        cfg["skip_prepare_dataset"] = True  # Axolotl's length filter tokenizes strings; trl truncates instead
    cfg["dataset_prepared_path"] = str(o.dir / "prepared")
    cfg["sequence_len"] = d.max_length
    cfg["excess_length_strategy"] = d.overlength
    cfg["sample_packing"] = d.packing
    cfg["train_on_inputs"] = d.train_on_prompt
    if d.system_prompt is not None:
        cfg["default_system_message"] = d.system_prompt
    if d.num_workers:
        cfg["dataset_num_proc"] = d.num_workers
    cfg["output_dir"] = str(o.dir)
    if t.max_steps is not None:  # max_steps decides; writing epochs too would read as a contradiction
        cfg["max_steps"] = t.max_steps
    else:
        cfg["num_epochs"] = float(t.epochs)
    cfg["micro_batch_size"] = t.micro_batch_size
    cfg["gradient_accumulation_steps"] = t.grad_accum
    cfg["learning_rate"] = float(t.lr)
    cfg["lr_scheduler"] = SCHEDULERS.get(t.scheduler, t.scheduler)
    if t.warmup_steps is not None:
        cfg["warmup_steps"] = t.warmup_steps
    else:
        cfg["warmup_ratio"] = float(t.warmup_ratio or 0.0)
    cfg["weight_decay"] = float(t.weight_decay)
    cfg["optimizer"] = t.optimizer
    cfg["bf16"] = t.precision == "bf16"
    cfg["fp16"] = t.precision == "fp16"
    cfg["tf32"] = False
    cfg["gradient_checkpointing"] = t.gradient_checkpointing
    cfg["seed"] = t.seed
    cfg["max_grad_norm"] = float(t.max_grad_norm)
    cfg["logging_steps"] = t.logging_steps
    cfg["eval_strategy"] = recipe.eval.strategy if d.has_validation else "no"
    if recipe.eval.per_epoch:
        del cfg["eval_strategy"]  # Axolotl derives steps from evals_per_epoch and refuses both
        cfg["evals_per_epoch"] = recipe.eval.per_epoch
    elif recipe.eval.strategy == "steps" and recipe.eval.steps:
        cfg["eval_steps"] = recipe.eval.steps
    cfg["eval_batch_size"] = recipe.eval.batch_size or t.micro_batch_size
    cfg["save_strategy"] = o.save
    if o.per_epoch:
        del cfg["save_strategy"]
        cfg["saves_per_epoch"] = o.per_epoch
    elif o.save == "steps" and o.save_steps:
        cfg["save_steps"] = o.save_steps
    if o.save_total_limit:
        cfg["save_total_limit"] = o.save_total_limit
    if "wandb" in o.report_to:
        cfg["use_wandb"] = True
        if o.wandb_project:
            cfg["wandb_project"] = o.wandb_project
        if o.run_name:
            cfg["wandb_name"] = o.run_name
    if "tensorboard" in o.report_to:
        cfg["use_tensorboard"] = True
    if "mlflow" in o.report_to:
        cfg["use_mlflow"] = True
    if recipe.hardware.deepspeed:
        cfg["deepspeed"] = deepspeed_path(recipe)
    if recipe.hardware.gpus == 0:
        cfg.update(CPU_FLAGS)
    notes = _notes(recipe)
    notes += apply_passthrough(cfg, recipe, NAME)
    return Emitted(NAME, VERSION, MAIN, configs={MAIN: cfg}, data_files=data_files, notes=notes)



# Recipe key -> the Axolotl key it becomes (for `ftr explain`).
NATIVE_KEYS = {
    "model.base": "base_model", "model.template": "chat_template", "model.trust_remote_code": "trust_remote_code",
    "model.pad_token": "special_tokens.pad_token", "stage": "rl / reward_model", "method.type": "adapter",
    "method.lora.r": "lora_r", "method.lora.alpha": "lora_alpha", "method.lora.dropout": "lora_dropout",
    "method.lora.target": "lora_target_linear / lora_target_modules", "method.lora.dora": "peft_use_dora",
    "method.lora.rslora": "peft_use_rslora", "method.lora.modules_to_save": "lora_modules_to_save",
    "method.quant.bits": "load_in_4bit / load_in_8bit", "method.quant.type": "bnb_config_kwargs",
    "method.quant.double_quant": "bnb_config_kwargs", "method.quant.compute_dtype": "(from bf16/fp16)",
    "method.freeze.trainable_layers": "unfrozen_parameters", "method.freeze.trainable_modules": "unfrozen_parameters",
    "preference.beta": "rl_beta / orpo_alpha", "preference.simpo_gamma": "simpo_gamma", "data.train": "datasets",
    "data.val.split": "val_set_size", "data.val.datasets": "test_datasets", "data.max_length": "sequence_len",
    "data.packing": "sample_packing", "data.overlength": "excess_length_strategy",
    "data.train_on_prompt": "train_on_inputs", "data.system_prompt": "default_system_message",
    "data.num_workers": "dataset_num_proc", "train.epochs": "num_epochs", "train.max_steps": "max_steps",
    "train.micro_batch_size": "micro_batch_size", "train.grad_accum": "gradient_accumulation_steps",
    "train.lr": "learning_rate", "train.scheduler": "lr_scheduler", "train.warmup_ratio": "warmup_ratio",
    "train.warmup_steps": "warmup_steps", "train.weight_decay": "weight_decay", "train.optimizer": "optimizer",
    "train.precision": "bf16 / fp16", "train.gradient_checkpointing": "gradient_checkpointing", "train.seed": "seed",
    "train.max_grad_norm": "max_grad_norm", "train.logging_steps": "logging_steps", "eval.every": "eval_strategy",
    "eval.steps": "eval_steps", "eval.per_epoch": "evals_per_epoch", "eval.batch_size": "eval_batch_size",
    "output.dir": "output_dir", "output.save": "save_strategy", "output.save_steps": "save_steps",
    "output.per_epoch": "saves_per_epoch", "output.save_total_limit": "save_total_limit",
    "output.report_to": "use_wandb / use_tensorboard / use_mlflow", "output.run_name": "wandb_name",
    "hardware.deepspeed": "deepspeed",
}
