"""LLaMA-Factory config -> recipe. Plain keys come back through the key table (keys.py); absent keys take
LLaMA-Factory's own defaults (BACKENDS.md section 2), because that is what the native file means."""

from __future__ import annotations

import json
from pathlib import Path

from ...native import Mapper, Unmapped, invert
from ..keys import as_int
from .emit import STAGES
from .keys import TABLE

STAGE_BACK = invert(STAGES)
COSMETIC = ("do_train", "overwrite_output_dir", "plot_loss", "dataset_dir", "quantization_method",
            "finetuning_type", "stage", "pref_loss", "dataset", "eval_dataset", "neat_packing", "bf16", "fp16",
            "max_steps")


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
    stage = m.src.get("stage", "sft")
    m.take("packing", ("data", "packing"), stage == "pt")


def _method(m: Mapper) -> list[str]:
    """The method type and the recipe sections it opens."""
    kind = m.get("finetuning_type", "lora")
    bits = m.src.get("quantization_bit")
    if kind == "lora" and bits == 4:
        kind = "qlora"
    m.put(("method", "type"), kind, "finetuning_type" if m.has("finetuning_type") else None)
    sections = []
    if kind in ("lora", "qlora"):
        sections.append("method.lora")
        rank = as_int(m.src.get("lora_rank", 8))
        if not m.has("lora_alpha") and isinstance(rank, int):  # LLaMA-Factory: lora_alpha defaults to 2 x rank
            m.put(("method", "lora", "alpha"), 2 * rank)
    if bits:
        sections.append("method.quant")
    if kind == "freeze":
        sections.append("method.freeze")
    return sections


def _train(m: Mapper) -> None:
    if m.has("max_steps") and as_int(m.src["max_steps"]) != -1:
        m.take("max_steps", ("train", "max_steps"), convert=as_int)
    warmup = m.src.get("warmup_steps")
    if isinstance(warmup, float) and 0 <= warmup < 1:  # transformers reads warmup_steps < 1 as a ratio
        m.take("warmup_steps", ("train", "warmup_ratio"))
    elif m.has("warmup_steps"):
        m.take("warmup_steps", ("train", "warmup_steps"), convert=as_int)
    else:
        m.take("warmup_ratio", ("train", "warmup_ratio"), 0.0)
    precision_key = "bf16" if m.src.get("bf16") else "fp16" if m.src.get("fp16") else None
    m.put(("train", "precision"), precision_key or "fp32", precision_key)


def _per_epoch(m: Mapper, key: str) -> int | None:
    """A fraction of the total steps that is N times per epoch (what ftr writes for per_epoch), else None."""
    ratio, epochs = m.src.get(key), m.src.get("num_train_epochs", 3.0)
    if not (isinstance(ratio, float) and 0 < ratio < 1):
        return None
    if as_int(m.src.get("max_steps", -1)) not in (-1, None):
        epochs = 1.0
    if not isinstance(epochs, (int, float)) or epochs <= 0:
        return None
    times = 1.0 / (ratio * epochs)
    return round(times) if abs(times - round(times)) < 1e-3 else None


def _eval_output(m: Mapper, base: Path) -> None:
    strategy = m.get("eval_strategy", "no")
    per_epoch = _per_epoch(m, "eval_steps")
    m.put(("eval", "every"), strategy, "eval_strategy" if m.has("eval_strategy") else None)
    steps = m.src.get("eval_steps")
    if per_epoch:
        m.put(("eval", "per_epoch"), per_epoch, "eval_steps")
        m.used.add("eval_steps")
    elif isinstance(steps, float) and 0 < steps < 1:
        m.notes.append(Unmapped("eval_steps", steps, "a fraction of the total steps; kept under "
                                                     "backends.llamafactory"))
    else:
        m.take("eval_steps", ("eval", "steps"), convert=as_int)
    m.take("per_device_eval_batch_size", ("eval", "batch_size"), convert=as_int)
    m.take("output_dir", ("output", "dir"), str(base / "trainer_output"), lambda v: str((base / v).resolve()))
    save, save_per_epoch = m.src.get("save_steps"), _per_epoch(m, "save_steps")
    m.take("save_strategy", ("output", "save"), "steps")
    if save_per_epoch:
        m.put(("output", "per_epoch"), save_per_epoch, "save_steps")
        m.used.add("save_steps")
    elif isinstance(save, float) and 0 < save < 1:
        m.notes.append(Unmapped("save_steps", save, "a fraction of the total steps; kept under "
                                                    "backends.llamafactory"))
    elif m.src.get("save_strategy", "steps") == "steps":
        m.take("save_steps", ("output", "save_steps"), 500, as_int)
    else:
        m.used.add("save_steps")
    m.take("report_to", ("output", "report_to"), "none",
           lambda v: "none" if v in ("none", [], None) else ([v] if isinstance(v, str) else list(v)))
    m.take("deepspeed", ("hardware", "deepspeed"))


def to_recipe(m: Mapper, base: Path) -> None:
    m.put(("ftr",), 1)
    stage, loss = m.get("stage", "sft"), m.get("pref_loss", "sigmoid")
    ftr_stage = STAGE_BACK.get((stage, loss if stage == "dpo" else None), stage)
    m.put(("stage",), ftr_stage, "stage" if m.has("stage") else None)
    sections = _method(m)
    if ftr_stage in ("dpo", "orpo", "simpo", "kto"):
        sections.append("preference")
    TABLE.take(m, sections)
    _data(m, base)
    _train(m)
    _eval_output(m, base)
    m.cosmetic(*COSMETIC)
