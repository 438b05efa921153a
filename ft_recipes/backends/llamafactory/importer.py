"""LLaMA-Factory config -> recipe. Plain keys come back through the key table (keys.py); absent keys take
LLaMA-Factory's own defaults (BACKENDS.md section 2), because that is what the native file means."""

from __future__ import annotations

import re
from pathlib import Path

from ft_recipes.backends.keys import as_int, invert
from ft_recipes.backends.llamafactory.keys import STAGES, TABLE
from ft_recipes.backends.llamafactory.rows import columns_of
from ft_recipes.backends.native import Mapper, Unmapped, local_model_paths, run_path, take_deepspeed
from ft_recipes.core.paths import real_path

STAGE_BACK = invert(STAGES)
# Keys the structural code below reads (do_train: a recipe is a training run). Not here, because they change
# what LLaMA-Factory 0.9.5 does or writes: plot_loss (needs matplotlib, draws training_loss.png into output_dir)
# and overwrite_output_dir (false: an output_dir holding checkpoints resumes from the last one) stay under
# backends.llamafactory; quantization_method and neat_packing are read in _method and _data.
COSMETIC = ("do_train", "dataset_dir", "finetuning_type", "stage", "pref_loss", "dataset", "eval_dataset", "bf16",
            "fp16", "max_steps")


def _split(value) -> list[str]:
    """Dataset names as LLaMA-Factory's split_arg reads them: "a,b", or a list kept as it is."""
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


MEDIA = {"images", "videos", "audios"}
KEPT = "dataset_info"  # backends.llamafactory.dataset_info (emit.KEPT)
HUB_SOURCES = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")  # LF's order


def _dataset_info(m: Mapper, base: Path) -> tuple[Path, dict | None, str]:
    """(directory, registry, why it is missing) as LLaMA-Factory finds them: ``<dataset_dir>/dataset_info.json``
    with ``dataset_dir`` (default ``data``) relative to the directory it runs in. ``ONLINE`` (names are hub
    ids) and an unreadable registry give None. Without a run directory given, a registry next to the config
    is used when the working directory has none."""
    from ft_recipes.recipe.datasets import dataset_dir_override, resolve_local, run_dir_given
    from ft_recipes.recipe.modelinfo import json_file

    value = dataset_dir_override() or m.src.get("dataset_dir", "data")
    if isinstance(value, dict):
        return base, value, ""
    if str(value) == "ONLINE" or str(value).startswith("REMOTE:"):
        return base, None, f"dataset_dir {value} names hub datasets"
    directory = resolve_local(str(value))
    candidates = [directory]
    if not run_dir_given() and not Path(str(value)).is_absolute():
        candidates.append(real_path(base / str(value)))
    for candidate in candidates:
        try:
            return candidate, json_file(candidate / "dataset_info.json"), ""
        except OSError:
            continue
        except ValueError as exc:
            return candidate, {}, f"{candidate / 'dataset_info.json'} is not valid JSON ({exc})"
    return directory, None, (f"{directory / 'dataset_info.json'} not found (LLaMA-Factory reads it from "
                             f"dataset_dir, relative to the directory it runs in)")




def recipe_name(name: str) -> str:
    """A dataset_info.json name as a recipe dataset name (which becomes a file name on other backends): any
    character outside letters, digits, ``_.-`` becomes ``_`` (``custom/identity`` -> ``custom_identity``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _dataset(name: str, info: dict, directory: Path) -> dict | None:
    """One dataset name -> a recipe dataset, resolved the way LLaMA-Factory resolves it (None: undefined)."""
    entry = info.get(name)
    if not isinstance(entry, dict):
        return None
    out: dict = {"name": recipe_name(name)}
    hub = next((entry[k] for k in HUB_SOURCES if entry.get(k)), None)
    if hub is not None:
        out["hub"] = str(hub)
    elif entry.get("file_name"):
        out["path"] = str(real_path(directory / str(entry["file_name"])))
    else:
        return None
    out["format"], columns = columns_of(entry)
    if columns:
        out["columns"] = columns
    if entry.get("split") not in (None, "train"):
        out["split"] = str(entry["split"])
    if entry.get("subset"):
        out["subset"] = str(entry["subset"])
    if entry.get("num_samples") is not None:
        out["sampled"] = entry["num_samples"]  # not a recipe key: _limit_rows turns it into a note
    return out


def _limit_rows(m: Mapper, lists: dict[str, list[dict]]) -> None:
    """``max_samples`` keeps the first N rows of every dataset: each dataset's ``num_samples``. dataset_info's
    ``num_samples`` draws N rows at random (repeating rows past the end), which a recipe cannot say: noted, and
    ``max_samples`` then stays a LLaMA-Factory key (it cuts the drawn rows)."""
    limit = as_int(m.src.get("max_samples"))
    entries = [e for listed in lists.values() for e in listed]
    sampled = [(key, e) for key, listed in lists.items() for e in listed if "sampled" in e]
    for key, entry in sampled:
        m.notes.append(Unmapped(key, entry["name"], f"dataset {entry['name']!r}: dataset_info.json's num_samples "
                                                    f"({entry.pop('sampled')!r}) draws rows at random; a recipe "
                                                    "has no such key and it is not carried"))
    if not isinstance(limit, int) or limit <= 0 or sampled or not entries:
        return
    m.used.add("max_samples")
    for entry in entries:
        entry["num_samples"] = limit


def _unresolved(m: Mapper, key: str, name: str, directory: Path, why: str) -> dict:
    """A dataset ftr cannot resolve: kept by name; a missing file is an error only when the registry was read."""
    from ft_recipes.recipe.datasets import note_path

    path = directory / name
    if why.startswith("dataset_dir"):  # hub names: not checked offline
        note_path(path, "unchecked", why)
        m.notes.append(Unmapped(key, name, f"dataset {name!r} not checked: {why}"))
    elif why:  # no readable registry where LLaMA-Factory looks: it refuses to start
        note_path(path, "no_registry", why)
        m.notes.append(Unmapped(key, name, f"dataset {name!r}: {why}"))
    else:
        why = f"{directory / 'dataset_info.json'} does not define it (LLaMA-Factory: Undefined dataset)"
        note_path(path, "undefined", why)
        m.notes.append(Unmapped(key, name, f"dataset {name!r}: {why}"))
    return {"name": recipe_name(name), "path": str(path), "format": "alpaca"}


def _data(m: Mapper, base: Path) -> None:
    from ft_recipes.recipe.datasets import dataset_dir_override, note_path, resolve_local

    directory, info, why = _dataset_info(m, base)
    value = dataset_dir_override() or m.src.get("dataset_dir", "data")
    beside = isinstance(value, str) and info is not None and not why and directory != resolve_local(value)
    lists: dict[str, list[dict]] = {}
    kept: dict[str, dict] = {}  # recipe name -> the entry's keys the recipe cannot say (emit.KEPT)
    media: dict[str, list[str]] = {}  # dataset name -> its media columns
    for key in ("dataset", "eval_dataset"):
        names = _split(m.get(key, ""))
        entries = lists[key] = []
        for name in names:
            entry = _dataset(name, info, directory) if info is not None else None
            if entry is None and info is None and why.startswith("dataset_dir"):
                entry = {"name": recipe_name(name), "hub": name, "format": "alpaca"}  # ONLINE: names are hub ids
            source = (info or {}).get(name) if entry else None
            if isinstance(source, dict):
                _keep(kept, media, name, source, entry)
            if entry and beside and "path" in entry:
                note_path(Path(entry["path"]), "beside", f"dataset_info.json found next to the config "
                                                         f"({directory}), not in the directory LLaMA-Factory runs in")
            entries.append(entry or _unresolved(m, key, name, directory, why))
    _limit_rows(m, lists)
    for key, path in (("dataset", ("data", "train")), ("eval_dataset", ("data", "val", "datasets"))):
        if lists[key]:
            m.put(path, lists[key], key)
    if kept:
        m.put(("backends", "llamafactory", KEPT), kept)
    if media:
        _media(m, media, directory)
    _packing(m)


def _keep(kept: dict, media: dict, name: str, source: dict, entry: dict) -> None:
    """Keeps the dataset_info entry's own keys (emit.KEPT) when LLaMA-Factory would read the entry written from
    the recipe dataset otherwise than the source's (media columns, tags it leaves unset, a conversational
    preference set, ...)."""
    from ft_recipes.backends.llamafactory.emit import LOCATION, _dataset_entry, reading
    from ft_recipes.recipe.model import Dataset

    columns = source.get("columns") if isinstance(source.get("columns"), dict) else {}
    found = sorted(c for c in MEDIA if columns.get(c))
    if found:
        media[name] = found
    ds = Dataset(format=entry["format"], path=Path(entry["path"]) if entry.get("path") else None,
                 hub=entry.get("hub"), name=entry["name"], columns=tuple((entry.get("columns") or {}).items()),
                 split=entry.get("split", "train"), subset=entry.get("subset"))
    if reading(_dataset_entry(None, ds, True)) != reading(source):
        kept[entry["name"]] = {k: v for k, v in source.items() if k not in LOCATION}


def _media(m: Mapper, media: dict[str, list[str]], directory: Path) -> None:
    """Datasets with image, video or audio columns: LLaMA-Factory opens those files under ``media_dir``, which
    defaults to ``dataset_dir`` (hparams/data_args.py). A converted config has another dataset_dir, so the
    folder is carried (absolute, as LLaMA-Factory opens it from the directory it runs in). The columns
    themselves are kept for LLaMA-Factory only: another backend would train without them."""
    value = m.src.get("media_dir")
    m.used.add("media_dir")
    folder = run_path(value) if isinstance(value, str) and value else str(directory)
    m.put(("backends", "llamafactory", "media_dir"), folder, "media_dir" if value else None)
    listed = ", ".join(f"{name} ({', '.join(columns)})" for name, columns in media.items())
    m.notes.append(Unmapped(KEPT, media, f"media columns of {listed}: no recipe field holds them; kept under "
                                         f"backends.llamafactory.{KEPT} for LLaMA-Factory only (another backend "
                                         "would train on the text alone)", path=("dataset",),
                            changes_training=True))


def _packing(m: Mapper) -> None:
    """LLaMA-Factory packs with ``packing`` (default: only for pt) or ``neat_packing`` (which turns packing on and
    keeps each row's attention to itself); a recipe's packing is the neat one for sft, so plain sft packing,
    whose rows attend to each other, is noted."""
    stage, neat = m.src.get("stage", "sft"), m.src.get("neat_packing") is True
    m.used.add("neat_packing")
    if neat:  # LLaMA-Factory sets packing itself, over packing: false
        m.put(("data", "packing"), True, "neat_packing")
        m.used.add("packing")
        return
    m.take("packing", ("data", "packing"), stage == "pt")
    if m.src.get("packing") is True and stage == "sft":
        m.notes.append(Unmapped("packing", True, "packing without neat_packing lets packed rows attend to each "
                                                 "other; a recipe packs them apart (neat_packing)",
                                path=("packing",), changes_training=True))


def _no_split(m: Mapper) -> None:
    """``val_size: 0`` is LLaMA-Factory's default, no held-out split: a recipe leaves ``data.val.split`` out."""
    val = m.out.get("data", {}).get("val", {})
    if val.get("split") == 0:
        del val["split"]
        m.origin.pop(("data", "val", "split"), None)
        if not val:
            del m.out["data"]["val"]


def needs_training_data(src: dict) -> bool:
    """Whether LLaMA-Factory trains on this config: only with ``do_train`` (inference, export, predict-only and
    evaluation configs need no ``dataset``)."""
    return bool(src.get("do_train"))


def _method(m: Mapper) -> None:
    """The method type (the key table's rows of the sections it uses are read by ``TABLE.take``)."""
    kind = m.get("finetuning_type", "lora")
    bits = m.src.get("quantization_bit")
    if kind == "lora" and bits == 4:
        kind = "qlora"
    m.put(("method", "type"), kind, "finetuning_type" if m.has("finetuning_type") else None)
    if kind in ("lora", "qlora"):
        rank = as_int(m.src.get("lora_rank", 8))
        if not m.has("lora_alpha") and isinstance(rank, int):  # LLaMA-Factory: lora_alpha defaults to 2 x rank
            m.put(("method", "lora", "alpha"), 2 * rank)
    _quantization_method(m, bits)


def _quantization_method(m: Mapper, bits) -> None:
    """A recipe quantizes with bitsandbytes; another on-the-fly method (hqq, eetq) stays a LLaMA-Factory key."""
    method = m.src.get("quantization_method", "bnb")
    if method == "bnb" or not bits:
        m.used.add("quantization_method")
        return
    m.notes.append(Unmapped("quantization_method", method, f"quantizes with {method}, not bitsandbytes; a recipe "
                            "has no such key", path=("quantization_method",), changes_training=True))


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
    _checkpointing(m)
    _min_lr_rate(m)
    precision_key = "bf16" if m.src.get("bf16") else "fp16" if m.src.get("fp16") else None
    m.put(("train", "precision"), precision_key or "fp32", precision_key)


def _min_lr_rate(m: Mapper) -> None:
    """transformers' cosine_with_min_lr takes the floor as min_lr or as min_lr_rate (a share of the learning
    rate, which it turns into min_lr_rate x lr itself): the recipe's min_lr is that product."""
    kwargs = m.src.get("lr_scheduler_kwargs")
    rate, lr = (kwargs or {}).get("min_lr_rate") if isinstance(kwargs, dict) else None, m.src.get("learning_rate")
    if "min_lr" in (kwargs or {}) or not _number(rate) or not _number(lr):
        return
    m.put(("train", "min_lr"), float(rate) * float(lr), "lr_scheduler_kwargs.min_lr_rate")
    m.used.add("lr_scheduler_kwargs.min_lr_rate")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    m.take_path("output_dir", ("output", "dir"), "trainer_output")  # transformers' default
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
    take_deepspeed(m, base, "LLaMA-Factory")


def _checkpointing(m: Mapper) -> None:
    disabled, offload = m.get("disable_gradient_checkpointing", False), m.get("use_unsloth_gc", False)
    value = False if disabled is True else "offload" if offload is True else True
    m.put(("train", "gradient_checkpointing"), value,
          "use_unsloth_gc" if value == "offload" else "disable_gradient_checkpointing"
          if m.has("disable_gradient_checkpointing") else None)


def to_recipe(m: Mapper, base: Path) -> None:
    m.put(("ftr",), 1)
    stage, loss = m.get("stage", "sft"), m.get("pref_loss", "sigmoid")
    ftr_stage = STAGE_BACK.get((stage, loss if stage == "dpo" else None), stage)
    m.put(("stage",), ftr_stage, "stage" if m.has("stage") else None)
    _method(m)
    TABLE.take(m)  # every row of every section the stage and method use
    local_model_paths(m)
    _no_split(m)
    _data(m, base)
    _train(m)
    _eval_output(m, base)
    m.cosmetic(*COSMETIC)
