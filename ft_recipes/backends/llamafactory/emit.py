"""Recipe -> LLaMA-Factory 0.9.5 config (``llamafactory.yaml``) plus its ``dataset_info.json``.

Plain values come from the key table (keys.py); this module writes the structural parts: datasets, stage and
preference loss, method type, precision, warmup, evaluation and save cadence, DeepSpeed.
"""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.base import check
from ft_recipes.backends.emitted import Emitted, Note, apply_passthrough, deepspeed_path, first_rows, unsupported
from ft_recipes.backends.llamafactory.keys import FINETUNING, STAGES, USUAL_TAGS
from ft_recipes.backends.llamafactory.rows import columns_of
from ft_recipes.backends.llamafactory.rows import file_tags_of as file_tags
from ft_recipes.recipe.model import Dataset, Recipe

NAME = "llamafactory"
VERSION = "0.9.5"
MAIN = "llamafactory.yaml"
DATASET_INFO = "dataset_info.json"

SHAREGPT_TAGS = {"role": "role_tag", "content": "content_tag", "user": "user_tag", "assistant": "assistant_tag"}

# backends.llamafactory.dataset_info: {recipe dataset name: a dataset_info.json entry's own keys} for entries the
# recipe cannot say exactly (the importer keeps them: media columns, tags the source left unset, ...). The
# location (file or hub id, split, subset) always comes from the recipe; the rest is written verbatim.
KEPT = "dataset_info"
LOCATION = frozenset({"file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name",
                      "split", "subset", "num_samples"})
# LLaMA-Factory 0.9.5's reading of an entry (data/parser.py, DatasetAttr.join): a `columns` or `tags` mapping
# takes every name it leaves out as None; without one, these defaults.
COLUMN_DEFAULTS = {"prompt": "instruction", "query": "input", "response": "output", "history": None,
                   "messages": "conversations", "system": None, "tools": None, "images": None, "videos": None,
                   "audios": None, "chosen": None, "rejected": None, "kto_tag": None}
TAG_DEFAULTS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
# What the converter of each formatting reads (data/converter.py); openai rows are read like sharegpt's.
_COMMON = {"formatting", "ranking", "folder", "system", "tools", "images", "videos", "audios", "chosen", "rejected",
           "kto_tag"}
READS = {"alpaca": _COMMON | {"prompt", "query", "response", "history"},
         "sharegpt": _COMMON | {"messages"} | set(TAG_DEFAULTS), "openai": _COMMON | {"messages"} | set(TAG_DEFAULTS)}


def reading(entry: dict) -> dict:
    """What LLaMA-Factory reads from a dataset_info.json entry, besides where the rows are: the fields its
    converter for the entry's formatting uses, as DatasetAttr holds them."""
    out = {"formatting": entry.get("formatting", "alpaca"), "ranking": entry.get("ranking", False),
           "folder": entry.get("folder")}
    for section, defaults in (("columns", COLUMN_DEFAULTS), ("tags", TAG_DEFAULTS)):
        given = entry.get(section) if section in entry else None
        for name, default in defaults.items():
            out[name] = (given or {}).get(name) if section in entry else default
    keep = READS.get(out["formatting"])
    return out if keep is None else {k: v for k, v in out.items() if k in keep}


def _shared_limit(datasets: tuple[Dataset, ...]) -> int | None:
    """The row limit every dataset shares, for ``max_samples`` (LLaMA-Factory keeps the first N rows of each
    dataset, validation ones included); None when they differ."""
    limits = {ds.num_samples for ds in datasets}
    return limits.pop() if len(limits) == 1 else None


def _split(recipe: Recipe, ds: Dataset, limited: bool) -> str:
    """The split to load; a row limit ``max_samples`` does not carry becomes a slice of it. Not dataset_info's
    ``num_samples``: LLaMA-Factory draws that many rows at random (repeating rows past the end)."""
    return ds.split if limited else first_rows(recipe, ds)


def _dataset_entry(recipe: Recipe, ds: Dataset, limited: bool) -> dict:
    entry: dict = {"hf_hub_url": ds.hub} if ds.hub else {"file_name": str(ds.path)}
    split = _split(recipe, ds, limited)
    if split != "train":
        entry["split"] = split
    if ds.subset:
        entry["subset"] = ds.subset
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
        tags = dict(USUAL_TAGS[ds.format])
        for std, tag in SHAREGPT_TAGS.items():
            if std in dict(ds.columns):
                tags[tag] = ds.column(std)
        tags.update(file_tags(ds))  # the role names the file uses (user/assistant), so LLaMA-Factory reads its rows
        entry["tags"] = tags
    elif ds.format == "text":
        columns = {"prompt": ds.column("text")}
    for optional in ("system", "history", "tools", "kto_tag"):  # the same names in dataset_info's columns
        if optional in dict(ds.columns):
            columns[optional] = ds.column(optional)
    entry["columns"] = columns
    return entry


def kept_entries(recipe: Recipe) -> dict:
    """backends.llamafactory.dataset_info (see KEPT)."""
    kept = recipe.backends.get(NAME, {}).get(KEPT)
    return kept if isinstance(kept, dict) else {}


def _kept_entry(entry: dict, ds: Dataset, kept: dict | None) -> tuple[dict, str | None]:
    """The entry with the kept keys of ``ds`` over it, when they still say what the recipe dataset says (the
    importer's reading of them gives its format and columns); else the entry as the recipe says it, and why."""

    if not isinstance(kept, dict):
        return entry, None
    fmt, columns = columns_of(kept)
    if (fmt, columns) != (ds.format, dict(ds.columns)):
        return entry, (f"backends.{NAME}.{KEPT}.{ds.name} no longer matches the dataset's format and columns "
                       f"({fmt} {columns}, the recipe {ds.format} {dict(ds.columns)}): written from the recipe")
    return {**{k: v for k, v in entry.items() if k in LOCATION}, **{k: v for k, v in kept.items()
                                                                    if k not in LOCATION}}, None


def _check(recipe: Recipe) -> None:
    from ft_recipes.backends.llamafactory import BACKEND

    check(BACKEND, recipe)
    lora = recipe.method.lora
    if lora and lora.init == "pissa" and recipe.method.quant:
        raise unsupported(recipe, ("method", "lora", "init"),
                          "LLaMA-Factory initialises PiSSA on a quantized model only through its scripts/pissa_init.py",
                          "use --backend axolotl or --backend trl, which can")
    if lora and lora.init == "pissa" and recipe.stage in ("dpo", "kto", "ppo"):  # finetuning_args.py refuses it
        raise unsupported(recipe, ("method", "lora", "init"),
                          f"LLaMA-Factory cannot use PiSSA for {recipe.stage} (a stage with a reference model, or ppo)",
                          "use lora.init: default for this stage")
    if recipe.data.train_on_prompt and recipe.stage != "sft":
        raise unsupported(recipe, ("data", "train_on_prompt"),
                          f"LLaMA-Factory trains on prompts only in sft, not in {recipe.stage}",
                          "remove data.train_on_prompt for this stage")
    if recipe.data.overlength == "drop" and not recipe.data.packing:
        raise unsupported(recipe, ("data", "overlength"),
                          "LLaMA-Factory truncates over-long examples and cannot drop them",
                          "set data.overlength: truncate, or use --backend axolotl")


REFERENCE_STAGES = ("dpo", "kto")  # the stages whose trainer compares the policy with a reference model


def reference(recipe: Recipe) -> dict:
    """A preference stage that continues an adapter gets that adapter as its reference too (the SFT policy, as in
    the DPO paper); without these keys LLaMA-Factory disables the adapter and the reference is the base model."""
    if recipe.model.adapter is None or recipe.stage not in REFERENCE_STAGES:
        return {}
    ref = {"ref_model": recipe.model.base, "ref_model_adapters": str(recipe.model.adapter)}
    if recipe.method.quant:
        ref["ref_model_quantization_bit"] = recipe.method.quant.bits
    return ref


def _structure(recipe: Recipe, cfg: dict, out_dir: Path, notes: list[str]) -> dict:
    t, d, o = recipe.train, recipe.data, recipe.output
    stage, pref_loss = STAGES[recipe.stage]
    cfg.update({"stage": stage, "do_train": True, "finetuning_type": FINETUNING[recipe.method.type]})
    if pref_loss and recipe.preference:
        cfg["pref_loss"] = pref_loss
    if recipe.method.quant:
        cfg["quantization_method"] = "bnb"
    cfg.update(reference(recipe))
    limit = _shared_limit((*d.train, *d.val))
    if limit:
        cfg["max_samples"] = limit
    info, kept = {}, kept_entries(recipe)
    for ds in (*d.train, *d.val):
        info[ds.name], why = _kept_entry(_dataset_entry(recipe, ds, bool(limit)), ds, kept.get(ds.name))
        if why:
            notes.append(why)
    cfg["dataset"] = ",".join(ds.name for ds in d.train)
    if d.val:
        cfg["eval_dataset"] = ",".join(ds.name for ds in d.val)
    cfg["dataset_dir"] = str(out_dir)
    if not (d.packing and recipe.stage == "pt"):  # pt packs by default, with the whole cutoff_len; a written
        cfg["packing"] = d.packing               # `packing: true` makes its sequences cutoff_len - 1 tokens long
    if d.packing and recipe.stage == "sft":
        cfg["neat_packing"] = True
    cfg["output_dir"] = str(o.dir)
    cfg["max_steps"] = t.max_steps if t.max_steps is not None else -1
    # transformers 5 (LLaMA-Factory 0.9.5 pins 5.6) deprecates warmup_ratio: warmup_steps < 1 is a ratio
    cfg["warmup_steps"] = t.warmup_steps if t.warmup_steps is not None else float(t.warmup_ratio or 0.0)
    cfg["bf16"] = t.precision == "bf16"
    cfg["fp16"] = t.precision == "fp16"
    cfg["disable_gradient_checkpointing"] = not t.gradient_checkpointing
    if t.gradient_checkpointing == "offload":
        cfg["use_unsloth_gc"] = True  # unsloth's checkpointing keeps the activations in CPU memory
    cfg["eval_strategy"] = _strategy(recipe.eval.strategy, recipe.eval.per_epoch) if d.has_validation else "no"
    eval_steps = recipe.eval.steps or _ratio(recipe.eval.per_epoch, t)
    if cfg["eval_strategy"] == "steps" and eval_steps:
        cfg["eval_steps"] = eval_steps
    cfg["per_device_eval_batch_size"] = recipe.eval.batch_size or t.micro_batch_size
    cfg["save_strategy"] = _strategy(o.save, o.per_epoch)
    if cfg["save_strategy"] == "steps":
        cfg["save_steps"] = o.save_steps or _ratio(o.per_epoch, t) or 500
    cfg["report_to"] = list(o.report_to) or "none"
    cfg["plot_loss"] = False
    if recipe.hardware.deepspeed:
        cfg["deepspeed"] = deepspeed_path(recipe)
    return info


def emit(recipe: Recipe, out_dir: Path, backend=None) -> Emitted:
    from ft_recipes.backends.llamafactory import BACKEND

    _check(recipe)
    cfg: dict = {}
    BACKEND.keys.emit(recipe, cfg)
    stale: list[str] = []
    info = _structure(recipe, cfg, out_dir, stale)
    notes = BACKEND.notes(recipe) + apply_passthrough(cfg, recipe, NAME)
    cfg.pop(KEPT, None)  # dataset_info.json's entries, not a key of the config
    notes += [Note(f"backends.{NAME}.{KEPT}", why) for why in stale]
    return Emitted(NAME, VERSION, MAIN, configs={MAIN: cfg, DATASET_INFO: info}, notes=notes)


def _strategy(strategy: str, per_epoch: int | None) -> str:
    """Once per epoch is the epoch strategy (a ratio of 1.0 would read as every single step)."""
    return "epoch" if per_epoch == 1 and strategy == "steps" else strategy


def _ratio(per_epoch: int | None, t) -> float | None:
    """N times per epoch as Hugging Face's fraction-of-total-steps (what Axolotl's *_per_epoch computes);
    None when that fraction would not be below 1 (transformers reads 1.0 and more as a step count)."""
    if not per_epoch:
        return None
    ratio = round(1.0 / (per_epoch * (t.epochs if t.max_steps is None and t.epochs else 1.0)), 6)
    return ratio if ratio < 1 else None
