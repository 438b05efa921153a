"""Axolotl config -> recipe. Absent keys take Axolotl's own defaults (BACKENDS.md §2)."""

from __future__ import annotations

import re
from pathlib import Path

from ft_recipes.backends.axolotl.keys import CPU_FLAGS, DATASET_CHANGES_TRAINING, RL, TABLE
from ft_recipes.backends.axolotl.templates import end_of_turn_keys, import_name
from ft_recipes.backends.keys import as_int, invert
from ft_recipes.backends.native import Mapper, Unmapped, local_model_paths, take_deepspeed
from ft_recipes.core.paths import real_path
from ft_recipes.recipe.modelinfo import config as model_config

RL_BACK = invert(RL)
# Keys with no effect on training, or read by the structural code below (which marks the others it carries).
COSMETIC = ("load_in_4bit", "load_in_8bit", "reward_model", "dataset_prepared_path", "fp16", "use_wandb",
            "use_tensorboard", "use_mlflow")
ADAPTERS = ("lora", "qlora")
LAYER = re.compile(r"^model\\\.layers\\\.(\d+)\\\.\.\*(?:\((.+)\)\.\*)?$")


DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt")
PREFERENCE_TYPES = ("bradley_terry",)  # reward-model pair types (`reward_model: true`)


def _local(path: str, base: Path) -> Path | None:
    """Where Axolotl finds ``path`` on disk: relative to the directory it runs in (or, when no run directory is
    given and the working directory has nothing there, next to the config); None when it is a hub id."""
    from ft_recipes.recipe.datasets import note_path, resolve_local, run_dir, run_dir_given

    local = resolve_local(path)
    found = local.exists()
    if not found and not run_dir_given():
        beside = real_path(base / path)
        if beside.exists():
            note_path(beside, "beside", f"found next to the config, not in {run_dir()}, where Axolotl looks")
            return beside
    if found or path.startswith((".", "/", "~")) or path.endswith(DATA_SUFFIXES):
        return local
    return None  # org/name: a hub dataset, not checked offline


# The keys of an entry the recipe carries, by type; any other key keeps the list verbatim under backends.axolotl.
CARRIED = {"chat_template": {"path", "type", "split", "name", "ds_type", "field_messages",
                             "message_property_mappings", *DATASET_CHANGES_TRAINING},
           "completion": {"path", "type", "split", "name", "ds_type", "field"}}
# message_property_mappings ftr writes back: sharegpt's and the messages format's own names
MAPPINGS = ({}, {"role": "from", "content": "value"}, {"role": "role", "content": "content"})


def _dataset(m: Mapper, entry: dict, where: tuple, base: Path) -> dict | None:
    """The recipe dataset for one entry, or None (with a note) when the recipe cannot say what Axolotl does with
    it: a type with its own prompt format (alpaca, input_output, ...), or a key the recipe has no field for."""
    if not isinstance(entry, dict) or "path" not in entry:
        return None
    kind, name = entry.get("type"), f"{where[0]}[{where[-1]}]"
    mappings = entry.get("message_property_mappings") or {}
    if kind not in CARRIED:
        m.notes.append(Unmapped(f"{name}.type", kind, f"Axolotl's {kind!r} dataset type (its own prompt "
                                "format or row schema) has no recipe format; kept verbatim under backends.axolotl",
                                    path=(*where, "type"),
                                changes_training=True))
        return None
    extra = sorted(set(entry) - CARRIED[kind]) + (["message_property_mappings"] if mappings not in MAPPINGS else [])
    for key in extra:
        m.notes.append(Unmapped(f"{name}.{key}", entry[key], "no recipe key; the dataset list is kept verbatim "
                                "under backends.axolotl", path=(*where, key), changes_training=True))
    if extra:
        return None
    path = str(entry["path"])
    local = _local(path, base)
    out: dict = {"path": str(local)} if local is not None else {"hub": path}
    if entry.get("split") not in (None, "train"):
        out["split"] = str(entry["split"])
    if entry.get("name"):
        out["subset"] = str(entry["name"])
    if kind == "completion":
        out["format"] = "text"
        if entry.get("field", "text") != "text":
            out["columns"] = {"text": entry["field"]}
        return out
    sharegpt = mappings.get("role") == "from"
    out["format"] = "sharegpt" if sharegpt else "messages"
    field = entry.get("field_messages", "messages")
    if field != ("conversations" if sharegpt else "messages"):
        out["columns"] = {"messages": field}
    return out if _uncarried_dataset_keys(m, entry, where) else None


def _uncarried_dataset_keys(m: Mapper, entry: dict, where: tuple) -> bool:
    """Whether a chat dataset holds no key that would change the trained tokens or rows, set to something else
    than what ftr compiles (roles are compared by meaning: sharegpt's ``gpt`` is ``assistant``); each such key
    gets a note."""
    from ft_recipes.recipe.datasets import ROLES

    carried = True
    for key, same in DATASET_CHANGES_TRAINING.items():
        if key.startswith("chat_template"):  # the same as the config's own template is no change
            same = m.src.get(key)
        value = entry.get(key)
        if key == "roles_to_train" and isinstance(value, list):
            value = sorted({ROLES.get(str(role), str(role)) for role in value})
        if value is None or value == same or (same is None and value is False):
            continue
        carried = False
        m.notes.append(Unmapped(f"{where[0]}[{where[-1]}].{key}", entry[key], "changes which tokens or rows are "
                                "trained; a recipe has no such key (kept verbatim under backends.axolotl)",
                                path=(*where, key), changes_training=True))
    return carried


def _guess(m: Mapper, converted: dict | None, entry: dict, base: Path) -> dict:
    """A dataset the recipe cannot carry, for linting only: its kind follows the training type (preference
    pairs for DPO-like and reward-model runs, raw text for completion, else messages), and its rows are not
    read. The entry itself stays verbatim under backends.axolotl."""
    from ft_recipes.recipe.datasets import note_path

    if converted:
        return converted
    path = str(entry.get("path", ""))
    local = _local(path, base)
    out: dict = {"path": str(local)} if local is not None else {"hub": path or "unknown"}
    rl, kind = m.src.get("rl"), entry.get("type")
    pairs = rl in ("dpo", "ipo", "simpo", "orpo") or (m.src.get("reward_model") and not rl) or \
        str(kind).startswith(PREFERENCE_TYPES)
    out["format"] = "preference" if pairs else "text" if kind == "completion" else "messages"
    if local is not None:
        note_path(local, "rows", f"Axolotl dataset type {kind!r} has no ftr row format")
    return out


def _pretraining(m: Mapper, base: Path) -> None:
    """``pretraining_dataset`` (streamed raw text) read as text datasets of a pretraining stage."""
    entries = m.src.get("pretraining_dataset")
    entries = [entries] if isinstance(entries, dict) else entries or []
    out = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("path"):
            local = _local(str(entry["path"]), base)
            item: dict = {"path": str(local)} if local is not None else {"hub": str(entry["path"])}
            item["format"] = "text"
            if entry.get("text_column", "text") != "text":
                item["columns"] = {"text": str(entry["text_column"])}
            out.append(item)
    if out:  # for linting only: streamed, with Axolotl's own options, it is kept as written
        m.put(("data", "train"), out, "pretraining_dataset")
        m.put(("stage",), "pt", "pretraining_dataset")
        m.notes.append(Unmapped("pretraining_dataset", entries, "streamed raw text, which no recipe dataset "
                                "holds; kept under backends.axolotl", path=("pretraining_dataset",),
                                changes_training=True))


def _data(m: Mapper, base: Path) -> None:
    for key, path in (("datasets", ("data", "train")), ("test_datasets", ("data", "val", "datasets"))):
        entries = m.src.get(key) or []
        converted = [_dataset(m, e, (key, i), base) for i, e in enumerate(entries)]
        if all(converted):
            m.used.add(key)
            if entries:
                m.put(path, converted, key)
        else:  # kept verbatim under backends.axolotl; the recipe gets a best guess for linting
            guess = [_guess(m, c, e, base) for c, e in zip(converted, entries) if isinstance(e, dict)]
            if guess:
                m.put(path, guess, key)
    if not m.src.get("datasets") and m.src.get("pretraining_dataset"):
        _pretraining(m, base)
    split = m.src.get("val_set_size")
    if isinstance(split, (int, float)) and not isinstance(split, bool) and split > 0:
        m.take("val_set_size", ("data", "val", "split"), convert=lambda v: v if v < 1 else as_int(v))
    m.used.add("val_set_size")


def _freeze(m: Mapper, base_model) -> dict | None:
    """unfrozen_parameters of the shape ftr writes (whole layers, optionally some modules) -> method.freeze."""
    patterns = m.src.get("unfrozen_parameters")
    if not isinstance(patterns, list) or not patterns:
        return None
    matches = [LAYER.match(str(p)) for p in patterns]
    if not all(matches) or len({mt.group(2) for mt in matches}) != 1:
        m.notes.append(Unmapped("unfrozen_parameters", patterns, "not whole layers; kept under backends.axolotl"))
        return None
    layers = sorted(int(mt.group(1)) for mt in matches)
    if layers != list(range(layers[0], layers[-1] + 1)):
        return None
    total = model_config(str(base_model)).get("num_hidden_layers") if base_model else None
    if layers[0] == 0 and total != layers[-1] + 1:
        count = -len(layers)
    elif total is None or total == layers[-1] + 1:
        count = len(layers)
    else:
        return None
    modules = matches[0].group(2)
    return {"trainable_layers": count, "trainable_modules": modules.split("|") if modules else "all"}


def _foreign(m: Mapper, key: str, reason: str) -> None:
    """A key whose value no recipe field expresses: kept verbatim under backends.axolotl (so Axolotl -> Axolotl
    keeps it) and refused when converting to another backend."""
    m.used.discard(key)
    m.notes.append(Unmapped(key, m.src.get(key), f"{reason}; kept under backends.axolotl", path=(key,),
                            changes_training=True))


def _method(m: Mapper) -> None:
    """The method type (the key table's rows of the sections it uses are read by ``TABLE.take``)."""
    adapter = m.src.get("adapter")
    if adapter is not None and adapter not in ADAPTERS:
        _foreign(m, "adapter", f"Axolotl's {adapter!r} adapter has no recipe method")
        adapter = None
    if adapter or "adapter" not in m.src:
        m.used.add("adapter")
    four, eight = bool(m.src.get("load_in_4bit")), bool(m.src.get("load_in_8bit"))
    freeze = None if adapter else _freeze(m, m.src.get("base_model"))
    if freeze or not m.src.get("unfrozen_parameters"):
        m.used.add("unfrozen_parameters")
    kind = "qlora" if adapter == "qlora" or (adapter == "lora" and four) else "lora" if adapter == "lora" else \
        "freeze" if freeze else "full"
    m.put(("method", "type"), kind, "adapter" if adapter else "unfrozen_parameters" if freeze else None)
    if freeze:
        m.put(("method", "freeze"), freeze, "unfrozen_parameters")
    if kind in ("lora", "qlora"):
        _lora_target(m)
    else:  # no adapter: Axolotl reads no target
        m.cosmetic("lora_target_linear", "lora_target_modules")
    if four or eight:
        m.put(("method", "quant", "bits"), 4 if four else 8, "load_in_4bit" if four else "load_in_8bit")
        kwargs = m.src.get("bnb_config_kwargs") or {}
        if four and isinstance(kwargs, dict):
            m.put(("method", "quant", "type"), kwargs.get("bnb_4bit_quant_type", "nf4"))
            m.put(("method", "quant", "double_quant"), kwargs.get("bnb_4bit_use_double_quant", True))
            if set(kwargs) <= {"bnb_4bit_quant_type", "bnb_4bit_use_double_quant"}:  # else kept whole
                m.cosmetic("bnb_config_kwargs")


# Attention and MLP projections: linear layers wherever a model has them, so lora_target_linear covers them
PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def _lora_target(m: Mapper) -> None:
    """lora_target_linear adds every linear layer (not lm_head) to lora_target_modules (Axolotl unions them); a
    string is a regular expression to PEFT, a list names modules. Where ``method.lora.target`` cannot say what
    the file targets, the target keys stay as written under backends.axolotl (the emitter then writes none of
    its own), so Axolotl -> Axolotl targets exactly the same modules."""
    modules, linear = m.src.get("lora_target_modules"), m.src.get("lora_target_linear")
    m.cosmetic("lora_target_linear")
    if isinstance(modules, str):  # the recipe's list makes ftr write no lora_target_linear; the string stays
        _foreign(m, "lora_target_modules", "a regular expression of module names, which no recipe value holds")
        m.put(("method", "lora", "target"), [modules])
        if linear is not None:  # with the string, as written (true adds every linear layer)
            m.used.discard("lora_target_linear")
    elif linear:
        m.put(("method", "lora", "target"), "all-linear", "lora_target_linear")
        if set(modules or []) - PROJECTIONS:
            _foreign(m, "lora_target_modules", "named modules on top of lora_target_linear")
        # projections only: the linear layers already; kept as written for Axolotl, and the same elsewhere
    elif modules:
        m.put(("method", "lora", "target"), list(modules), "lora_target_modules")
        m.cosmetic("lora_target_modules")
    else:  # no module named: the recipe's default (all-linear) is not what Axolotl adapts
        m.keep("lora_target_linear", False)
        m.notes.append(Unmapped("lora_target_linear", linear, "the file names no module and no lora_target_linear, "
                                "so Axolotl adapts no linear layer of its own choosing; kept as false under "
                                "backends.axolotl (the recipe's all-linear would widen the targets)",
                                path=("lora_target_linear",)))
        if not m.src.get("lora_target_parameters"):  # those alone are refused elsewhere (CHANGES_TRAINING)
            m.notes.append(Unmapped("lora_target_modules", None, "no target: PEFT's own per-model default "
                                    "modules, which no recipe value names", path=("adapter",),
                                    changes_training=True))


def _allowed(field: str) -> list:
    """The values the recipe schema allows for ``train.<field>``."""
    from ft_recipes.recipe.validate import recipe_schema

    return recipe_schema()["properties"]["train"]["properties"][field]["enum"]


def _optimizer(m: Mapper) -> None:
    value = m.src.get("optimizer")
    if value is not None and value not in _allowed("optimizer"):
        _foreign(m, "optimizer", f"Axolotl's {value!r} optimizer has no recipe value")
        m.put(("train", "optimizer"), "adamw_torch_fused")  # for linting only; Axolotl's default
        m.origin.pop(("train", "optimizer"), None)


def _train(m: Mapper) -> None:
    scheduler = m.src.get("lr_scheduler") or "cosine"  # null: Axolotl's trainer builder uses cosine
    m.used.add("lr_scheduler")
    ratio, lr = m.src.get("cosine_min_lr_ratio"), m.src.get("learning_rate")
    if scheduler not in _allowed("scheduler") or scheduler == "cosine_with_min_lr":
        _foreign(m, "lr_scheduler", f"Axolotl's {scheduler!r} schedule has no recipe value")
        m.put(("train", "scheduler"), "cosine")
    elif scheduler == "cosine" and isinstance(ratio, (int, float)) and isinstance(lr, (int, float)):
        m.put(("train", "scheduler"), "cosine_with_min_lr", "lr_scheduler")
        m.put(("train", "min_lr"), float(lr) * ratio, "cosine_min_lr_ratio")
        m.cosmetic("cosine_min_lr_ratio")
    else:
        m.put(("train", "scheduler"), scheduler, "lr_scheduler" if m.has("lr_scheduler") else None)
    if m.has("warmup_steps"):
        m.take("warmup_steps", ("train", "warmup_steps"), convert=as_int)
    elif m.has("warmup_ratio"):
        m.take("warmup_ratio", ("train", "warmup_ratio"))
    else:  # Axolotl's default (core/builders/base.py): min(int(0.03 * steps), 100) warmup steps
        m.cosmetic("warmup_ratio", "warmup_steps")
        m.put(("train", "warmup_ratio"), 0.03)  # the recipe's nearest reading, for another backend
        m.keep("warmup_ratio", None)  # for Axolotl: no warmup key, its own default
        m.notes.append(Unmapped("warmup_ratio", None, "no warmup set: Axolotl warms up for 3% of the steps, at "
                                "most 100 steps; the recipe's warmup_ratio 0.03 has no cap (the same up to 3333 "
                                "steps); Axolotl keeps its own default (warmup_ratio: null under backends.axolotl)",
                                path=("warmup_ratio",)))
    _checkpointing(m)
    _precision(m)


def _precision(m: Mapper) -> None:
    """bf16 'auto' (bf16 where the GPU has it, else fp16) is the recipe's bf16 and stays verbatim for Axolotl;
    tf32 has no recipe key."""
    bf16, fp16 = m.src.get("bf16", "auto"), m.src.get("fp16")
    precision = "fp16" if fp16 else "bf16" if bf16 in (True, "auto") else "fp32"
    m.put(("train", "precision"), precision, "fp16" if fp16 else "bf16" if "bf16" in m.src else None)
    if bf16 != "auto":
        m.cosmetic("bf16")
    tf32 = m.src.get("tf32")
    if tf32 is False:  # what ftr writes; true and 'auto' (TF32 where the GPU has it) stay as written
        m.cosmetic("tf32")
    elif tf32 is None:  # absent: Axolotl's default 'auto' (utils/schemas/config.py), not ftr's false
        m.cosmetic("tf32")
        m.keep("tf32", "auto")
        m.notes.append(Unmapped("tf32", None, "absent: Axolotl's default 'auto' uses TF32 matmuls on GPUs that "
                                "have them (Ampere and newer), which no recipe value says; kept as 'auto' under "
                                "backends.axolotl", path=("tf32",)))


def _checkpointing(m: Mapper) -> None:
    """`gradient_checkpointing: offload` and `activation_offloading: true` (what 0.19 turns offload into) are
    the recipe's 'offload'; Axolotl's other offloading modes (disk, legacy) have no recipe value and stay."""
    value, offloading = m.src.get("gradient_checkpointing", False), m.src.get("activation_offloading")
    if value == "offload" or (value is True and offloading is True):
        m.cosmetic("gradient_checkpointing", "activation_offloading")
        m.put(("train", "gradient_checkpointing"), "offload", "gradient_checkpointing")
    elif value in (True, False, None):
        m.take("gradient_checkpointing", ("train", "gradient_checkpointing"), False)
    else:
        _foreign(m, "gradient_checkpointing", f"Axolotl's {value!r} checkpointing has no recipe value")


def _eval_output(m: Mapper, base: Path) -> None:
    m.used.add("evals_per_epoch")  # 0 or absent: Axolotl derives no steps from it
    if m.src.get("evals_per_epoch"):
        m.take("evals_per_epoch", ("eval", "per_epoch"), convert=as_int)
    elif m.has("eval_steps"):
        m.put(("eval", "every"), "steps", "eval_steps")
        m.take("eval_steps", ("eval", "steps"), convert=as_int)
    else:
        m.take("eval_strategy", ("eval", "every"), "no")
    m.take("eval_batch_size", ("eval", "batch_size"), convert=as_int)
    m.take_path("output_dir", ("output", "dir"), "./model-out")  # Axolotl's default
    m.used.add("saves_per_epoch")  # 0 or absent: Axolotl derives no steps from it
    if m.src.get("saves_per_epoch"):
        m.take("saves_per_epoch", ("output", "per_epoch"), convert=as_int)
    elif m.has("save_steps"):
        m.put(("output", "save"), "steps", "save_steps")
        m.take("save_steps", ("output", "save_steps"), convert=as_int)
    else:
        m.take("save_strategy", ("output", "save"), "epoch")
    trackers = [name for key, name in (("use_wandb", "wandb"), ("use_tensorboard", "tensorboard"),
                                       ("use_mlflow", "mlflow")) if m.src.get(key)]
    if m.has("wandb_project"):
        trackers = sorted(set(trackers) | {"wandb"})
    m.put(("output", "report_to"), trackers or "none")
    take_deepspeed(m, base, "Axolotl")
    if all(m.src.get(key) is False for key in CPU_FLAGS):  # what ftr writes for a CPU run (hardware.gpus: 0)
        m.put(("hardware", "gpus"), 0, next(iter(CPU_FLAGS)))
        m.cosmetic(*CPU_FLAGS)


def _stage(m: Mapper) -> str:
    rl = m.src.get("rl")
    if rl and rl not in RL_BACK:
        _foreign(m, "rl", f"Axolotl's {rl!r} trainer has no recipe stage")
        return "grpo"  # for linting only: an on-policy trainer, not sft's rules
    m.used.add("rl")
    if rl:
        return RL_BACK[rl]
    if any(isinstance(d, dict) and d.get("type") == "completion" for d in m.src.get("datasets") or []):
        return "pt"
    return "rm" if m.src.get("reward_model") else "sft"


def _end_of_turn_note(m: Mapper, template: str | None) -> None:
    """Axolotl trains each reply and its EOS (train_on_eos: turn) and, of what follows, only the eot_tokens the
    file names; the template's reference, as LLaMA-Factory and trl train it, ends the reply with its whole
    assistant slot (ChatML's newline after <|im_end|>). Found by the conversion oracle's data check."""
    from ft_recipes.recipe import templates

    chat = any(isinstance(d, dict) and str(d.get("type") or "").startswith("chat_template")
               for d in m.src.get("datasets") or [])
    if not chat or m.src.get("eot_tokens") or m.src.get("train_on_eos") not in (None, "turn"):
        return
    if template in (None, "tokenizer"):  # the tokenizer's own template: what follows its EOS is not known here
        rest = "what the template writes after the EOS (ChatML: a newline)"
    else:
        reference = templates.reference(template)
        after = templates.after_reply(reference)[1] if reference else ""
        if not after.strip(" ") or after == templates.EOS_UNKNOWN:
            return
        rest = repr(after)
    m.notes.append(Unmapped("chat_template", m.src.get("chat_template"),
                            f"Axolotl trains each reply and its EOS; LLaMA-Factory and trl also train {rest} after "
                            f"it (the file names no eot_tokens)", cross=True))


def to_recipe(m: Mapper, base: Path) -> None:
    m.put(("ftr",), 1)
    template = import_name(m.src.get("chat_template"))  # issue 17: a name ftr emits back as this template
    m.cosmetic("chat_template")  # absent: None, written as absent; tokenizer_default: "tokenizer", written so
    if template:
        m.put(("model", "template"), template, "chat_template")
    _end_of_turn_note(m, template)
    tokens = m.src.get("special_tokens")
    pad = tokens.get("pad_token") if isinstance(tokens, dict) else None
    if pad:
        m.put(("model", "pad_token"), pad, ("special_tokens", "pad_token"))
    if tokens is None or tokens == {"pad_token": pad}:  # any other token stays, with the pad (a key is replaced whole)
        m.cosmetic("special_tokens")
    m.put(("stage",), _stage(m), "rl" if m.src.get("rl") and "rl" in m.used else None)
    stage = m.out["stage"]
    if stage in ("dpo", "simpo", "kto"):
        m.take("rl_beta", ("preference", "beta"), 0.1)
    if stage == "orpo":
        m.take("orpo_alpha", ("preference", "beta"), 0.1)
    _method(m)
    TABLE.take(m)  # every row of every section the stage and method use
    local_model_paths(m)
    _optimizer(m)
    _data(m, base)
    _train(m)
    _eval_output(m, base)
    m.cosmetic(*COSMETIC)
    _nulls(m)
    _end_of_turn(m)


def _end_of_turn(m: Mapper) -> None:
    """The file's own end of each reply, where the recipe's template would make the emitter set another.

    For a template with a reference, the emitter adds ``special_tokens.eos_token`` and ``eot_tokens`` so that
    Axolotl trains what ftr's reference template trains after each reply (issue 17). The file trained what it says
    (the tokenizer's EOS, no end-of-turn token): its ``special_tokens`` and ``eot_tokens`` are kept as written
    (absent: null) under backends.axolotl, which the emitter keeps, and each gets a note: another backend trains
    the template's reference tokens instead."""
    model = m.out.get("model", {})
    template = model.get("template")
    wanted = end_of_turn_keys(template, str(model.get("base") or "")) if template else {}
    tokens = m.src.get("special_tokens")
    eos = wanted.get("special_tokens", {}).get("eos_token")
    if eos and not (isinstance(tokens, dict) and tokens.get("eos_token")):
        m.used.discard("special_tokens")
        if "special_tokens" not in m.src:
            m.keep("special_tokens", None)
        m.notes.append(Unmapped("special_tokens", tokens, f"sets no eos_token: Axolotl ends each trained reply "
                                f"with the tokenizer's EOS, where ftr's template {template!r} trains {eos!r} (its "
                                "reference, as LLaMA-Factory does); kept as written under backends.axolotl",
                                path=("special_tokens",)))
    if wanted.get("eot_tokens") and m.src.get("eot_tokens") is None:
        m.used.discard("eot_tokens")
        if "eot_tokens" not in m.src:
            m.keep("eot_tokens", None)
        m.notes.append(Unmapped("eot_tokens", None, f"absent: Axolotl trains no end-of-turn token after each reply, "
                                f"where ftr's template {template!r} also trains {wanted['eot_tokens']!r} (its "
                                "reference, as LLaMA-Factory does); kept as null under backends.axolotl",
                                path=("eot_tokens",)))


def _nulls(m: Mapper) -> None:
    """A key written as null whose Axolotl default is null means the same as an absent key."""
    from ft_recipes.backends.catalogue import load

    keys = load("axolotl").get("keys", {})
    m.cosmetic(*(key for key, value in m.src.items() if value is None and key in keys
                 and keys[key].get("default") is None))
