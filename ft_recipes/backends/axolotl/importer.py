"""Axolotl config -> recipe. Absent keys take Axolotl's own defaults (BACKENDS.md §2)."""

from __future__ import annotations

from pathlib import Path

from ...native import Mapper, Unmapped, invert
from .emit import RL
from .templates import import_name

RL_BACK = invert(RL)
COSMETIC = ("adapter", "load_in_4bit", "load_in_8bit", "rl", "reward_model", "datasets", "test_datasets",
            "dataset_prepared_path", "bf16", "fp16", "tf32", "lora_target_linear", "lora_target_modules",
            "chat_template", "special_tokens", "use_wandb", "use_tensorboard", "use_mlflow", "bnb_config_kwargs")


def _dataset(m: Mapper, entry: dict, where: tuple, base: Path) -> dict | None:
    if not isinstance(entry, dict) or "path" not in entry:
        return None
    path = str(entry["path"])
    local = (base / path).resolve()
    out: dict = {"path": str(local)} if local.exists() or path.startswith((".", "/")) else {"hub": path}
    kind = entry.get("type")
    mappings = entry.get("message_property_mappings") or {}
    if kind == "alpaca":
        out["format"] = "alpaca"
    elif kind == "completion":
        out["format"] = "text"
        if entry.get("field", "text") != "text":
            out["columns"] = {"text": entry["field"]}
    elif kind == "chat_template":
        sharegpt = mappings.get("role") == "from"
        out["format"] = "sharegpt" if sharegpt else "messages"
        field = entry.get("field_messages", "messages")
        if field != ("conversations" if sharegpt else "messages"):
            out["columns"] = {"messages": field}
    else:
        m.notes.append(Unmapped(f"datasets[{where[-1]}].type", kind,
                                "no recipe format for this dataset type; kept under backends.axolotl"))
        return None
    return out


def _data(m: Mapper, base: Path) -> None:
    for key, path in (("datasets", ("data", "train")), ("test_datasets", ("data", "val", "datasets"))):
        entries = m.src.get(key) or []
        converted = [_dataset(m, e, (key, i), base) for i, e in enumerate(entries)]
        if entries and all(converted):
            m.put(path, converted, key)
            m.used.add(key)
        elif entries:  # kept verbatim under backends.axolotl; the recipe gets a best guess for linting
            guess = [c or {"path": str((base / str(e.get("path", ""))).resolve()), "format": "messages"}
                     for c, e in zip(converted, entries) if isinstance(e, dict)]
            if guess:
                m.put(path, guess, key)
            m.used.discard(key)
    if m.has("val_set_size") and float(m.src["val_set_size"]) > 0:
        m.take("val_set_size", ("data", "val", "split"))
    m.take("sequence_len", ("data", "max_length"), 512)
    m.take("excess_length_strategy", ("data", "overlength"), "drop",
           lambda v: "truncate" if v == "truncate" else "drop")
    m.take("sample_packing", ("data", "packing"), False)
    m.take("train_on_inputs", ("data", "train_on_prompt"), False)
    m.take("default_system_message", ("data", "system_prompt"))
    m.take("dataset_num_proc", ("data", "num_workers"))


def _method(m: Mapper) -> None:
    adapter = m.src.get("adapter")
    four, eight = bool(m.src.get("load_in_4bit")), bool(m.src.get("load_in_8bit"))
    kind = "qlora" if adapter == "qlora" or (adapter == "lora" and four) else "lora" if adapter == "lora" else "full"
    m.put(("method", "type"), kind, "adapter" if adapter else None)
    if kind in ("lora", "qlora"):
        m.take("lora_r", ("method", "lora", "r"))
        m.take("lora_alpha", ("method", "lora", "alpha"))
        m.take("lora_dropout", ("method", "lora", "dropout"), 0.0)
        if m.src.get("lora_target_linear"):
            m.put(("method", "lora", "target"), "all-linear", "lora_target_linear")
        elif m.has("lora_target_modules"):
            modules = m.src["lora_target_modules"]
            m.put(("method", "lora", "target"), [modules] if isinstance(modules, str) else list(modules),
                  "lora_target_modules")
        m.take("peft_use_dora", ("method", "lora", "dora"), False)
        m.take("peft_use_rslora", ("method", "lora", "rslora"), False)
        m.take("lora_modules_to_save", ("method", "lora", "modules_to_save"))
    if four or eight:
        m.put(("method", "quant", "bits"), 4 if four else 8, "load_in_4bit" if four else "load_in_8bit")
        kwargs = m.src.get("bnb_config_kwargs") or {}
        if four:
            m.put(("method", "quant", "type"), kwargs.get("bnb_4bit_quant_type", "nf4"))
            m.put(("method", "quant", "double_quant"), kwargs.get("bnb_4bit_use_double_quant", True))


def _train(m: Mapper) -> None:
    m.take("num_epochs", ("train", "epochs"), 1.0)
    m.take("max_steps", ("train", "max_steps"))
    m.take("micro_batch_size", ("train", "micro_batch_size"), 1)
    m.take("gradient_accumulation_steps", ("train", "grad_accum"), 1)
    m.take("learning_rate", ("train", "lr"), convert=float)
    m.take("lr_scheduler", ("train", "scheduler"), "cosine")
    if m.has("warmup_steps"):
        m.take("warmup_steps", ("train", "warmup_steps"), convert=int)
    else:
        m.take("warmup_ratio", ("train", "warmup_ratio"), 0.03)
    m.take("weight_decay", ("train", "weight_decay"), 0.0)
    m.take("optimizer", ("train", "optimizer"), "adamw_torch_fused")
    bf16, fp16 = m.src.get("bf16", "auto"), m.src.get("fp16")
    precision = "fp16" if fp16 else "bf16" if bf16 in (True, "auto") else "fp32"
    m.put(("train", "precision"), precision, "fp16" if fp16 else "bf16" if "bf16" in m.src else None)
    m.take("gradient_checkpointing", ("train", "gradient_checkpointing"), False, bool)
    m.take("seed", ("train", "seed"), 42)
    m.take("max_grad_norm", ("train", "max_grad_norm"), 1.0)
    m.take("logging_steps", ("train", "logging_steps"), convert=int)


def _eval_output(m: Mapper, base: Path) -> None:
    if m.has("evals_per_epoch"):
        m.take("evals_per_epoch", ("eval", "per_epoch"), convert=int)
    elif m.has("eval_steps"):
        m.put(("eval", "every"), "steps", "eval_steps")
        m.take("eval_steps", ("eval", "steps"), convert=int)
    else:
        m.take("eval_strategy", ("eval", "every"), "no")
    m.take("eval_batch_size", ("eval", "batch_size"))
    m.take("output_dir", ("output", "dir"), str(base / "model-out"), lambda v: str((base / v).resolve()))
    if m.has("saves_per_epoch"):
        m.take("saves_per_epoch", ("output", "per_epoch"), convert=int)
    elif m.has("save_steps"):
        m.put(("output", "save"), "steps", "save_steps")
        m.take("save_steps", ("output", "save_steps"), convert=int)
    else:
        m.take("save_strategy", ("output", "save"), "epoch")
    m.take("save_total_limit", ("output", "save_total_limit"), 4)
    trackers = [name for key, name in (("use_wandb", "wandb"), ("use_tensorboard", "tensorboard"),
                                       ("use_mlflow", "mlflow")) if m.src.get(key)]
    if m.has("wandb_project"):
        trackers = sorted(set(trackers) | {"wandb"})
        m.take("wandb_project", ("output", "wandb_project"))
    m.put(("output", "report_to"), trackers or "none")
    m.take("wandb_name", ("output", "run_name"))
    m.take("deepspeed", ("hardware", "deepspeed"))


def to_recipe(m: Mapper, base: Path) -> None:
    m.put(("ftr",), 1)
    m.take("base_model", ("model", "base"))
    template = import_name(m.src.get("chat_template"))  # issue 17: a name ftr emits back as this template
    if template:
        m.put(("model", "template"), template, "chat_template")
    pad = (m.src.get("special_tokens") or {}).get("pad_token")
    if pad:
        m.put(("model", "pad_token"), pad, ("special_tokens", "pad_token"))
    m.take("trust_remote_code", ("model", "trust_remote_code"), False, bool)
    m.take("revision_of_model", ("model", "revision"))
    rl = m.src.get("rl")
    stage = RL_BACK.get(rl, rl) if rl else "rm" if m.src.get("reward_model") else "sft"
    if not rl and any(isinstance(d, dict) and d.get("type") == "completion" for d in m.src.get("datasets") or []):
        stage = "pt"
    m.put(("stage",), stage, "rl" if rl else None)
    if stage in ("dpo", "simpo", "kto"):
        m.take("rl_beta", ("preference", "beta"), 0.1)
    if stage == "orpo":
        m.take("orpo_alpha", ("preference", "beta"), 0.1)
    if stage == "simpo":
        m.take("simpo_gamma", ("preference", "simpo_gamma"), 0.5)
    _method(m)
    _data(m, base)
    _train(m)
    _eval_output(m, base)
    m.cosmetic(*COSMETIC)
