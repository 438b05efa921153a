"""Stage 4: turn a valid, resolved recipe into the typed ``Recipe`` with every default explicit.

Relative paths are resolved against the file that wrote them (a preset's data path is relative to
the preset), so compiled configs work from any working directory.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from ft_recipes.core.paths import real_parent, real_path
from ft_recipes.recipe import model as r
from ft_recipes.recipe.fields import check_declared
from ft_recipes.recipe.resolve import Resolved

DEFAULT_LORA = r.Lora()
DEFAULT_METHOD = r.Method()


def _get(data: dict, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _base_dir(resolved: Resolved, path: tuple) -> Path:
    src = resolved.source(path)
    return real_parent(src.file if src else resolved.document.file)


def _local_path(value: str, base: Path) -> Path:
    return real_path(base / Path(value).expanduser())


def _is_local_model(value: str, base: Path) -> bool:
    return value.startswith((".", "/", "~")) or (base / value).is_dir()


def _model(resolved: Resolved) -> r.Model:
    m = resolved.data["model"]
    base = m["base"]
    local = _is_local_model(base, _base_dir(resolved, ("model", "base")))
    if local:
        base = str(_local_path(base, _base_dir(resolved, ("model", "base"))))
    adapter = m.get("adapter")
    if adapter is not None:
        adapter = _local_path(adapter, _base_dir(resolved, ("model", "adapter")))
    return _section(r.Model, m, computed={"base": base, "is_local": local, "adapter": adapter})


def _section(cls, spec: dict, computed: dict | None = None, **derived):
    """A recipe dataclass from its YAML section: ``computed`` values (paths made absolute, cadences), then the
    written values (lists as tuples), then ``derived`` defaults (those that depend on other values), then the
    dataclass's own defaults (declared once, in recipe.py)."""
    computed = computed or {}
    names = {f.name for f in fields(cls)} - set(computed)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k in names}
    return cls(**{**derived, **values, **computed})


def _method(data: dict, stage: str, precision: str) -> r.Method:
    m = data.get("method", {})
    kind = m.get("type", DEFAULT_METHOD.type)
    used = r.sections_used(stage, kind, {f"method.{name}" for name in m})
    parts = {}
    if "method.lora" in used:
        spec = m.get("lora", {})
        parts["lora"] = _section(r.Lora, spec, alpha=2 * spec.get("r", DEFAULT_LORA.r))
    if "method.quant" in used:
        parts["quant"] = _section(r.Quant, m.get("quant", {}),
                                  compute_dtype=precision if precision in ("bf16", "fp16") else "fp32")
    if "method.oft" in used:
        parts["oft"] = _section(r.Oft, m.get("oft", {}), block_size=0 if m.get("oft", {}).get("rank") else 32)
    for name, cls in (("freeze", r.Freeze), ("prompt", r.PromptLearning)):
        if f"method.{name}" in used:
            parts[name] = _section(cls, m.get(name, {}))
    return r.Method(type=kind, **parts)


def _dataset_name(entry: dict, taken: set[str]) -> str:
    name = entry.get("name")
    if not name:
        stem = Path(entry.get("path") or entry.get("hub")).name
        stem = re.sub(r"\.(jsonl|json|csv|parquet|arrow|txt)$", "", stem)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "data"
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


def _datasets(resolved: Resolved, path: tuple, taken: set[str]) -> tuple[r.Dataset, ...]:
    out = []
    for i, entry in enumerate(_get(resolved.data, *path, default=[])):
        where = path + (i,)
        local = None
        if "path" in entry:
            local = _local_path(entry["path"], _base_dir(resolved, where + ("path",)))
        out.append(r.Dataset(format=entry["format"], path=local, hub=entry.get("hub"),
                             name=_dataset_name(entry, taken),
                             columns=tuple(sorted(entry.get("columns", {}).items())),
                             split=entry.get("split", "train"), subset=entry.get("subset"),
                             num_samples=entry.get("num_samples"),
                             key_path=where))
    return tuple(out)


def _data(resolved: Resolved) -> r.Data:
    d = resolved.data["data"]
    taken: set[str] = set()
    val = d.get("val", {})
    return _section(r.Data, d, computed={
        "train": _datasets(resolved, ("data", "train"), taken),
        "val_split": float(val.get("split", r.Data.val_split)),
        "val": _datasets(resolved, ("data", "val", "datasets"), taken)})


def _train(data: dict) -> r.Train:
    t = data.get("train", {})
    defaults = r.Train()
    epochs = t.get("epochs")
    if epochs is None and "max_steps" not in t:
        epochs = defaults.epochs
    warmup_steps = t.get("warmup_steps")
    warmup_ratio = t.get("warmup_ratio", None if warmup_steps is not None else defaults.warmup_ratio)
    return _section(r.Train, t, computed={"epochs": epochs, "max_steps": t.get("max_steps"),
                                          "warmup_ratio": warmup_ratio, "warmup_steps": warmup_steps})


def _cadence(resolved: Resolved, section: str, every_key: str, steps_keys: tuple[str, ...]) -> str | None:
    """The written cadence, where a step count written in a later layer than ``every`` (a preset's
    ``every: epoch`` under the user's ``steps: 2``) implies ``steps``."""
    part = resolved.data.get(section, {})
    every = part.get(every_key)
    rank = resolved.layer_of((section, every_key))
    if every is not None and any(k in part and resolved.layer_of((section, k)) > rank for k in steps_keys):
        return "steps"
    return every


def _eval(resolved: Resolved, has_validation: bool) -> r.Eval:
    e = resolved.data.get("eval", {})
    strategy = _cadence(resolved, "eval", "every", ("steps", "per_epoch"))
    if strategy is None:
        strategy = "steps" if "steps" in e or "per_epoch" in e else ("epoch" if has_validation else "no")
    per_epoch = e.get("per_epoch")
    if per_epoch == 1 and strategy == "steps" and "steps" not in e:  # once per epoch is the epoch strategy;
        strategy = "epoch"  # per_epoch stays for the backend that has the key (Axolotl reads it its own way)
    tasks = tuple(_task(t, _base_dir(resolved, ("eval", "tasks"))) for t in e.get("tasks", ()))
    return _section(r.Eval, e, computed={"strategy": strategy, "per_epoch": per_epoch, "tasks": tasks})


def _task(task: str, base: Path) -> str:
    """An lm-eval task name as written; a task YAML file or folder made absolute (relative to its recipe)."""
    if task.endswith((".yaml", ".yml")) or "/" in task or (base / task).exists():
        return str(_local_path(task, base))
    return task


def _output(resolved: Resolved) -> r.Output:
    o = resolved.data.get("output", {})
    stem = Path(resolved.document.file).stem
    out_dir = _local_path(o.get("dir", f"runs/{stem}"), _base_dir(resolved, ("output", "dir")))
    report = o.get("report_to", "none")
    report = () if report == "none" else ((report,) if isinstance(report, str) else tuple(report))
    save = _cadence(resolved, "output", "save", ("save_steps", "per_epoch"))
    if save is None:
        save = "steps" if "save_steps" in o or "per_epoch" in o else "epoch"
    per_epoch = o.get("per_epoch")
    if per_epoch == 1 and save == "steps" and "save_steps" not in o:  # once per epoch is the epoch strategy;
        save = "epoch"  # per_epoch stays for the backend that has the key (Axolotl reads it its own way)
    return _section(r.Output, o, computed={"dir": out_dir, "save": save, "per_epoch": per_epoch,
                                           "report_to": report})


def _hardware(data: dict) -> r.Hardware:
    return _section(r.Hardware, data.get("hardware", {}))


def _preference(data: dict, stage: str) -> r.Preference | None:
    if "preference" not in r.sections_used(stage, "", set(data)):
        return None
    return _section(r.Preference, data.get("preference", {}))


def whole_integers(data: Any, schema: dict, root: dict | None = None) -> Any:
    """``data`` with every whole float at an integer-typed schema position made an int (``r: 2.0`` -> 2)."""
    root = root or schema
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(data, dict):
        props = schema.get("properties", {})
        return {k: whole_integers(v, props[k], root) if k in props else v for k, v in data.items()}
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        return [whole_integers(v, schema["items"], root) for v in data]
    if isinstance(data, float) and data.is_integer() and _integer_typed(schema, root):
        return int(data)
    return data


def _integer_typed(schema: dict, root: dict) -> bool:
    if schema.get("type") == "integer":
        return True
    return any(_integer_typed(option, root) for option in schema.get("oneOf", []) + schema.get("anyOf", []))


def normalise(resolved: Resolved) -> r.Recipe:
    from ft_recipes.recipe.validate import recipe_schema

    resolved.data = whole_integers(resolved.data, recipe_schema())
    data = resolved.data
    check_declared(data)
    stage = data.get("stage", "sft")
    train = _train(data)
    recipe_data = _data(resolved)
    ignore = tuple(_get(data, "lint", "ignore", default=[]))
    method = _method(data, stage, train.precision)
    return r.Recipe(model=_model(resolved), stage=stage, method=method, data=recipe_data,
                    train=train, eval=_eval(resolved, recipe_data.has_validation), output=_output(resolved),
                    hardware=_hardware(data), preference=_preference(data, stage),
                    backends=dict(data.get("backends", {})), lint_ignore=ignore,
                    source_file=resolved.document.file, raw=data,
                    provenance=resolved.provenance)


def _dataset_data(ds: r.Dataset) -> dict:
    out: dict = {"path": str(ds.path)} if ds.path else {"hub": ds.hub}
    out.update({"name": ds.name, "format": ds.format})
    if ds.columns:
        out["columns"] = dict(ds.columns)
    if ds.split != "train":
        out["split"] = ds.split
    if ds.num_samples:
        out["num_samples"] = ds.num_samples
    return out


def _fields(obj, rename: dict | None = None, skip: tuple = ()) -> dict:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in skip or value is None or value == ():
            continue
        out[(rename or {}).get(f.name, f.name)] = list(value) if isinstance(value, tuple) else (
            str(value) if isinstance(value, Path) else value)
    return out


def to_data(recipe: r.Recipe) -> dict:
    """The normalised recipe written back in recipe format: every default explicit."""
    method: dict = {"type": recipe.method.type}
    for name in ("lora", "quant", "freeze", "prompt", "oft"):
        part = getattr(recipe.method, name)
        if part is not None:
            method[name] = _fields(part)
    data = {"train": [_dataset_data(ds) for ds in recipe.data.train]}
    if recipe.data.val:
        data["val"] = {"datasets": [_dataset_data(ds) for ds in recipe.data.val]}
    elif recipe.data.val_split:
        data["val"] = {"split": recipe.data.val_split}
    data.update(_fields(recipe.data, skip=("train", "val", "val_split")))
    out = {"ftr": 1, "model": _fields(recipe.model, skip=("is_local",)), "stage": recipe.stage, "method": method}
    if recipe.preference:
        out["preference"] = _fields(recipe.preference)
    out.update({"data": data, "train": _fields(recipe.train),
                "eval": _fields(recipe.eval, rename={"strategy": "every"}),
                "output": _fields(recipe.output), "hardware": _fields(recipe.hardware)})
    if recipe.backends:
        out["backends"] = recipe.backends
    if recipe.lint_ignore:
        out["lint"] = {"ignore": list(recipe.lint_ignore)}
    return out
