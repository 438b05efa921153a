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


HUB_SOURCES = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")  # LF's order


def _dataset_info(m: Mapper, base: Path) -> tuple[Path, dict | None, str]:
    """(directory, registry, why it is missing) as LLaMA-Factory finds them: ``<dataset_dir>/dataset_info.json``
    with ``dataset_dir`` (default ``data``) relative to the directory it runs in. ``ONLINE`` (names are hub
    ids) and an unreadable registry give None. Without a run directory given, a registry next to the config
    is used when the working directory has none."""
    from ...datasets import dataset_dir_override, resolve_local, run_dir_given

    value = dataset_dir_override() or m.src.get("dataset_dir", "data")
    if isinstance(value, dict):
        return base, value, ""
    if str(value) == "ONLINE" or str(value).startswith("REMOTE:"):
        return base, None, f"dataset_dir {value} names hub datasets"
    directory = resolve_local(str(value))
    candidates = [directory]
    if not run_dir_given() and not Path(str(value)).is_absolute():
        candidates.append((base / str(value)).resolve())
    for candidate in candidates:
        try:
            return candidate, json.loads((candidate / "dataset_info.json").read_text(encoding="utf-8")), ""
        except OSError:
            continue
        except ValueError as exc:
            return candidate, {}, f"{candidate / 'dataset_info.json'} is not valid JSON ({exc})"
    return directory, None, (f"{directory / 'dataset_info.json'} not found (LLaMA-Factory reads it from "
                             f"dataset_dir, relative to the directory it runs in)")


def _columns(entry: dict) -> tuple[str, dict]:
    """(recipe format, standard -> file column) for one dataset_info.json entry (LF's DatasetAttr.join)."""
    cols = entry.get("columns") or {}
    tags = entry.get("tags") or {}
    formatting = entry.get("formatting", "alpaca")
    chat = formatting in ("sharegpt", "openai")
    role_tag = tags.get("role_tag", "role" if formatting == "openai" else "from")
    content_tag = tags.get("content_tag", "content" if formatting == "openai" else "value")
    messages = cols.get("messages", "messages" if formatting == "openai" else "conversations")
    if entry.get("ranking") and chat:
        fmt = "preference"  # the prompt is the conversation; chosen/rejected are message objects
        mapping = {"prompt": messages, "chosen": cols.get("chosen", "chosen"),
                   "rejected": cols.get("rejected", "rejected")}
    elif entry.get("ranking"):
        fmt = "preference"
        mapping = {"instruction": cols.get("prompt", "instruction"), "input": cols.get("query", "input"),
                   "chosen": cols.get("chosen", "chosen"), "rejected": cols.get("rejected", "rejected")}
    elif chat:
        fmt = "messages" if (role_tag, content_tag) == ("role", "content") else "sharegpt"
        default = "messages" if fmt == "messages" else "conversations"
        mapping = {} if messages == default else {"messages": messages}
        if fmt == "sharegpt":
            mapping.update(role=role_tag, content=content_tag)
    elif set(cols) == {"prompt"}:
        fmt, mapping = "text", {"text": cols["prompt"]}
    else:
        fmt = "alpaca"
        mapping = {"instruction": cols.get("prompt", "instruction"), "input": cols.get("query", "input"),
                   "output": cols.get("response", "output")}
    for key in ("system", "history", "tools", "kto_tag"):
        if key in cols:
            mapping[key] = cols[key]
    if fmt == "sharegpt":
        mapping = {k: v for k, v in mapping.items() if (k, v) not in (("role", "from"), ("content", "value"))}
    return fmt, {k: v for k, v in mapping.items() if k != v}


def _dataset(name: str, info: dict, directory: Path) -> dict | None:
    """One dataset name -> a recipe dataset, resolved the way LLaMA-Factory resolves it (None: undefined)."""
    entry = info.get(name)
    if not isinstance(entry, dict):
        return None
    out: dict = {"name": name}
    hub = next((entry[k] for k in HUB_SOURCES if entry.get(k)), None)
    if hub is not None:
        out["hub"] = str(hub)
    elif entry.get("file_name"):
        out["path"] = str((directory / str(entry["file_name"])).resolve())
    else:
        return None
    out["format"], columns = _columns(entry)
    if columns:
        out["columns"] = columns
    if entry.get("split") not in (None, "train"):
        out["split"] = str(entry["split"])
    if isinstance(entry.get("num_samples"), int) and entry["num_samples"] > 0:
        out["num_samples"] = entry["num_samples"]
    return out


def _unresolved(m: Mapper, key: str, name: str, directory: Path, why: str) -> dict:
    """A dataset ftr cannot resolve: kept by name; a missing file is an error only when the registry was read."""
    from ...datasets import note_path

    path = directory / name
    if why:
        note_path(path, "unchecked", why)
        m.notes.append(Unmapped(key, name, f"dataset {name!r} not checked: {why}"))
    else:
        why = f"{directory / 'dataset_info.json'} does not define it (LLaMA-Factory: Undefined dataset)"
        note_path(path, "undefined", why)
        m.notes.append(Unmapped(key, name, f"dataset {name!r}: {why}"))
    return {"name": name, "path": str(path), "format": "alpaca"}


def _data(m: Mapper, base: Path) -> None:
    directory, info, why = _dataset_info(m, base)
    for key, path in (("dataset", ("data", "train")), ("eval_dataset", ("data", "val", "datasets"))):
        names = _split(m.get(key, ""))
        entries = []
        for name in names:
            entry = _dataset(name, info, directory) if info is not None else None
            if entry is None and info is None and why.startswith("dataset_dir"):
                entry = {"name": name, "hub": name, "format": "alpaca"}  # ONLINE: names are hub ids
            entries.append(entry or _unresolved(m, key, name, directory, why))
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


def needs_training_data(src: dict) -> bool:
    """Whether LLaMA-Factory trains on this config: only with ``do_train`` (inference, export, predict-only and
    evaluation configs need no ``dataset``)."""
    return bool(src.get("do_train"))


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
