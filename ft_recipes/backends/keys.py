"""Declarative key tables: one row per recipe field a backend can express.

A row says which native key a recipe value becomes (``native``), how the value is written (``out``) and read
back (``back``), what the backend does when the key is absent (``default``), and where the backend's own parser
puts the parsed value (``effective``, checked by the oracle tests). The emitter's plain renames, the importer's
mapping and ``ftr explain`` all read the same rows; only structural parts (datasets, templates, DeepSpeed,
quantization blocks) are code, and their rows are marked ``structural`` so that they are still documented.

A recipe field with no row in a backend's table is refused for that backend (FTR005, naming the backends whose
tables have it): nothing is ever dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

ABSENT = object()

NO_MAX_STEPS = "no train.max_steps (a step count decides how long training runs; the epochs are not written)"

# Typed-recipe attribute paths where they differ from the YAML path.
TYPED = {"data.val.split": "data.val_split", "eval.every": "eval.strategy", "data.val.datasets": "data.val"}

# Fields that configure ftr itself (lint, VRAM estimate, launcher), not the backend's config.
FTR_ONLY = ("ftr", "extends", "description", "backends", "lint", "model.params", "hardware.gpu_memory_gb",
            "hardware.bf16", "eval.tasks", "eval.limit", "eval.num_fewshot",  # what `ftr eval` runs after training
            "hardware.gpus", "hardware.nodes", *(f"hardware.{k}" for k in (
                "launcher", "partition", "account", "time", "cpus_per_node", "container", "setup", "sbatch",
                "accelerator", "cloud", "ray_address", "port")))


@dataclass(frozen=True)
class Key:
    path: str
    native: str
    out: Callable[[Any], Any] | None = None
    back: Callable[[Any], Any] | None = None
    default: Any = ABSENT
    when: Callable[[Any], bool] | None = None  # the row is written only when this holds for the recipe
    # Every ``when`` says what it tests: ``needs`` names what another field must be for the value to be used (a
    # written value is then refused with FTR005 when it does not hold, or noted when ``unused`` is "note");
    # ``value_only`` says the test reads only this row's own value (an empty or default value: nothing to write).
    needs: str = ""
    unused: str = "refuse"
    value_only: bool = False
    effective: str | None = None
    expect: Callable[[Any], Any] | None = None
    structural: bool = False
    accepts: Callable[[Any], bool] | None = None  # values the backend can express (others: FTR005)
    refusal: str = ""  # why a value outside ``accepts`` cannot be expressed

    @property
    def tuple_path(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))

    def to_native(self, value: Any) -> Any:
        return self.out(value) if self.out else value

    def expected(self, value: Any) -> Any:
        """What the backend's parser should hold for the recipe ``value`` (the oracle's expectation)."""
        if self.expect:
            return self.expect(value)
        return self.to_native(value)


def recipe_value(recipe: Any, path: str) -> Any:
    """The typed recipe's value at a YAML path (``train.lr``, ``data.val.split``), None when absent."""
    node = recipe
    for part in TYPED.get(path, path).split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def set_native(cfg: dict, native: str, value: Any) -> None:
    """cfg[native] = value; a dotted native key (``args.seed``) writes into nested mappings."""
    *parents, last = native.split(".")
    for part in parents:
        cfg = cfg.setdefault(part, {})
    cfg[last] = value


def get_native(cfg: dict, native: str, default: Any = ABSENT) -> Any:
    for part in native.split("."):
        if not isinstance(cfg, dict) or part not in cfg:
            return default
        cfg = cfg[part]
    return cfg


class KeyTable:
    """A backend's rows, looked up by recipe path."""

    def __init__(self, rows: Iterable[Key]):
        self.rows = tuple(rows)
        self.by_path = {row.path: row for row in self.rows}
        # a conditional row that refuses an unused value imports only a written one: its default would be a value
        # the recipe then writes for a stage or method that does not use it (simpo_gamma in a KTO recipe)
        self._plain = tuple((row.native, row.tuple_path, ABSENT if row.needs and row.unused == "refuse" else
                             row.default, row.back,
                             _section(row.path))
                            for row in self.rows if not row.structural)  # what take reads of each row

    def __iter__(self):
        return iter(self.rows)

    def row(self, path: str) -> Key | None:
        """The row of the recipe path, or of the nearest section above it (``data.train.0.path`` -> data.train)."""
        probe = path
        while probe:
            if probe in self.by_path:
                return self.by_path[probe]
            probe = probe.rpartition(".")[0]
        return None

    def covers(self, path: str) -> bool:
        return self.row(path) is not None

    def accepts(self, path: str, value: Any) -> bool:
        row = self.by_path.get(path)
        if row is None:
            return self.covers(path)
        return row.accepts is None or row.accepts(value)

    def native(self, path: str) -> str | None:
        row = self.row(path)
        return row.native if row else None

    def emit(self, recipe: Any, cfg: dict) -> None:
        """Write every plain (non-structural) row whose value is set and whose ``when`` holds."""
        for row in self.rows:
            if row.structural:
                continue
            value = recipe_value(recipe, row.path)
            if value is None or (row.when and not row.when(recipe)):
                continue
            set_native(cfg, row.native, row.to_native(value))

    def take(self, mapper: Any) -> None:
        """Import every plain row into the mapper's recipe: the native value read back, or the backend's
        default when the key is absent. A row under a section (``method.lora``) is read when the imported stage
        and method use that section (``recipe.sections_used``); a native key written for a section they do not
        use is noted (the backend ignores it), never dropped unreported."""
        from ft_recipes.recipe.model import sections_used

        written = {section for native, _p, _d, _b, section in self._plain if section and mapper.has(native)}
        stage = mapper.out.get("stage", "sft")
        method = mapper.out.get("method", {}).get("type", "lora")
        opened = sections_used(stage, method, written)
        for native, path, default, back, section in self._plain:
            if section and section not in opened:
                if mapper.has(native) and native not in mapper.used:
                    mapper.ignored(native, f"not used with stage {stage} and method {method}")
                continue
            mapper.take(native, path, default, back)


SECTIONS = ("method.lora", "method.quant", "method.freeze", "method.prompt", "method.oft", "preference")


def _section(path: str) -> str | None:
    for section in SECTIONS:
        if path.startswith(section + "."):
            return section
    return None


# --- value transforms shared by the tables ------------------------------------------------------------------

def invert(mapping: dict) -> dict:
    """value -> first key with that value (an ftr name map read backwards for import)."""
    out: dict = {}
    for key, value in mapping.items():
        out.setdefault(value, key)
    return out


def seed_set(recipe: Any) -> bool:
    """``train.seed: unset`` writes no seed: the backend's own default."""
    from ft_recipes.recipe.model import UNSET_SEED

    return recipe.train.seed != UNSET_SEED


def as_float(value: Any) -> float:
    return float(value)


def whole(value: Any) -> Any:
    """A number as an int when it is whole (2.0 -> 2), else unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def as_int(value: Any) -> Any:
    """A native value read back as an integer where it is a whole number; anything else stays as written
    (the schema then reports it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def comma_list(value: Any) -> str:
    return value if isinstance(value, str) else ",".join(value)


def split_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]
