"""LLaMA-Factory config -> recipe. Absent keys take LLaMA-Factory's own defaults (BACKENDS.md §2),
because that is what the native file means."""

from __future__ import annotations

import json
from pathlib import Path

from ...native import Mapper, Unmapped, invert
from .emit import STAGES
from .templates import TEMPLATES

TEMPLATE_BACK = invert(TEMPLATES)
STAGE_BACK = invert(STAGES)
COSMETIC = ("do_train", "overwrite_output_dir", "plot_loss", "dataset_dir", "quantization_method",
            "finetuning_type", "stage", "pref_loss", "dataset", "eval_dataset")


def _split(value) -> list[str]:
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _dataset_info(m: Mapper, base: Path) -> tuple[Path, dict]:
    directory = (base / str(m.src.get("dataset_dir", "data"))).resolve()
    info_path = directory / "dataset_info.json"
    try:
        return directory, json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return directory, {}


def _dataset(name: str, info: dict, directory: Path) -> dict | None:
    entry = info.get(name)
    if not isinstance(entry, dict):
        return None
    out: dict = {"name": name}
    if "file_name" in entry:
        out["path"] = str((directory / entry["file_name"]).resolve())
    elif "hf_hub_url" in entry:
        out["hub"] = entry["hf_hub_url"]
    else:
        return None
    cols = entry.get("columns", {})
    tags = entry.get("tags", {})
    if entry.get("ranking"):
        out["format"] = "preference"
        mapping = {"instruction": cols.get("prompt", "instruction"), "input": cols.get("query", "input"),
                   "chosen": cols.get("chosen", "chosen"), "rejected": cols.get("rejected", "rejected")}
    elif entry.get("formatting") == "sharegpt":
        role_content = tags.get("role_tag") == "role"
        out["format"] = "messages" if role_content else "sharegpt"
        mapping = {"messages": cols.get("messages", "messages" if role_content else "conversations")}
    elif set(cols) == {"prompt"}:
        out["format"] = "text"
        mapping = {"text": cols["prompt"]}
    else:
        out["format"] = "alpaca"
        mapping = {"instruction": cols.get("prompt", "instruction"), "input": cols.get("query", "input"),
                   "output": cols.get("response", "output")}
    for key in ("system", "history", "tools"):
        if key in cols:
            mapping[key] = cols[key]
    columns = {k: v for k, v in mapping.items() if k != v}
    if columns:
        out["columns"] = columns
    if entry.get("num_samples"):
        out["num_samples"] = entry["num_samples"]
    return out


def _data(m: Mapper, base: Path) -> None:
    directory, info = _dataset_info(m, base)
    for key, path in (("dataset", ("data", "train")), ("eval_dataset", ("data", "val", "datasets"))):
        names = _split(m.get(key, ""))
        entries = []
        for name in names:
            entry = _dataset(name, info, directory)
            if entry is None:
                m.notes.append(Unmapped(key, name, f"dataset {name!r} not found in {directory / 'dataset_info.json'}"))
                entry = {"name": name, "path": str(directory / name), "format": "alpaca"}
            entries.append(entry)
        if entries:
            m.put(path, entries, key)
    if m.has("val_size") and float(m.src["val_size"]) > 0:
        m.take("val_size", ("data", "val", "split"))
    m.take("cutoff_len", ("data", "max_length"), 2048)
    stage = m.src.get("stage", "sft")
    m.take("packing", ("data", "packing"), stage == "pt")
    m.cosmetic("neat_packing")
    m.take("train_on_prompt", ("data", "train_on_prompt"), False)
    m.take("default_system", ("data", "system_prompt"))
    m.take("preprocessing_num_workers", ("data", "num_workers"))


def _method(m: Mapper) -> None:
    kind = m.get("finetuning_type", "lora")
    bits = m.get("quantization_bit")
    if kind == "lora" and bits == 4:
        kind = "qlora"
    m.put(("method", "type"), kind, "finetuning_type" if m.has("finetuning_type") else None)
    if kind in ("lora", "qlora"):
        m.take("lora_rank", ("method", "lora", "r"), 8)
        rank = m.src.get("lora_rank", 8)
        m.take("lora_alpha", ("method", "lora", "alpha"), 2 * rank)
        m.take("lora_dropout", ("method", "lora", "dropout"), 0.0)
        m.take("lora_target", ("method", "lora", "target"), "all-linear",
               lambda v: "all-linear" if str(v) == "all" else _split(v))
        m.take("use_dora", ("method", "lora", "dora"), False)
        m.take("use_rslora", ("method", "lora", "rslora"), False)
        m.take("additional_target", ("method", "lora", "modules_to_save"), convert=_split)
    if bits:
        m.take("quantization_bit", ("method", "quant", "bits"))
        if bits == 4:
            m.take("quantization_type", ("method", "quant", "type"), "nf4")
            m.take("double_quantization", ("method", "quant", "double_quant"), True)
    if kind == "freeze":
        m.take("freeze_trainable_layers", ("method", "freeze", "trainable_layers"), 2)
        m.take("freeze_trainable_modules", ("method", "freeze", "trainable_modules"), "all",
               lambda v: "all" if v == "all" else _split(v))


def _train(m: Mapper) -> None:
    m.take("num_train_epochs", ("train", "epochs"), 3.0)
    m.used.add("max_steps")
    if m.has("max_steps") and int(m.src["max_steps"]) > 0:
        m.take("max_steps", ("train", "max_steps"))
    m.take("per_device_train_batch_size", ("train", "micro_batch_size"), 8)
    m.take("gradient_accumulation_steps", ("train", "grad_accum"), 1)
    m.take("learning_rate", ("train", "lr"), 5e-5)
    m.take("lr_scheduler_type", ("train", "scheduler"), "linear")
    if m.has("warmup_steps") and float(m.src["warmup_steps"]) >= 1:
        m.take("warmup_steps", ("train", "warmup_steps"), convert=int)
    elif m.has("warmup_steps"):
        m.take("warmup_steps", ("train", "warmup_ratio"))
    else:
        m.take("warmup_ratio", ("train", "warmup_ratio"), 0.0)
    m.take("weight_decay", ("train", "weight_decay"), 0.0)
    m.take("optim", ("train", "optimizer"), "adamw_torch_fused")
    precision_key = "bf16" if m.src.get("bf16") else "fp16" if m.src.get("fp16") else None
    m.put(("train", "precision"), precision_key or "fp32", precision_key)
    m.cosmetic("bf16", "fp16")
    m.take("disable_gradient_checkpointing", ("train", "gradient_checkpointing"), True, lambda v: not v)
    m.take("seed", ("train", "seed"), 42)
    m.take("max_grad_norm", ("train", "max_grad_norm"), 1.0)
    m.take("logging_steps", ("train", "logging_steps"), 500, int)


def _eval_output(m: Mapper, base: Path) -> None:
    strategy = m.get("eval_strategy", "no")
    m.put(("eval", "every"), strategy, "eval_strategy" if m.has("eval_strategy") else None)
    m.take("eval_steps", ("eval", "steps"), convert=int)
    m.take("per_device_eval_batch_size", ("eval", "batch_size"))
    m.take("output_dir", ("output", "dir"), str(base / "trainer_output"), lambda v: str((base / v).resolve()))
    m.take("save_strategy", ("output", "save"), "steps")
    m.take("save_steps", ("output", "save_steps"), 500, int)
    m.take("save_total_limit", ("output", "save_total_limit"))
    m.take("report_to", ("output", "report_to"), "none",
           lambda v: "none" if v in ("none", [], None) else ([v] if isinstance(v, str) else list(v)))
    m.take("run_name", ("output", "run_name"))
    m.take("deepspeed", ("hardware", "deepspeed"))


def to_recipe(m: Mapper, base: Path) -> None:
    m.put(("ftr",), 1)
    m.take("model_name_or_path", ("model", "base"))
    m.take("template", ("model", "template"), convert=lambda v: TEMPLATE_BACK.get(v, v))
    m.take("trust_remote_code", ("model", "trust_remote_code"), False)
    m.take("model_revision", ("model", "revision"))
    stage, loss = m.get("stage", "sft"), m.get("pref_loss", "sigmoid")
    ftr_stage = STAGE_BACK.get((stage, loss if stage == "dpo" else None), stage)
    m.put(("stage",), ftr_stage, "stage" if m.has("stage") else None)
    if ftr_stage in ("dpo", "orpo", "simpo", "kto", "rm"):
        m.take("pref_beta", ("preference", "beta"), 0.1)
        m.take("pref_ftx", ("preference", "ftx"), 0.0)
        if ftr_stage == "simpo":
            m.take("simpo_gamma", ("preference", "simpo_gamma"), 0.5)
    _method(m)
    _data(m, base)
    _train(m)
    _eval_output(m, base)
    m.cosmetic(*COSMETIC)
