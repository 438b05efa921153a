"""Stage 2: resolve ``extends`` into one merged document, keeping where every value came from.

Merge rules: mappings merge recursively, lists and scalars replace, ``null`` deletes the key.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ft_recipes.core.findings import Finding, FtrError, UsageError
from ft_recipes.recipe.load import Document, file_kind, load_file
from ft_recipes.recipe.presets import find_preset

MAX_EXTENDS_DEPTH = 16


@dataclass(frozen=True)
class Source:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Resolved:
    """The merged recipe data, the top-level document, and the origin of each value."""

    data: dict
    document: Document
    layers: list[Document] = field(default_factory=list)
    provenance: dict[tuple, Source] = field(default_factory=dict)

    def layer_of(self, path: tuple) -> int:
        """Index in ``layers`` of the file that wrote ``path`` (presets first); past the end when unknown."""
        src = self.provenance.get(tuple(path))
        files = [layer.file for layer in self.layers]
        return files.index(src.file) if src and src.file in files else len(files)

    def source(self, path: tuple) -> Source | None:
        path = tuple(path)
        while path:
            if path in self.provenance:
                return self.provenance[path]
            path = path[:-1]
        return None


def deep_merge(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = deep_merge(merged[key], value)
            else:
                merged[key] = _drop_nulls(value)
        return merged
    return _drop_nulls(overlay)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return copy.deepcopy(value)


def _extends_list(doc: Document) -> list[tuple[str, tuple]]:
    if not isinstance(doc.data, dict):
        return []
    value = doc.data.get("extends")
    if value is None:
        return []
    if isinstance(value, str):
        return [(value, ("extends",))]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [(v, ("extends", i)) for i, v in enumerate(value)]
    line, col = doc.pos(("extends",))
    raise FtrError("extends must be a name or a list of names",
                   [Finding(doc.file, line, col, "FTR002", "error", "extends must be a string or a list of strings",
                            "e.g. extends: [lora-sft]", "extends")])


def _target_path(ref: str, doc: Document, recipe_dir: Path) -> Path:
    if "://" in ref:
        raise FtrError(f"extends target {ref!r} is a URL; extends takes preset names and local paths "
                       f"(download the file and name its path)")
    if ref.endswith((".yaml", ".yml")) or "/" in ref or ref.startswith("."):
        path = Path(doc.file).parent / ref
        try:
            return path.resolve()
        except RuntimeError:  # Python < 3.13: a symlink loop
            return path
    return find_preset(ref, start=recipe_dir, referrer=Path(doc.file))


def _layers(doc: Document, chain: tuple[str, ...], memo: dict | None = None) -> list[Document]:
    """Documents in merge order: the deepest preset first, ``doc`` last. ``memo`` holds each preset's own layers,
    computed once however many presets extend it."""
    memo = {} if memo is None else memo
    if len(chain) > MAX_EXTENDS_DEPTH:
        raise FtrError(f"extends nested deeper than {MAX_EXTENDS_DEPTH} levels")
    layers: list[Document] = []
    for ref, path in _extends_list(doc):
        line, col = doc.pos(path)
        try:
            target = _target_path(ref, doc, Path(chain[0]).parent)
        except UsageError:  # the configuration itself is broken (pyproject.toml): not this recipe's fault
            raise
        except FtrError as exc:
            raise FtrError(str(exc), [Finding(doc.file, line, col, "FTR004", "error", str(exc),
                                              "run `ftr presets list` to see the presets", "extends")]) from None
        key = str(target)
        if key in chain:
            cycle = " -> ".join([*chain[chain.index(key):], key])
            raise FtrError("extends cycle", [Finding(doc.file, line, col, "FTR004", "error",
                                                     f"extends cycle: {cycle}", "remove one of the extends",
                                                         "extends")])
        kind = file_kind(target)
        if kind != "file":
            what = "not found" if kind == "no such file" else kind.removeprefix("is ")
            raise FtrError("extends target unusable", [Finding(
                doc.file, line, col, "FTR004", "error", f"extends target {ref!r} {'is ' * (what != 'not found')}"
                f"{what} ({target})", "name a recipe or preset YAML file; a path is relative to this file",
                "extends")])
        if key not in memo:
            parent = _load_preset(str(target), target.stat().st_mtime_ns)
            if parent.data is not None and not isinstance(parent.data, dict):
                raise FtrError("preset is not a mapping", [Finding(parent.file, 1, 1, "FTR002", "error",
                                                                  "a preset must be a YAML mapping")])
            memo[key] = _layers(parent, chain + (key,), memo)
        layers += memo[key]
    layers.append(doc)
    return layers


@lru_cache(maxsize=256)
def _load_preset(path: str, mtime_ns: int) -> Document:
    """Presets are shared by many recipes: parse each (unchanged) file once per process. Read-only."""
    return load_file(path)


def _record(value: Any, path: tuple, doc: Document, provenance: dict) -> None:
    if path:
        line, col = doc.pos(path)
        provenance[path] = Source(doc.file, line, col)
    if isinstance(value, dict):
        for key, child in value.items():
            _record(child, path + (key,), doc, provenance)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _record(child, path + (i,), doc, provenance)


def _has(data: Any, path: tuple) -> bool:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return data is not None


def resolve(doc: Document) -> Resolved:
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise FtrError("not a recipe", [Finding(doc.file, 1, 1, "FTR002", "error",
                                                "a recipe must be a YAML mapping of keys to values")])
    return merge_layers(doc, extends_layers(doc))


def extends_layers(doc: Document) -> list[Document]:
    """``doc`` and the presets it extends, in merge order (the deepest preset first, ``doc`` last). A preset reached
    twice (a diamond) is merged once, at its last place: the later copy sets the same keys to the same values, so
    the earlier one changes nothing, and a deep diamond stays linear instead of exponential."""
    layers = _layers(doc, (str(Path(doc.file).resolve()),))
    last = {id(layer): i for i, layer in enumerate(layers)}
    return [layer for i, layer in enumerate(layers) if last[id(layer)] == i]


def merge_layers(doc: Document, layers: list[Document]) -> Resolved:
    """The documents merged in order (the last wins), each value's provenance from the last layer that has it."""
    data: dict = {}
    for layer in layers:
        data = deep_merge(data, layer.data or {})
    data.pop("extends", None)
    provenance: dict[tuple, Source] = {}
    final_paths: dict[tuple, Source] = {}
    _record(data, (), doc, provenance)
    for path in provenance:
        for layer in reversed(layers):
            if _has(layer.data, path):
                line, col = layer.pos(path)
                final_paths[path] = Source(layer.file, line, col)
                break
    return Resolved(data=data, document=doc, layers=layers, provenance=final_paths)
