"""What ``ftr eval`` evaluates: the trained result of a run directory (or a model folder) and its base model."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.model import Recipe


@dataclass(frozen=True)
class Model:
    label: str  # "base" or "tuned"
    pretrained: str  # hub id or folder lm-eval loads
    peft: str | None = None  # adapter folder, loaded on top of ``pretrained`` through lm-eval's peft=
    tokenizer: str | None = None  # tokenizer folder when not ``pretrained``'s
    quantization: dict | None = None  # {bits, type, double_quant}: load ``pretrained`` quantized (a QLoRA run)

    def job(self) -> dict:
        return {"label": self.label, "pretrained": self.pretrained, "peft": self.peft, "tokenizer": self.tokenizer,
                "quantization": self.quantization}

    def describe(self) -> str:
        return f"{self.pretrained} + adapter {self.peft}" if self.peft else self.pretrained


@dataclass(frozen=True)
class Target:
    tuned: Model
    base: Model | None  # None: no base model known
    kind: str  # adapter, merged, full
    run_dir: Path | None = None
    recipe: Recipe | None = None
    template: str | None = None  # the chat template the run trained with (its saved tokenizer's)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FtrError(f"{path}: cannot read ({exc})", exit_code=2) from None
    return value if isinstance(value, dict) else {}


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file()


def load_run_recipe(run_dir: Path) -> Recipe | None:
    """The run's ``recipe.resolved.yaml`` as a Recipe; None when it is missing or no longer valid here."""
    from ft_recipes.recipe.loaded import load_recipe

    path = run_dir / "recipe.resolved.yaml"
    if not path.is_file():
        return None
    try:
        return load_recipe(path).recipe
    except FtrError:
        return None


def _tuned(folder: Path, base: str | None, merged: Path | None) -> tuple[Model, str]:
    """The trained model in ``folder``: the ``merged`` copy when given, an adapter on ``base``, or a full model."""
    if merged is not None:
        if not (merged / "config.json").is_file():
            raise FtrError(f"{merged}: no merged model here; run `ftr merge {folder}` first", exit_code=2)
        return Model("tuned", str(merged)), "merged"
    if (folder / "adapter_config.json").is_file():
        config = _read_json(folder / "adapter_config.json")
        pretrained = base or config.get("base_model_name_or_path")
        if not pretrained:
            raise FtrError(f"{folder}: an adapter without a base model; give --base-model", exit_code=2)
        return Model("tuned", str(pretrained), peft=str(folder),
                     tokenizer=str(folder) if _has_tokenizer(folder) else None), "adapter"
    if (folder / "config.json").is_file():
        return Model("tuned", str(folder)), "full"
    raise FtrError(f"{folder}: holds no trained model (no adapter_config.json, no config.json); did the run "
                   f"finish?", exit_code=2)


def merged_from(folder: Path) -> Path | None:
    """The run directory whose adapter ``folder`` is the merge of: RUN_DIR/merged (``ftr merge``'s default, a
    stage's ``merge: true``) or a pipeline's ``stage: merge`` step (its pipeline.json names the stage merged)."""
    if folder.name == "merged" and (folder.parent / "manifest.json").is_file():
        return folder.parent
    state = folder.parent / "pipeline.json"
    if not state.is_file():
        return None
    for entry in _read_json(state).get("stages") or []:
        inputs = entry.get("inputs") if isinstance(entry, dict) else None
        if entry.get("kind") == "merge" and inputs and Path(str(entry.get("run_dir"))).resolve() == folder:
            return Path(inputs[0]["path"])
    return None


def resolve(path: Path, merged: bool = False, base_model: str | None = None) -> Target:
    """The target of ``ftr eval PATH``: a run directory (it has manifest.json), a run's merged model (its run's
    recipe, base and held-out rows), or a model folder."""
    from ft_recipes.recipe.templates import saved_chat_template

    path = path.resolve()
    if not path.is_dir():
        raise FtrError(f"{path}: not a directory; give a run directory or a model folder", exit_code=2)
    run_dir = path if (path / "manifest.json").is_file() else merged_from(path)
    if run_dir is None or not (run_dir / "manifest.json").is_file():
        tuned, kind = _tuned(path, base_model, None)
        base = base_model or (tuned.pretrained if kind == "adapter" else None)
        return Target(tuned, Model("base", base) if base else None, kind)
    merged_dir = path if run_dir != path else (path / "merged" if merged else None)
    recipe = load_run_recipe(run_dir)
    base = base_model or (recipe.model.base if recipe else None)
    tuned, kind = _tuned(run_dir, base, merged_dir)
    base = base or (tuned.pretrained if kind == "adapter" else None)
    base_model = Model("base", base) if base else None
    quant = quantization(recipe) if kind == "adapter" else None
    if quant:  # a QLoRA adapter on the base quantized as it trained, and that base to compare with
        tuned = replace(tuned, quantization=quant)
        base_model = replace(base_model, quantization=quant) if base_model else None
    return Target(tuned, base_model, kind, run_dir=run_dir, recipe=recipe, template=saved_chat_template(str(run_dir)))


def quantization(recipe: Recipe | None) -> dict | None:
    """The bitsandbytes quantization a run's adapter trained on (QLoRA's ``method.quant``), None when none."""
    quant = recipe.method.quant if recipe else None
    if quant is None:
        return None
    return {"bits": quant.bits, "type": quant.type, "double_quant": quant.double_quant}
