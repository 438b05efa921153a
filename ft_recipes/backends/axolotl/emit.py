"""Recipe -> Axolotl config (``axolotl.yaml``), for the version the ``Backend`` targets (0.19.0 or 0.21.0: the
keys ftr writes mean the same in both, see docs/backends/axolotl.md).

Chat and instruction data is rendered through the recipe's chat template (``type: chat_template``),
so a recipe means the same prompts on Axolotl as on LLaMA-Factory. Alpaca and preference rows are
rewritten into messages under ``data/`` next to the config, since Axolotl's ``type: alpaca`` uses a
fixed Alpaca prompt instead of the chat template.
"""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.axolotl.keys import CPU_FLAGS, IGNORED_SYSTEM, RL
from ft_recipes.backends.axolotl.templates import chat_template_keys, end_of_turn_keys
from ft_recipes.backends.base import check
from ft_recipes.backends.datacheck import row_problem
from ft_recipes.backends.emitted import Emitted, Note, apply_passthrough, deepspeed_path, first_rows, unsupported
from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.recipe.datasets import (
    alpaca_to_messages,
    iter_rows,
    kto_to_conversational,
    preference_to_bradley_terry,
    preference_to_conversational,
    preference_to_conversations,
    preference_to_messages,
    role_names,
)
from ft_recipes.recipe.model import Dataset, Recipe
from ft_recipes.recipe.modelinfo import config as model_config
from ft_recipes.recipe.modelinfo import special_token

NAME = "axolotl"
MAIN = "axolotl.yaml"

# Preference stages whose rows ftr hands to trl in its conversational form, rendered by the chat template there.
TRL_RENDERED = ("dpo", "simpo")


def _check(recipe: Recipe, backend) -> None:
    if recipe.stage == "kto" and recipe.train.micro_batch_size < 2:
        raise unsupported(recipe, ("train", "micro_batch_size"),
                          "Axolotl's KTO (trl's KTOTrainer) estimates the KL term from the other completions of "
                          "the same batch and refuses micro_batch_size 1",
                          "set train.micro_batch_size: 2 or more, or use --backend llamafactory")
    check(backend, recipe)
    chat = [] if {"datasets", "pretraining_dataset"} & set(_native(recipe)) else \
        [ds for ds in recipe.data.train if ds.format != "text"]
    if recipe.stage == "pt" and chat:
        raise unsupported(recipe, chat[0].key_path + ("format",),
                          f"Axolotl has no pretraining stage: {chat[0].format} rows would train as sft",
                          "use format: text rows for pt, or stage: sft")


def _native(recipe: Recipe) -> dict:
    """``backends.axolotl``: keys written verbatim over the compiled config."""
    return recipe.backends.get(NAME, {})


def _rows(recipe: Recipe, ds: Dataset) -> list[dict]:
    try:
        rows = list(iter_rows(ds.path, ds.num_samples))
    except (OSError, ValueError) as exc:
        file, line, col = recipe.where(ds.key_path + ("path",))
        raise FtrError(f"{ds.path}: {exc}", [Finding(file, line, col, "FTR004", "error",
                                                     f"cannot read dataset {ds.path}: {exc}",
                                                     "Axolotl needs alpaca/preference rows rewritten as messages; "
                                                     "ftr reads .jsonl/.json", ".".join(map(str, ds.key_path)))])
    for number, row in enumerate(rows, 1):
        problem = row_problem(row, ds) if isinstance(row, dict) else ("not a JSON object", "")
        if problem:
            file, line, col = recipe.where(ds.key_path + ("path",))
            message = f"{ds.path.name} row {number}: {problem[0]} for format {ds.format}"
            raise FtrError(message, [Finding(file, line, col, "FTR204", "error", message,
                                             "fix the rows, the format, or map the columns with `columns:`",
                                             ".".join(map(str, ds.key_path)))])
    return rows


def _dataset(recipe: Recipe, ds: Dataset, out_dir: Path, data_files: dict) -> dict:
    entry: dict = {"path": ds.hub or str(ds.path)}
    split = first_rows(recipe, ds)
    if split != "train":
        entry["split"] = split  # Axolotl hands it to datasets.load_dataset, local files too
    if ds.subset:
        entry["name"] = ds.subset  # load_dataset's configuration name
    if ds.format == "text":
        entry.update({"type": "completion", "field": ds.column("text")})
        return entry
    if recipe.stage == "kto":  # unpaired rows in trl's conversational form, rendered by the chat template there
        name = f"data/{ds.name}.jsonl"
        data_files[name] = [with_system(kto_to_conversational(row, ds), recipe.data.system_prompt)
                            for row in _rows(recipe, ds)]
        return {"path": str(out_dir / name)}
    needs_rewrite = ds.format in ("alpaca", "preference")
    if needs_rewrite:
        if ds.hub:
            raise unsupported(recipe, ds.key_path, f"ftr cannot rewrite hub dataset {ds.hub!r} for Axolotl",
                              "download it and point `path` at the file, or convert it to messages")
        convert = alpaca_to_messages
        if ds.format == "preference" and recipe.stage == "rm":
            return _reward_dataset(recipe, ds, out_dir, data_files)
        if ds.format == "preference" and recipe.stage == "orpo" and recipe.data.system_prompt is not None:
            raise unsupported(recipe, ("data", "system_prompt"), f"{IGNORED_SYSTEM}; ftr does not write the system "
                              "prompt into Axolotl's ORPO rows (chat_template.argilla)",
                              "put the system turn in the data, or use --backend llamafactory")
        if ds.format == "preference":
            convert = preference_to_conversations if recipe.stage == "orpo" else preference_to_messages
            if recipe.stage in TRL_RENDERED:  # issue 17: trl renders the reply with its end of turn, as LF does
                convert = preference_to_conversational
        name = f"data/{ds.name}.jsonl"
        data_files[name] = [with_system(convert(row, ds), recipe.data.system_prompt)  # the first num_samples rows
                            for row in _rows(recipe, ds)]
        entry = {"path": str(out_dir / name), "ds_type": "json"}
    elif recipe.data.system_prompt is not None:
        raise unsupported(recipe, ("data", "system_prompt"),
                          f"{IGNORED_SYSTEM}; ftr writes the system prompt into the rows it rewrites (alpaca, "
                          f"preference, KTO), not into a {ds.format} file Axolotl reads itself",
                          "put the system turn in the data, or use --backend llamafactory or trl")
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
    if not needs_rewrite and {"user", "assistant"} & set(dict(ds.columns)):  # the file's own role names
        names: dict = {}
        for name, role in role_names(ds).items():
            names.setdefault(role, []).append(name)
        entry["roles"] = names
    entry["roles_to_train"] = ["assistant"]
    entry["train_on_eos"] = "turn"
    return entry


def with_system(row: dict, system: str | None) -> dict:
    """A rewritten row with the recipe's system prompt where it has no system turn of its own (LLaMA-Factory's
    default_system: the row's own system wins); Axolotl has no working key for it."""
    if system is None:
        return row
    for key in ("messages", "prompt"):
        turns = row.get(key)
        if isinstance(turns, list):
            if any(isinstance(t, dict) and t.get("role") == "system" for t in turns):
                return row
            return {**row, key: [{"role": "system", "content": system}, *turns]}
    if "system" in row and not row["system"]:  # reward modelling's flat pairs
        return {**row, "system": system}
    return row


def _reward_dataset(recipe: Recipe, ds: Dataset, out_dir: Path, data_files: dict) -> dict:
    """Reward modelling reads flat pairs (system, input, chosen, rejected) through bradley_terry.chat_template."""
    rows = [preference_to_bradley_terry(row, ds) for row in _rows(recipe, ds)]
    rows = [row if row is None else with_system(row, recipe.data.system_prompt) for row in rows]
    if any(row is None for row in rows):
        raise unsupported(recipe, ds.key_path, "Axolotl's reward-model datasets hold one user turn per pair",
                          "use --backend llamafactory for multi-turn preference prompts")
    name = f"data/{ds.name}.jsonl"
    data_files[name] = rows
    return {"path": str(out_dir / name), "ds_type": "json", "type": "bradley_terry.chat_template"}


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
    if method.lora:  # a target key under backends.axolotl (an imported file's own) replaces ftr's
        native = _native(recipe)
        if "lora_target_linear" not in native:
            cfg["lora_target_linear"] = method.lora.target == "all-linear"
        if method.lora.target != "all-linear" and "lora_target_modules" not in native:
            cfg["lora_target_modules"] = list(method.lora.target)
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


def _model(recipe: Recipe, cfg: dict, notes: list) -> None:
    if recipe.model.template or not _native(recipe).get("tokenizer_use_mistral_common"):  # which refuses one
        cfg.update(chat_template_keys(recipe.model.template))  # issue 17: named if it renders the same, else jinja
    if recipe.model.pad_token:
        pad = special_token(recipe.model.base, "eos") if recipe.model.pad_token == "eos" else recipe.model.pad_token
        if pad is None:
            raise unsupported(recipe, ("model", "pad_token"),
                              "pad_token: eos needs the EOS token string for Axolotl, and this model's is unknown",
                              "write the token itself, e.g. pad_token: '</s>'")
        cfg["special_tokens"] = {"pad_token": pad}
    for key, value in end_of_turn_keys(recipe.model.template, recipe.model.base).items():  # issue 17: same labels
        if key in _native(recipe):  # an imported file's own (importer._end_of_turn): kept, with a note if it differs
            _own_end_of_turn(recipe, key, value, notes)
            continue
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    if recipe.stage in RL:
        cfg["rl"] = RL[recipe.stage]
    if recipe.stage == "rm":
        cfg["reward_model"] = True
    if recipe.preference and recipe.stage in RL:
        cfg["orpo_alpha" if recipe.stage == "orpo" else "rl_beta"] = float(recipe.preference.beta)


def _own_end_of_turn(recipe: Recipe, key: str, value, notes: list) -> None:
    """A note when ``backends.axolotl.<key>`` (special_tokens or eot_tokens) leaves out what the template's
    reference trains after each reply: Axolotl then trains the end of each reply as that value says."""
    own = _native(recipe)[key]
    if isinstance(value, dict):
        missing = {k: v for k, v in value.items() if not isinstance(own, dict) or own.get(k) != v}
    else:
        missing = value if own != value else None
    if missing:
        notes.append(Note("model.template", f"backends.axolotl.{key}: {own!r} is kept (an imported file's own), so "
                                            "Axolotl trains the end of each reply as that file did, not as the "
                                            f"reference of template {recipe.model.template!r} does ({key}: "
                                            f"{missing!r})"))


def _schedule(recipe: Recipe, cfg: dict) -> None:
    t = recipe.train
    cfg["lr_scheduler"] = "cosine" if t.scheduler == "cosine_with_min_lr" else t.scheduler
    if t.scheduler == "cosine_with_min_lr":  # Axolotl's cosine decays to lr x cosine_min_lr_ratio
        cfg["cosine_min_lr_ratio"] = t.min_lr / t.lr
    if {"warmup_steps", "warmup_ratio"} & set(_native(recipe)):
        pass  # an imported file's own warmup (or its absence: null, Axolotl's default) replaces the recipe's
    elif t.warmup_steps is not None:
        cfg["warmup_steps"] = t.warmup_steps
    elif recipe.stage == "simpo":  # Axolotl 0.19: "warmup_ratio is not supported with the simpo trainer"
        raise unsupported(recipe, ("train", "warmup_ratio"), "Axolotl's simpo trainer takes warmup in steps only",
                          "set train.warmup_steps, or use --backend llamafactory")
    else:
        cfg["warmup_ratio"] = float(t.warmup_ratio or 0.0)
    cfg["bf16"] = t.precision == "bf16"
    cfg["fp16"] = t.precision == "fp16"
    if "tf32" not in _native(recipe):  # an imported file's own (absent there: 'auto') replaces ftr's
        cfg["tf32"] = False
    cfg["gradient_checkpointing"] = bool(t.gradient_checkpointing)
    if t.gradient_checkpointing == "offload":  # 0.19 reads `gradient_checkpointing: offload` as exactly this
        cfg["activation_offloading"] = True


def _cadence(recipe: Recipe, cfg: dict) -> None:
    d, o, e = recipe.data, recipe.output, recipe.eval
    if e.per_epoch and d.has_validation:  # Axolotl derives steps from evals_per_epoch and refuses both
        cfg["evals_per_epoch"] = e.per_epoch
    else:
        cfg["eval_strategy"] = e.strategy if d.has_validation else "no"
        if e.strategy == "steps" and e.steps and d.has_validation:
            cfg["eval_steps"] = e.steps
    cfg["eval_batch_size"] = e.batch_size or recipe.train.micro_batch_size
    if o.per_epoch:
        cfg["saves_per_epoch"] = o.per_epoch
    else:
        cfg["save_strategy"] = o.save
        if o.save == "steps" and o.save_steps:
            cfg["save_steps"] = o.save_steps
    for tracker in o.report_to:
        cfg[f"use_{tracker}"] = True


def _val_split(recipe: Recipe, cfg: dict) -> None:
    split = recipe.data.val_split
    if split >= 1 and recipe.stage in RL:
        raise unsupported(recipe, ("data", "val", "split"),
                          f"Axolotl's {recipe.stage} path reads val_set_size {split:g} as a fraction, not a row count",
                          "write a fraction below 1, or use --backend llamafactory")
    if split == 1:
        raise unsupported(recipe, ("data", "val", "split"),
                          "Axolotl reads val_set_size 1 as the fraction 1.0 (the whole dataset)",
                          "hold out 2 rows or more, or a fraction below 1")
    cfg["val_set_size"] = split if split < 1 else int(split)


def emit(recipe: Recipe, out_dir: Path, backend=None) -> Emitted:
    """``backend``: the ``Backend`` at the targeted version (default: the package's, 0.19.0)."""
    from ft_recipes.backends.axolotl import BACKEND

    backend = backend or BACKEND
    _check(recipe, backend)
    d, o = recipe.data, recipe.output
    cfg: dict = {}
    backend.keys.emit(recipe, cfg)
    notes: list = []
    _model(recipe, cfg, notes)
    _method(recipe, cfg)
    data_files: dict = {}
    native = _native(recipe)  # Axolotl's own dataset entries (an imported prompt format): written verbatim
    if "pretraining_dataset" not in native:  # Axolotl streams that one instead of datasets
        cfg["datasets"] = native.get("datasets") or [_dataset(recipe, ds, out_dir, data_files) for ds in d.train]
    if d.val:
        cfg["test_datasets"] = native.get("test_datasets") or [_dataset(recipe, ds, out_dir, data_files)
                                                               for ds in d.val]
    else:
        _val_split(recipe, cfg)
    if "datasets" not in native and any("type" not in e for e in cfg.get("datasets",
        [])) and recipe.stage in (*TRL_RENDERED, "kto"):
        cfg["skip_prepare_dataset"] = True  # Axolotl's length filter tokenizes strings; trl truncates instead
    cfg["dataset_prepared_path"] = str(o.dir / "prepared")
    cfg["output_dir"] = str(o.dir)
    _schedule(recipe, cfg)
    _cadence(recipe, cfg)
    if recipe.hardware.deepspeed:
        cfg["deepspeed"] = deepspeed_path(recipe)
    if recipe.hardware.gpus == 0:
        cfg.update(CPU_FLAGS)
    configs = {MAIN: cfg, **_continue_adapter(recipe, cfg)}
    notes = backend.notes(recipe) + notes + apply_passthrough(cfg, recipe, NAME)
    return Emitted(NAME, backend.version, MAIN, configs=configs, data_files=data_files, notes=notes)


CONTINUE_PLUGIN = "ftr_continue_adapter.py"
FRESH_ADAPTER_STAGES = ("dpo", "kto")  # Axolotl hands these TRL a LoRA config and ignores lora_model_dir


def _continue_adapter(recipe: Recipe, cfg: dict) -> dict:
    """For DPO/KTO on ``model.adapter``: the plugin that loads the saved adapter (see continue_adapter.py)."""
    if recipe.model.adapter is None or recipe.stage not in FRESH_ADAPTER_STAGES:
        return {}
    cfg["plugins"] = [f"{CONTINUE_PLUGIN.removesuffix('.py')}.ContinueAdapter"]
    return {CONTINUE_PLUGIN: Path(__file__).with_name("continue_adapter.py").read_text(encoding="utf-8")}
