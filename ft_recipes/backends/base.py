"""The backend interface: what every backend folder declares, and the checks every emitter shares.

A backend is a ``Backend`` object in ``ft_recipes/backends/<name>/__init__.py`` (``BACKEND``), registered by
name in ``ft_recipes.backends``. Core modules and commands only ever talk to these objects.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ft_recipes.backends.keys import FTR_ONLY, KeyTable, recipe_value
from ft_recipes.recipe.model import FOLDED


@dataclass(frozen=True)
class Capabilities:
    """What a backend can express. ``None`` for a value family means "any value the recipe schema allows"."""

    stages: frozenset[str]
    methods: frozenset[str]
    precisions: frozenset[str] = frozenset({"bf16", "fp16", "fp32"})
    schedulers: frozenset[str] | None = None
    optimizers: frozenset[str] | None = None
    templates: frozenset[str] | None = frozenset()  # None: any name (the tokenizer's own template renders)


@dataclass(frozen=True)
class Approximation:
    """A recipe value the backend carries only approximately: ``compile`` prints ``message`` as a fidelity note
    whenever ``applies(recipe)``, and the oracle tests accept a difference at ``path`` only then."""

    path: str
    message: str
    applies: Callable[[Any], bool]
    fields: tuple[str, ...] | None = None  # recipe fields whose effective value may differ (None: path)
    # a difference between the backends (each reads the recipe in its own right, as the other does not), said by
    # `convert` and `tokens --diff`; compile for this backend alone does not print it
    cross: bool = False

    @property
    def excused(self) -> tuple[str, ...]:
        return (self.path,) if self.fields is None else self.fields


@dataclass(frozen=True)
class NativeCheck:
    """Settings of a native file that contradict each other for the backend: values it refuses together, or a
    value its parser accepts and then overrides (it silently does something other than what the file says).
    ``lint`` reports an FTR007 error at ``key`` whenever ``applies(config)``."""

    key: str
    message: str
    hint: str
    applies: Callable[[dict], bool]
    at: Callable[[dict], str] | None = None  # the key to report at when it depends on the file (default: key)


@dataclass(frozen=True)
class Backend:
    name: str
    version: str
    title: str  # how messages name it, e.g. "LLaMA-Factory"
    main: str  # the main config file it writes
    capabilities: Capabilities
    keys: KeyTable
    emitter: str  # module with ``emit(recipe, out_dir, backend) -> Emitted`` (interface.Emitter)
    oracle: str | None = None  # module with ``structural(recipe)`` (interface.Oracle)
    templates: str | None = None  # module with ``served_template`` (interface.Templates), optional training_text
    rows: str | None = None  # module with how the backend reads conversation rows (interface.Rows), optional
    # Keys an importer keeps verbatim under backends.<name> that decide a recipe field for this backend alone
    # (key -> recipe field): compiling the recipe for another backend is refused while one is there.
    decides: dict[str, str] = field(default_factory=dict)
    approximations: tuple[Approximation, ...] = ()
    markers: tuple[str, ...] = ()  # top-level keys that identify a native file of this dialect, the one every file
    # of it has (its model key) first: `ftr lint DIR` picks the files that start a line with it
    importer: str | None = None  # module with ``to_recipe(mapper, base_dir)`` (interface.Importer)
    launcher: str | None = None  # module with ``launch``, ``run_overrides``, ``merge`` (interface.Launcher)
    env: Callable[[str], Any] | None = None  # version -> envs.EnvSpec
    folder: Path = field(default_factory=Path)
    unknown_key_fate: str = ""  # what the backend does with a key it does not know
    native_checks: tuple[NativeCheck, ...] = ()  # cross-key checks on its native files
    versions: tuple[str, ...] = ()  # every version ftr can target, the default (``version``) first
    # Native keys a recipe does not carry whose value, when not the default, changes what is trained (the loss,
    # the data, the trained parameters, the numerics): `ftr convert` to another backend refuses to drop them.
    changes_training: frozenset[str] = frozenset()
    # Top-level keys whose declared type is narrower than what the backend reads as meant (LLaMA-Factory's parser
    # checks no types and splits "a,b" lists itself): key -> the other values it accepts.
    also_accepts: dict[str, Callable[[Any], bool]] = field(default_factory=dict)
    # recipe -> the role names the backend reads as an assistant turn, when a conversation row with none of them
    # stops its whole run (else an empty tuple); None: a backend that never stops on such a row.
    replies_required: Callable[[Any], tuple[str, ...]] | None = None

    def at(self, version: str | None) -> "Backend":
        """This backend targeting ``version`` (None: the default); UsageError for a version ftr cannot target."""
        if version is None or version == self.version:
            return self
        if version not in self.versions:
            from ft_recipes.core.findings import UsageError

            raise UsageError(f"ftr cannot target {self.title} {version}; it targets "
                             f"{', '.join(self.versions or (self.version,))}")
        return replace(self, version=version)

    # --- optional parts ------------------------------------------------------------------------------------
    @property
    def tokens_helper(self) -> Path | None:
        path = self.folder / "tokens_helper.py"
        return path if path.is_file() else None

    @property
    def validate_helper(self) -> Path | None:
        path = self.folder / "validate_helper.py"
        return path if path.is_file() else None

    @property
    def can_import(self) -> bool:
        return self.importer is not None

    def emit(self, recipe, out_dir: Path):
        return importlib.import_module(self.emitter).emit(recipe, out_dir, self)

    def import_module(self):
        return importlib.import_module(self.importer) if self.importer else None

    def launch_module(self):
        return importlib.import_module(self.launcher) if self.launcher else None

    def part(self, name: str):
        """The declared module of part ``name`` (``emitter``, ``importer``, ``launcher``, ``oracle``,
        ``templates``; interface.PARTS), or None when the backend has no such part."""
        module = getattr(self, name)
        return importlib.import_module(module) if module else None

    def env_spec(self):
        return self.env(self.version) if self.env else None

    def served_template(self, name: str | None) -> str | None:
        """The chat template a run of this backend trains template ``name`` with, which ftr writes into the run's
        saved tokenizer (its templates module's ``served_template``); None: the backend saves it there itself."""
        module = self.part("templates")
        return module.served_template(name) if module else None

    def notes(self, recipe) -> list:
        """The fidelity notes for this recipe (every approximation that applies)."""
        from ft_recipes.backends.emitted import Note

        notes = [Note(a.path, a.message, a.cross) for a in self.approximations if a.applies(recipe)]
        return notes + [Note(row.path, f"not written for {self.title}: it is used only with {row.needs}")
                        for row, _path, fate in unused_values(self, recipe) if fate == "note"]

    def excused(self, recipe) -> set[str]:
        return {path for a in self.approximations if a.applies(recipe) for path in a.excused}


def compute_dtype_differs(recipe) -> bool:
    """A 4-bit compute dtype other than the one backends derive from the training precision."""
    quant = recipe.method.quant
    derived = {"bf16": "bf16", "fp16": "fp16"}.get(recipe.train.precision, "fp32")
    return bool(quant and quant.bits == 4 and quant.compute_dtype != derived)


def written_paths(recipe) -> list[tuple[str, tuple]]:
    """(dotted path, key path) of every value the recipe or its presets wrote (from provenance)."""
    out = []
    for path in recipe.provenance:
        if not path or any(isinstance(p, int) for p in path):
            continue
        out.append((".".join(map(str, path)), path))
    return out


def _from_preset(recipe, path: tuple) -> bool:
    src = recipe.provenance.get(path)
    return src is not None and Path(src.file).resolve() != Path(recipe.source_file).resolve()


def unused_values(backend: Backend, recipe) -> list[tuple[Any, tuple, str]]:
    """(row, key path, fate) for every written value whose row's ``needs`` does not hold: the backend would never
    see it. Its fate is the row's ``unused`` ("refuse" or "note"); a value only a preset wrote is noted."""
    written = dict(written_paths(recipe))
    out = []
    for row in backend.keys:
        if not row.needs or row.path not in written or row.when(recipe):
            continue
        if recipe_value(recipe, row.path) is None:
            continue
        path = written[row.path]
        out.append((row, path, "note" if _from_preset(recipe, path) else row.unused))
    return out


def dropped_values(recipe) -> list[tuple[str, tuple]]:
    """(dotted, key path) of leaves the recipe file wrote that the typed recipe does not hold (a section the stage
    or method does not use, such as ``method.lora`` in a full fine-tune): no backend would see them. A preset's
    section for another method (``lora-sft`` under ``method.type: prefix``) is the preset's, not a user value."""
    out = []
    for dotted, path in written_paths(recipe):
        value = _raw(recipe.raw, path)
        if is_ftr_only(dotted) or value is None or isinstance(value, dict):  # absent, null or a section
            continue
        if _from_preset(recipe, path) or dotted in FOLDED:
            continue
        if recipe_value(recipe, dotted) is None:
            out.append(_unused_section(recipe, dotted, path))
    return list(dict.fromkeys(out))


def _unused_section(recipe, dotted: str, path: tuple) -> tuple[str, tuple]:
    """The highest section above a dropped leaf that the typed recipe does not hold (``method.lora``)."""
    for n in range(1, len(path)):
        head = ".".join(map(str, path[:n]))
        if recipe_value(recipe, head) is None:
            return head, path[:n]
    return dotted, path


def _raw(data: Any, path: tuple) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def is_ftr_only(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in FTR_ONLY)


# --- the checks every emitter runs first -------------------------------------------------------------------

def _others(backend: Backend, can: Callable[[Backend], bool]) -> str:
    from ft_recipes.backends import all_backends

    able = [b for b in all_backends() if b.name != backend.name and can(b)]
    if not able:
        return "no ftr backend can express it"
    return "use " + " or ".join(f"--backend {b.name}" for b in able) + ", which can"


def _refuse(recipe, backend: Backend, path: tuple, message: str, can: Callable[[Backend], bool]):
    from ft_recipes.backends.emitted import unsupported

    return unsupported(recipe, path, message, _others(backend, can))


def _leaf(data: Any, path: tuple) -> bool:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return not isinstance(data, dict)


def check(backend: Backend, recipe) -> None:
    """FTR005 for a recipe value the backend cannot express: a stage, method, precision, scheduler, optimizer
    or template outside its capabilities, or a written recipe field its key table has no row for."""
    caps = backend.capabilities
    facts = (("stage",), recipe.stage, "stages", "stage"), \
        (("method", "type"), recipe.method.type, "methods", "method"), \
        (("train", "precision"), recipe.train.precision, "precisions", "precision"), \
        (("train", "scheduler"), recipe.train.scheduler, "schedulers", "scheduler"), \
        (("train", "optimizer"), recipe.train.optimizer, "optimizers", "optimizer")
    for path, value, family, what in facts:
        allowed = getattr(caps, family)
        if allowed is not None and value not in allowed:
            raise _refuse(recipe, backend, path, f"{backend.title} {backend.version} has no {value} {what}",
                          lambda b, f=family, v=value: getattr(b.capabilities, f) is None
                          or v in getattr(b.capabilities, f))
    template = recipe.model.template
    if template is not None and caps.templates is not None and template not in caps.templates:
        raise _refuse(recipe, backend, ("model", "template"), f"no {backend.title} chat template for {template!r}",
                      lambda b: b.capabilities.templates is None or template in b.capabilities.templates)
    for row in backend.keys:
        value = recipe_value(recipe, row.path) if row.accepts else None
        if value is not None and not row.accepts(value):
            raise _refuse(recipe, backend, tuple(row.path.split(".")),
                          f"{backend.title} cannot express {row.path}: {value!r} ({row.refusal})",
                          lambda b, r=row.path, v=value: b.keys.accepts(r, v))
    for dotted, path in written_paths(recipe):
        if is_ftr_only(dotted) or not _leaf(recipe.raw, path) or backend.keys.covers(dotted):
            continue
        raise _refuse(recipe, backend, path, f"{backend.title} cannot express {dotted}",
                      lambda b, d=dotted: _uses(b, d, recipe))
    _check_used(backend, recipe)
    _check_foreign_structure(backend, recipe)


def _check_foreign_structure(backend: Backend, recipe) -> None:
    """FTR005 when another backend's own structural key is kept under ``backends.<other>`` (an imported Axolotl
    file's ``datasets``): for that backend it replaces the recipe field, which then holds only ftr's nearest
    reading, so compiling it for this backend would train something the source never said."""
    from ft_recipes.backends import all_backends

    for other in all_backends():
        if other.name == backend.name:
            continue
        kept = recipe.backends.get(other.name) or {}
        for key, field_path in other.decides.items():
            if key in kept:
                raise _refuse(recipe, backend, ("backends", other.name, key),
                              f"{field_path} is decided by {other.title}'s own {key} (kept verbatim under "
                              f"backends.{other.name}); {backend.title} cannot read it",
                              lambda b, name=other.name: b.name == name)


def _check_used(backend: Backend, recipe) -> None:
    """FTR005 for a written value no backend would see: a section this stage or method does not use, or a row
    whose ``needs`` does not hold for this recipe (``preference.simpo_gamma`` in a DPO recipe)."""
    from ft_recipes.backends.emitted import unsupported

    for dotted, path in dropped_values(recipe):
        raise unsupported(recipe, path, f"{dotted} has no effect in this recipe (stage {recipe.stage}, method "
                                        f"{recipe.method.type}): no backend would use it",
                          "remove it, or change the stage or method that uses it")
    for row, path, fate in unused_values(backend, recipe):
        if fate != "refuse":
            continue
        value = recipe_value(recipe, row.path)
        able = _others(backend, lambda b, p=row.path: _uses(b, p, recipe))
        raise unsupported(recipe, path, f"{backend.title} uses {row.path} only with {row.needs}: "
                                        f"{value!r} would be dropped",
                          f"remove it, or set {row.needs}" + ("" if able.startswith("no ") else f"; or {able}"))


def _uses(backend: Backend, path: str, recipe) -> bool:
    row = backend.keys.row(path)
    if row is None:
        return False
    return row.structural or row.value_only or row.when is None or bool(row.when(recipe))


# --- the effective-value oracle's expectations -------------------------------------------------------------

def expectations(backend: Backend, recipe) -> list[tuple[str, str, Any]]:
    """(recipe path, effective path, expected value) for every field the backend's parser should hold: the key
    table's rows with an ``effective`` location plus the backend's structural expectations (``oracle.py``)."""
    out = []
    for row in backend.keys:
        if not row.effective:
            continue
        value = recipe_value(recipe, row.path)
        if value is None or (row.when and not row.when(recipe)):
            continue
        out.append((row.path, row.effective, row.expected(value)))
    module = backend.part("oracle")
    return out + (list(module.structural(recipe)) if module else [])
