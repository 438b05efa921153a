"""Native configs (LLaMA-Factory, Axolotl): dialect detection and the shared machinery that turns a
native file into a recipe whose every value remembers the native key it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ft_recipes.backends.keys import ABSENT, get_native
from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.core.paths import real_parent
from ft_recipes.recipe.load import Document
from ft_recipes.recipe.resolve import Resolved, Source

_MISSING = ABSENT


def detect_dialect(data: Any) -> str:
    """'recipe', or the backend whose dialect markers the mapping uses most."""
    from ft_recipes import backends
    from ft_recipes.recipe.formats import is_recipe

    if not isinstance(data, dict):
        return "recipe"
    if is_recipe(data):
        return "recipe"
    return backends.detect(data) or "recipe"


@dataclass(frozen=True)
class Unmapped:
    key: str
    value: Any
    reason: str
    path: tuple = ()  # where it is in the native file, for a finding
    changes_training: bool = False  # convert refuses to drop it (see Backend.changes_training)
    cross: bool = False  # a difference only another backend makes: a round trip to this backend carries it exactly


@dataclass
class Mapper:
    """Collects recipe values from a native mapping, remembering the native key of each."""

    doc: Document
    out: dict = field(default_factory=dict)
    origin: dict[tuple, tuple] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    notes: list[Unmapped] = field(default_factory=list)
    kept: dict = field(default_factory=dict)  # native keys kept under backends.<name> though the file lacks them

    @property
    def src(self) -> dict:
        return self.doc.data

    def has(self, key: str) -> bool:
        """The native key (dotted for a nested one: ``lr_scheduler_kwargs.min_lr``) is set."""
        return get_native(self.src, key, None) is not None

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        value = self.src.get(key)
        return default if value is None else value

    def put(self, path: tuple, value: Any, native: tuple | str | None = None) -> None:
        node = self.out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        if native is not None:
            self.origin[path] = (native,) if isinstance(native, str) else native

    def take(self, key: str, path: tuple, default: Any = _MISSING, convert: Callable | None = None) -> None:
        """Recipe ``path`` <- native ``key`` (converted), or the backend's default when absent."""
        self.used.add(key)
        value = get_native(self.src, key, None)
        if value is not None:
            try:
                value = convert(value) if convert else value
            except (TypeError, ValueError, AttributeError):
                pass  # keep it as written: schema validation reports the wrong type at this key
            self.put(path, value, key)
        elif default is not _MISSING:
            self.put(path, default)

    def take_path(self, key: str, path: tuple, default: Any = _MISSING) -> None:
        """Recipe ``path`` <- native ``key`` (or ``default``) as its backend opens it: relative to the directory
        the backend runs in, made absolute (a recipe's paths are relative to the recipe file instead)."""
        self.take(key, path, _MISSING if default is _MISSING else run_path(default), run_path)

    def ignored(self, key: str, why: str) -> None:
        """A native key its backend accepts and ignores here: noted, not carried."""
        self.used.add(key)
        self.notes.append(Unmapped(key, get_native(self.src, key, None), f"not carried: the backend ignores it ({why})",
                                   (key,)))

    def cosmetic(self, *keys: str) -> None:
        self.used.update(keys)

    def keep(self, key: str, value: Any) -> None:
        """Keep ``key: value`` under ``backends.<name>`` though the file does not say it: the backend's reading of
        an absent key that no recipe value says, so that a round trip writes that reading back."""
        self.kept[key] = value

    def leftover(self) -> dict:
        """Native keys no recipe field took; a mapping of which some sub-keys were taken keeps the rest."""
        out = {}
        nested: dict[str, set[str]] = {}  # "a.b" used -> nested["a"] = {"b"}
        for used in self.used:
            head, dot, tail = used.partition(".")
            if dot:
                nested.setdefault(head, set()).add(tail)
        for key, value in self.src.items():
            if key in self.used:
                continue
            taken = nested.get(key, set()) if "." not in key else \
                {u.split(".", 1)[1] for u in self.used if u.startswith(key + ".")}
            if taken and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k not in taken}
                if not value:
                    continue
            out[key] = value
        return {**self.kept, **out}

    def resolved(self) -> Resolved:
        provenance = {}
        for path, native in self.origin.items():
            line, col = self.doc.pos(native, key=True)
            provenance[path] = Source(self.doc.file, line, col)
        provenance.setdefault(("ftr",), Source(self.doc.file, 1, 1))
        return Resolved(data=self.out, document=self.doc, layers=[self.doc], provenance=provenance)


def run_path(value: Any) -> str:
    """A native path as its backend opens it: absolute as written, else under the directory it runs in."""
    from ft_recipes.recipe.datasets import resolve_local

    return str(resolve_local(str(value)))


def take_deepspeed(m: Mapper, base: Path, title: str) -> None:
    """``deepspeed`` as the backend opens it (relative to the directory it runs in). Found only next to the config
    (no run directory given): kept as written, which the recipe reads relative to the config, and lint warns.
    Missing: noted, since the converted file would point at nothing."""
    from ft_recipes.recipe.datasets import run_dir, run_dir_given

    value = m.src.get("deepspeed")
    m.used.add("deepspeed")
    if not isinstance(value, str) or value.lstrip().startswith("{"):
        m.take("deepspeed", ("hardware", "deepspeed"))  # inline JSON: as written
        return
    target = Path(run_path(value))
    if not target.exists() and not run_dir_given() and (base / value).exists():
        m.put(("hardware", "deepspeed"), value, "deepspeed")
        return
    m.put(("hardware", "deepspeed"), str(target), "deepspeed")
    if not target.exists():
        m.notes.append(Unmapped("deepspeed", value, f"{target} does not exist ({title} opens it relative to the "
                                                    f"directory it runs in, {run_dir()}; see --run-dir)"))


def local_model_paths(m: Mapper) -> None:
    """``model.base`` when it is a local directory and ``model.adapter`` (always a directory) as the backend
    opens them: relative to the directory it runs in. A hub id stays as written."""
    model = m.out.get("model", {})
    base = model.get("base")
    if isinstance(base, str) and (base.startswith((".", "~")) or Path(run_path(base)).is_dir()):
        model["base"] = run_path(base)
    if isinstance(model.get("adapter"), str):
        model["adapter"] = run_path(model["adapter"])


def _missing_data_files(m: Mapper, title: str) -> None:
    """A note for each local dataset file that is not there, which a converted file would point at; one the
    importer already explained (an undefined LLaMA-Factory dataset, a hub name) is left to its own note."""
    from ft_recipes.recipe.datasets import path_note, run_dir

    data = m.out.get("data", {})
    for where, entries in ((("data", "train"), data.get("train")), (("data", "val", "datasets"),
                                                                    data.get("val", {}).get("datasets"))):
        key = m.origin.get(where, (where[-1],))[0]
        for entry in entries or []:
            path = Path(entry["path"]) if isinstance(entry, dict) and entry.get("path") else None
            if path is None or path.exists() or any(path_note(path, kind) for kind in
                                                     ("unchecked", "undefined", "no_registry")):
                continue
            m.notes.append(Unmapped(key, str(path), f"dataset file {path} does not exist ({title} opens it "
                                                    f"relative to the directory it runs in, {run_dir()}; see "
                                                    "--run-dir)"))


def relative_paths(data: dict, directory: Path, source_dir: Path) -> dict:
    """The imported recipe with its paths made relative to ``directory``, where the recipe file is written (a
    recipe's paths are relative to its file): shareable, no machine paths. The importers make every path
    absolute except a DeepSpeed file found only next to the native file (``source_dir``)."""
    import copy
    import os

    out = copy.deepcopy(data)

    def relative(node, key: str, beside: bool = False) -> None:
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str) and beside and not os.path.isabs(value) and not value.lstrip().startswith("{"):
            value = str(source_dir / value)
        if isinstance(value, str) and os.path.isabs(value):
            node[key] = os.path.relpath(value, directory)

    for section, key in (("output", "dir"), ("model", "adapter"), ("model", "base")):
        relative(out.get(section), key)
    relative(out.get("hardware"), "deepspeed", beside=True)
    base = out.get("model", {}).get("base")
    if base != data.get("model", {}).get("base") and not base.startswith("."):
        out["model"]["base"] = "./" + base  # a recipe reads a model path as local only when it says so
    section = out.get("data", {})
    for entry in [*section.get("train", []), *section.get("val", {}).get("datasets", [])]:
        relative(entry, "path")
    return out


@dataclass
class Imported:
    resolved: Resolved
    dialect: str
    passthrough: dict
    notes: list[Unmapped]


def import_document(doc: Document, dialect: str | None = None) -> Imported:
    """A native document -> a recipe (as a Resolved whose provenance points at native keys)."""
    from ft_recipes import backends

    if not isinstance(doc.data, dict):
        raise FtrError(f"{doc.file}: a native config must be a YAML mapping", exit_code=1)
    dialect = dialect or detect_dialect(doc.data)
    if dialect == "recipe":
        raise FtrError(f"{doc.file} is already a recipe", exit_code=2)
    mapper = Mapper(doc)
    try:
        backends.importer(dialect).to_recipe(mapper, real_parent(doc.file))
    except TypeError as exc:  # a value of a type the backend would refuse too (a list where a name belongs)
        finding = Finding(doc.file, 1, 1, "FTR002", "error",
                          f"cannot read this {dialect} config: a value has an unexpected type ({exc})",
                          f"run `ftr lint --dialect {dialect}` for the key-by-key check")
        raise FtrError(str(exc), [finding]) from None
    _missing_data_files(mapper, backends.get(dialect).title)
    # keys the importer itself keeps for its backend (LLaMA-Factory's dataset_info entries), then the leftovers
    passthrough = {**mapper.out.get("backends", {}).get(dialect, {}), **mapper.leftover()}
    if passthrough:
        mapper.put(("backends", dialect), passthrough)
        for key in passthrough:
            mapper.origin[("backends", dialect, key)] = (key,)
    return Imported(mapper.resolved(), dialect, passthrough, mapper.notes)
