"""Round-trip YAML edits (ruamel.yaml): a file's comments, key order and formatting kept, only the edited lines
changed. ``ftr upgrade`` edits native configs and recipes with them; each edit is a ``Change``."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from ft_recipes.core.findings import Finding, UsageError


@dataclass(frozen=True)
class Change:
    """One rewrite: ``line`` in the original file, what became what, and why."""

    line: int
    text: str
    since: str
    source: str
    keys: tuple[str, ...] = ()  # the top-level keys it touched (old and new names)
    expect: tuple[tuple[str, object], ...] = ()  # (top-level key, the value the target must read there)

    def render(self, file: str) -> str:
        return f"{file}:{self.line}: {self.text} (since {self.since}; {self.source})"


@dataclass
class Result:
    file: str
    text: str
    new_text: str
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.new_text


def round_trip_yaml():
    try:
        from ruamel.yaml import YAML
    except ImportError as exc:
        raise UsageError("ftr upgrade needs ruamel.yaml (pip install 'ruamel.yaml>=0.18')") from exc
    yaml = YAML()  # round-trip: comments, order, quotes and flow style kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def load_or_problem(yaml, text: str):
    """(the round-trip document, None), or (None, (line, problem, whether a duplicate key)) for text it cannot
    load: a duplicate key (PyYAML readers keep the last one, a round trip the first) or invalid YAML."""
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError

    try:
        return yaml.load(text), None
    except MarkedYAMLError as exc:  # DuplicateKeyError is one
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        return None, (line, exc.problem, isinstance(exc, DuplicateKeyError))


def line_of(mapping, key) -> int:
    try:
        return mapping.lc.key(key)[0] + 1
    except (AttributeError, KeyError, TypeError):
        return 0


def rename_key(mapping, old: str, new: str, value=None, keep_value: bool = True) -> None:
    """``old`` becomes ``new`` at the same position, with its comments (and its value unless given)."""
    keys = list(mapping)
    pos = keys.index(old)
    item = mapping.pop(old)
    comment = mapping.ca.items.pop(old, None) if hasattr(mapping, "ca") else None
    mapping.insert(pos, new, item if keep_value else value)
    if comment is not None:
        mapping.ca.items[new] = comment


def drop_key(mapping, key: str) -> None:
    """Remove ``key``; a comment that ended its line stays, on the key before it when there is one."""
    keys = list(mapping)
    comment = mapping.ca.items.pop(key, None) if hasattr(mapping, "ca") else None
    mapping.pop(key)
    pos = keys.index(key)
    if comment is not None and pos > 0 and comment[2] is not None and keys[pos - 1] not in mapping.ca.items:
        mapping.ca.items[keys[pos - 1]] = comment


def dump(yaml, data) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def patched(original: str, before: str, after: str) -> str:
    """``original`` with the edits that turn ``before`` (its plain round trip) into ``after``, so that what a
    round trip alone would change (``null`` spellings, spacing, anchors) stays as written; the whole ``after``
    where an edit touches a line the round trip wrote differently."""
    import difflib

    orig, base, new = original.splitlines(True), before.splitlines(True), after.splitlines(True)
    where = {}  # base line -> original line, for lines the round trip kept as they were
    for block in difflib.SequenceMatcher(None, base, orig, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            where[block.a + k] = block.b + k
    out, cursor = [], 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, base, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        span = [where.get(i) for i in range(i1, i2)]
        start = where.get(i1 - 1, -1) + 1 if i1 else 0
        if None in span or (span and span != list(range(span[0], span[0] + len(span)))) or \
                (span and span[0] != start) or start < cursor:
            return after
        out += orig[cursor:start] + new[j1:j2]
        cursor = start + len(span)
    return "".join(out + orig[cursor:])


def keep_indent(yaml, text: str) -> None:
    """Write block sequences and mappings indented as the file does (``  - item`` or ``- item``)."""
    from ruamel.yaml.util import load_yaml_guess_indent

    try:
        _, _, dash = load_yaml_guess_indent(text)
    except Exception:  # noqa: BLE001 - ruamel's guess is best effort; its own load already succeeded
        return
    dash = dash or 0
    yaml.indent(mapping=2, sequence=dash + 2, offset=dash)
