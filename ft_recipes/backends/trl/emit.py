"""Recipe -> a readable transformers + peft + trl training script (``train.py``) and its config
(``trl.json``). The script holds no values: it reads them all from the config."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.base import check
from ft_recipes.backends.emitted import Emitted, deepspeed_path, header, unsupported
from ft_recipes.backends.trl.templates import chat_template, marked
from ft_recipes.recipe.model import PROMPT_METHODS, Dataset, Recipe

NAME = "trl"
VERSION = "1.9.0"
MAIN = "trl.json"
SCRIPT = "train.py"


def _check(recipe: Recipe) -> None:
    from ft_recipes.backends.trl import BACKEND

    if recipe.stage == "dpo" and recipe.method.type in PROMPT_METHODS:
        raise unsupported(recipe, ("method", "type"), "DPO with prompt-learning methods is not supported by TRL",
                          "use lora or qlora for dpo")
    check(BACKEND, recipe)
    for ds in (*recipe.data.train, *recipe.data.val):
        if ds.hub:
            raise unsupported(recipe, ds.key_path, "the trl backend reads local .jsonl files",
                              "download the dataset and set path:")


def _dataset(ds: Dataset) -> dict:
    return {"path": str(ds.path), "format": ds.format, "columns": dict(ds.columns), "num_samples": ds.num_samples}


def chat_rows(recipe: Recipe) -> bool:
    """SFT on chat rows (not plain text): where the loss is restricted to the replies."""
    return recipe.stage == "sft" and any(ds.format != "text" for ds in recipe.data.train)


def _loss(recipe: Recipe, cfg: dict) -> None:
    """The chat template and the tokens trained: with the generated template (generation markers), every
    assistant turn's whole slot (``assistant_only_loss``), as LLaMA-Factory trains it; without one, the completion
    of prompt/completion rows (``completion_only_loss``); everything with ``data.train_on_prompt``."""
    cfg["chat_template"] = chat_template(recipe.model.template)
    if chat_rows(recipe):
        replies = not recipe.data.train_on_prompt
        cfg["args"]["assistant_only_loss"] = replies and marked(recipe.model.template)
        cfg["args"]["completion_only_loss"] = replies and not marked(recipe.model.template)


def _structure(recipe: Recipe, cfg: dict) -> None:
    t, o, d, e = recipe.train, recipe.output, recipe.data, recipe.eval
    cfg["stage"] = "dpo" if recipe.stage == "dpo" else "sft"
    cfg["method"]["type"] = recipe.method.type
    cfg.setdefault("quant", None)
    cfg["precision"] = t.precision
    cfg["train"] = [_dataset(ds) for ds in d.train]
    cfg["val"] = [_dataset(ds) for ds in d.val]
    cfg.setdefault("val_split", 0.0)
    cfg["merge"] = bool(recipe.backends.get(NAME, {}).get("merge", False))
    args = cfg["args"]
    _loss(recipe, cfg)
    args.setdefault("max_steps", -1)
    args.setdefault("num_train_epochs", 1.0)
    # transformers 5 reads warmup_steps < 1 as a ratio (warmup_ratio is gone)
    args["warmup_steps"] = t.warmup_steps if t.warmup_steps is not None else float(t.warmup_ratio or 0.0)
    args["bf16"] = t.precision == "bf16"
    args["fp16"] = t.precision == "fp16"
    # virtual-token methods do not support gradient checkpointing (an approximation note says so)
    args["gradient_checkpointing"] = bool(t.gradient_checkpointing) and recipe.method.type not in PROMPT_METHODS
    if t.gradient_checkpointing == "offload" and args["gradient_checkpointing"]:
        args["activation_offloading"] = True
    args["eval_strategy"] = e.strategy if d.has_validation else "no"
    if e.strategy == "steps" and e.steps and d.has_validation:
        args["eval_steps"] = e.steps
    args["per_device_eval_batch_size"] = e.batch_size or t.micro_batch_size
    args["report_to"] = list(o.report_to) or "none"
    if recipe.hardware.deepspeed:
        args["deepspeed"] = deepspeed_path(recipe)


def emit(recipe: Recipe, out_dir: Path, backend=None) -> Emitted:
    from ft_recipes.backends.trl import BACKEND

    _check(recipe)
    cfg: dict = {"generated_by": header(recipe, NAME, VERSION).splitlines()[0].lstrip("# "),
                 "template": None, "pad_token": None, "system_prompt": None, "beta": 0.1, "method": {}, "args": {}}
    BACKEND.keys.emit(recipe, cfg)
    _structure(recipe, cfg)
    for key, value in recipe.backends.get(NAME, {}).items():
        if key != "merge":
            cfg["args"][key] = value
    script = (Path(__file__).with_name("train_script.py")).read_text(encoding="utf-8")
    return Emitted(NAME, VERSION, MAIN, configs={MAIN: cfg, SCRIPT: script}, notes=BACKEND.notes(recipe))
