"""Findings on a native file in the file's own words: the key a finding names is the native key at its position
(``warmup_steps``, ``special_tokens.pad_token``, ``datasets[0].message_property_mappings``), the recipe path
moves to ``recipe_key``, and the recipe keys in its message and hint become the backend's keys."""

from __future__ import annotations

import re
from dataclasses import replace

from ft_recipes.core.findings import Finding
from ft_recipes.recipe.load import dotted

RECIPE_PATH = re.compile(r"\b(?:model|method|preference|data|train|eval|output|hardware)(?:\.[a-z_]+)+\b")
PLAIN_KEY = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")
# A table's description of a structural key that starts with the one key it writes: "warmup_steps (< 1: a ratio)",
# "eval_dataset + dataset_info.json". Alternatives ("bf16 / fp16") name no single key.
LEADING_KEY = re.compile(r"([A-Za-z_]\w*(?:\.\w+)*) [(+]")


INDEXED = re.compile(r"[\w.]+\[(\d+)\](?:\.(\w+))?")  # data.train[0].path -> 0, path


def speak_native(findings: list[Finding], document, dialect: str, provenance: dict) -> list[Finding]:
    """``findings`` of the rules on a native ``document`` of ``dialect``, renamed to its keys; ``provenance``
    (recipe path -> where the native file wrote it) tells a finding at a value the file wrote from one at the
    file's start for want of a place."""
    at = {position: path for path, position in document.key_positions.items()}
    written = {dotted(path) for path in provenance}
    names = Names(dialect)
    return [_renamed(f, document, at if _placed(f.key, written) else {}, names) if f.file == document.file else f
            for f in findings]


def _placed(recipe_key: str, written: set[str]) -> bool:
    """The recipe key or a section above it was read from the native file (so the finding is at its key)."""
    probe = recipe_key
    while probe:
        if probe in written:
            return True
        probe = re.sub(r"(\.\w+|\[\d+\])$", "", probe) if re.search(r"(\.\w+|\[\d+\])$", probe) else ""
    return False


def _renamed(finding: Finding, document, at: dict, names: "Names") -> Finding:
    recipe_key = finding.key
    path = at.get((finding.line, finding.col))
    if path:
        native = dotted(_into_list(path, recipe_key, document.data))
    else:
        native = names.of(recipe_key.split("[")[0]) or names.first(recipe_key) or recipe_key
    return replace(finding, key=native, recipe_key=recipe_key, message=names.text(finding.message),
                   hint=names.text(finding.hint))


def _into_list(path: tuple, recipe_key: str, data) -> tuple:
    """A recipe list item read from a native list (``data.train[1].path`` from ``datasets``) names the native
    item, and its key when the item has one of that name: ``datasets[1].path``."""
    match = INDEXED.fullmatch(recipe_key)
    value = data
    for part in path:
        value = value[part] if isinstance(value, (dict, list)) else None
    if not match or not isinstance(value, list) or int(match.group(1)) >= len(value):
        return path
    item = value[int(match.group(1))]
    leaf = match.group(2)
    return (*path, int(match.group(1))) + ((leaf,) if isinstance(item, dict) and leaf in item else ())


class Names:
    """Recipe path -> the backend's key, from its key table."""

    def __init__(self, dialect: str):
        from ft_recipes import backends

        self.table = backends.get(dialect).keys

    def of(self, path: str) -> str | None:
        row = self.table.by_path.get(path)
        if row is None:
            return None
        if PLAIN_KEY.fullmatch(row.native):
            return row.native
        lead = LEADING_KEY.match(row.native)
        return lead.group(1) if lead else None

    def first(self, path: str) -> str | None:
        """The first of a row's alternative keys ("gradient_checkpointing / activation_offloading"): the key to
        write when the file has none of them, so a finding names the same key whether or not the file wrote it."""
        row = self.table.by_path.get(path)
        head = row.native.split(" / ")[0] if row and " / " in row.native else ""
        return head if PLAIN_KEY.fullmatch(head) else None

    def nearest(self, path: str) -> str | None:
        """The key of ``path`` or of the nearest section above it (``data.train[0].path`` -> datasets)."""
        probe = re.sub(r"\[\d+\]", "", path)
        while probe and probe not in self.table.by_path:
            probe = probe.rpartition(".")[0]
        return self.of(probe) if probe else None

    def text(self, text: str) -> str:
        return RECIPE_PATH.sub(lambda m: self.of(m.group(0)) or m.group(0), text)
