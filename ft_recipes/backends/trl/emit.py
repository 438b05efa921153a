"""Recipe -> a readable transformers + peft + trl training script (``train.py``) and its config
(``trl.json``). The script holds no values: it reads them all from the config."""

from __future__ import annotations

from pathlib import Path

from ...emit import Emitted, Note, header, unsupported
from ...recipe import Dataset, Recipe

NAME = "trl"
VERSION = "1.9.0"
MAIN = "trl.json"
SCRIPT = "train.py"
STAGES = ("sft", "pt", "dpo")
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

NATIVE_KEYS = {
    "model.base": "model", "model.template": "template", "model.pad_token": "pad_token",
    "method.lora.r": "LoraConfig.r", "method.lora.alpha": "LoraConfig.lora_alpha",
    "method.lora.dropout": "LoraConfig.lora_dropout", "method.lora.target": "LoraConfig.target_modules",
    "method.quant.bits": "BitsAndBytesConfig", "method.prompt.num_virtual_tokens": "num_virtual_tokens",
    "train.lr": "args.learning_rate", "train.epochs": "args.num_train_epochs", "train.max_steps": "args.max_steps",
    "train.micro_batch_size": "args.per_device_train_batch_size", "train.grad_accum": "args.gradient_accumulation_steps",
    "train.scheduler": "args.lr_scheduler_type", "train.warmup_ratio": "args.warmup_steps (< 1: ratio)",
    "train.weight_decay": "args.weight_decay", "train.optimizer": "args.optim", "train.precision": "args.bf16 / fp16",
    "train.gradient_checkpointing": "args.gradient_checkpointing", "train.seed": "args.seed",
    "data.max_length": "max_length", "data.packing": "packing", "data.val.split": "val_split",
    "eval.every": "args.eval_strategy", "output.dir": "args.output_dir", "preference.beta": "beta",
}


def _check(recipe: Recipe) -> None:
    if recipe.stage not in STAGES:
        raise unsupported(recipe, ("stage",), f"the trl backend runs sft, pt and dpo, not {recipe.stage}",
                          "use --backend llamafactory or axolotl")
    if recipe.method.type == "freeze":
        raise unsupported(recipe, ("method", "type"), "the trl backend has no freeze tuning",
                          "use --backend llamafactory")
    if recipe.stage == "dpo" and recipe.method.type in ("prefix", "ptuning", "prompt"):
        raise unsupported(recipe, ("method", "type"), "DPO with prompt-learning methods is not supported by TRL",
                          "use lora or qlora for dpo")
    for ds in (*recipe.data.train, *recipe.data.val):
        if ds.hub:
            raise unsupported(recipe, ds.key_path, "the trl backend reads local .jsonl files",
                              "download the dataset and set path:")


def _dataset(ds: Dataset) -> dict:
    return {"path": str(ds.path), "format": ds.format, "columns": dict(ds.columns), "num_samples": ds.num_samples}


def _method(recipe: Recipe) -> dict:
    method = recipe.method
    out: dict = {"type": method.type}
    if method.lora:
        lora = method.lora
        out["lora"] = {"r": lora.r, "alpha": lora.alpha, "dropout": lora.dropout,
                       "target": LINEAR if lora.target == "all-linear" else list(lora.target),
                       "dora": lora.dora, "rslora": lora.rslora, "modules_to_save": list(lora.modules_to_save)}
    if method.prompt:
        out["prompt"] = {"num_virtual_tokens": method.prompt.num_virtual_tokens,
                         "encoder_hidden_size": method.prompt.encoder_hidden_size}
    return out


def _args(recipe: Recipe) -> dict:
    t, o, d = recipe.train, recipe.output, recipe.data
    args = {"output_dir": str(o.dir), "num_train_epochs": float(t.epochs or 1.0),
            "max_steps": t.max_steps if t.max_steps is not None else -1,
            "per_device_train_batch_size": t.micro_batch_size, "gradient_accumulation_steps": t.grad_accum,
            "learning_rate": float(t.lr), "lr_scheduler_type": t.scheduler, "weight_decay": float(t.weight_decay),
            "optim": t.optimizer, "bf16": t.precision == "bf16", "fp16": t.precision == "fp16",
            "gradient_checkpointing": t.gradient_checkpointing, "seed": t.seed,
            "max_grad_norm": float(t.max_grad_norm), "logging_steps": t.logging_steps,
            "eval_strategy": recipe.eval.strategy if d.has_validation else "no",
            "per_device_eval_batch_size": recipe.eval.batch_size or t.micro_batch_size,
            "save_strategy": o.save, "report_to": list(o.report_to) or "none"}
    if t.warmup_steps is not None:
        args["warmup_steps"] = t.warmup_steps
    else:  # transformers 5 reads warmup_steps < 1 as a ratio (warmup_ratio is gone)
        args["warmup_steps"] = float(t.warmup_ratio or 0.0)
    if recipe.eval.strategy == "steps" and recipe.eval.steps:
        args["eval_steps"] = recipe.eval.steps
    if o.save == "steps" and o.save_steps:
        args["save_steps"] = o.save_steps
    if o.save_total_limit:
        args["save_total_limit"] = o.save_total_limit
    if recipe.method.type in ("prefix", "ptuning", "prompt"):
        args["gradient_checkpointing"] = False  # virtual-token methods do not support it
    return args


def emit(recipe: Recipe, out_dir: Path) -> Emitted:
    _check(recipe)
    quant = recipe.method.quant
    cfg = {"generated_by": header(recipe, NAME, VERSION).splitlines()[0].lstrip("# "), "model": recipe.model.base, "trust_remote_code": recipe.model.trust_remote_code,
           "template": recipe.model.template, "pad_token": recipe.model.pad_token,
           "stage": "dpo" if recipe.stage == "dpo" else "sft", "method": _method(recipe),
           "quant": {"bits": quant.bits, "type": quant.type, "double_quant": quant.double_quant,
                     "compute_dtype": quant.compute_dtype} if quant else None,
           "precision": recipe.train.precision, "train": [_dataset(ds) for ds in recipe.data.train],
           "val": [_dataset(ds) for ds in recipe.data.val], "val_split": recipe.data.val_split,
           "max_length": recipe.data.max_length, "packing": recipe.data.packing,
           "system_prompt": recipe.data.system_prompt,
           "beta": recipe.preference.beta if recipe.preference else 0.1,
           "merge": bool(recipe.backends.get(NAME, {}).get("merge", False)), "args": _args(recipe)}
    for key, value in recipe.backends.get(NAME, {}).items():
        if key != "merge":
            cfg["args"][key] = value
    script = (Path(__file__).with_name("train_script.py")).read_text(encoding="utf-8")
    notes = [Note("data.train", "multi-turn rows train on the last assistant turn only (prompt/completion form)")]
    return Emitted(NAME, VERSION, MAIN, configs={MAIN: cfg, SCRIPT: script}, notes=notes)
