"""Stage 1: load YAML safely, keeping the line and column of every key and value.

PyYAML follows YAML 1.1, which reads ``2e-5`` (no dot) as a string. ftr adds the YAML 1.2 float
form so such rates are numbers in recipes and native configs alike. Duplicate keys, recursive
aliases, alias bombs and oversized files are refused.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ft_recipes.core.findings import Finding, FtrError

MAX_BYTES = 2_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64

SCALAR_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}

Path_ = tuple  # a key path inside the document, e.g. ("method", "lora", "r")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when available (~10x faster)
    """SafeLoader with YAML 1.2 floats (``1e-4``, ``5E-6``)."""

    def resolve(self, kind, value, implicit):
        """The implicit tag of a scalar, remembered: keys and short values repeat across files, and trying
        the resolvers' patterns on each is a good part of the parse. (The answer depends on nothing else.)"""
        if kind is not yaml.ScalarNode or len(value) > 64 or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _TAGS.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_TAGS) < 20_000:
                _TAGS[key] = tag
        return tag


_TAGS: dict[tuple[str, Any], str] = {}


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


_STR, _NULL, _BOOL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_SCALAR = yaml.ScalarNode
_BOOLS = yaml.constructor.SafeConstructor.bool_values
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")  # SafeConstructor: int(value); a leading 0 is octal
_NOT_PLAIN_FLOAT = re.compile(r"[_:nNiI]")  # underscores, base 60, .inf and .nan: SafeConstructor's own way


@dataclass
class Document:
    """A loaded YAML file: plain data plus positions of every value and key."""

    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    duplicates: list[Finding] = field(default_factory=list)  # with keep_last: each repeated key, last one kept

    def pos(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``path`` (or of its key), falling back to the nearest parent."""
        table = self.key_positions if key else self.positions
        path = tuple(path)
        while path:
            if path in table:
                return table[path]
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))


def _error(file: str, line: int, col: int, message: str, hint: str = "") -> FtrError:
    finding = Finding(file, line, col, "FTR000", "error", message, hint)
    return FtrError(message, [finding], exit_code=1)


def file_kind(path: Path) -> str:
    """"file" for a regular file (through symlinks), else what it is, as a phrase for an error message."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "is a broken symbolic link" if path.is_symlink() else "no such file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"is a symlink loop ({_link_chain(path)})"
        return f"cannot read: {exc.strerror}"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "is a directory"
    return {stat.S_IFIFO: "is a FIFO", stat.S_IFCHR: "is a character device", stat.S_IFBLK: "is a block device",
            stat.S_IFSOCK: "is a socket"}.get(stat.S_IFMT(mode), "is not a regular file")


def _link_chain(path: Path) -> str:
    """``a.yaml -> b.yaml -> a.yaml``: the links followed from ``path`` until one repeats."""
    chain = [os.path.normpath(path)]
    while len(chain) < 40:
        try:
            target = os.path.normpath(os.path.join(os.path.dirname(chain[-1]), os.readlink(chain[-1])))
        except OSError:  # not a link: a folder on the way loops
            return "a link that leads back to itself"
        chain.append(target)
        if target in chain[:-1]:
            break
    return " -> ".join(chain)


def read_text(path: Path) -> str:
    """Read a YAML file as UTF-8 text; I/O problems are usage errors (exit 2)."""
    kind = file_kind(path)
    if kind != "file":
        raise FtrError(f"{path}: {kind}; ftr reads YAML from regular files", exit_code=2)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FtrError(f"{path}: cannot read: {exc.strerror}", exit_code=2) from None
    if len(raw) > MAX_BYTES:
        raise _error(str(path), 1, 1, f"file is {len(raw)} bytes; ftr reads YAML files up to {MAX_BYTES}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(str(path), 1, 1, f"not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None


def load_file(path: str | Path, keep_last: bool = False) -> Document:
    """The YAML file at ``path``. A repeated mapping key is an error (FtrError), or with ``keep_last`` a finding
    in ``Document.duplicates`` and the later value kept, as yaml.safe_load does (lint reports it and goes on)."""
    path = Path(path)
    return load_text(read_text(path), str(path), keep_last)


INDENT_PROBLEMS = ("did not find expected key", "mapping values are not allowed", "expected <block end>",
                   "block sequence entries are not allowed", "did not find expected '-' indicator")
PAIRS = {"{": "}", "[": "]"}


def _syntax_wording(exc: yaml.MarkedYAMLError, lines: list[str], line: int) -> tuple[str, str]:
    """(message, hint) for a YAML syntax error, in the user's terms rather than the parser's."""
    problem = exc.problem or exc.context or ""
    tabbed = next((n for n, text in enumerate(lines[:line], 1) if "\t" in text[:len(text) - len(text.lstrip())]),
                  None)
    if tabbed is not None:
        return f"YAML does not allow tabs: line {tabbed} is indented with a tab", "indent with spaces"
    opened = exc.context_mark.line + 1 if exc.context_mark else line
    if "did not find expected ','" in problem:
        bracket = "[" if "']'" in problem else "{"
        return (f"YAML syntax: the '{bracket}' opened on line {opened} is not closed",
                f"close it with '{PAIRS[bracket]}', or put ',' between its items")
    if "while scanning a quoted scalar" in (exc.context or ""):
        return f"YAML syntax: the quote opened on line {opened} is not closed", "close the quote"
    if problem.startswith(INDENT_PROBLEMS):
        return (f"YAML syntax: indentation on line {line} does not line up with the lines above it",
                "keys of one mapping start in the same column, a nested mapping further right; "
                "each key needs a ':'")
    return f"YAML syntax: {problem}", ""


def load_text(text: str, file: str = "<string>", keep_last: bool = False) -> Document:
    if "\x00" in text:
        raise _error(file, 1, 1, "binary data (NUL byte) in a YAML file")
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise _error(file, line, col, *_syntax_wording(exc, text.splitlines(), line)) from None
    except yaml.YAMLError as exc:
        raise _error(file, 1, 1, f"YAML syntax: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    doc = Document(file=file, data=None, lines=text.splitlines())
    if node is not None:
        doc.data = _Builder(doc, keep_last).build(node, ())
    return doc


def _plain_number(tag: str, value: str) -> int | float | None:
    """A decimal integer or a plain float as SafeConstructor reads it (same value, without its call), else None."""
    try:
        if tag == _INT and _DECIMAL.fullmatch(value):
            return int(value)
        if tag == _FLOAT and value and not _NOT_PLAIN_FLOAT.search(value):
            return float(value)
    except ValueError:  # e.g. more digits than int() reads: SafeConstructor says so
        pass
    return None


class _Builder:
    def __init__(self, doc: Document, keep_last: bool = False):
        self.doc = doc
        self.keep_last = keep_last
        self.positions = doc.positions
        self._loader: yaml.SafeLoader | None = None
        self.count = 0
        self.active: set[int] = set()

    @property
    def loader(self) -> yaml.SafeLoader:
        """SafeConstructor for the scalars read here without it (timestamps, 0x10, 1_000, .inf): made once a
        document needs it, which most do not."""
        if self._loader is None:
            self._loader = _Loader("")
        return self._loader

    def fail(self, node: yaml.Node, message: str, hint: str = "") -> FtrError:
        return _error(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1, message, hint)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"document expands to more than {MAX_NODES} values (alias bomb?)")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels")
        if id(node) in self.active:
            raise self.fail(node, "recursive alias: a value contains itself")
        mark = node.start_mark
        self.positions[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, _SCALAR):
            return node.value if node.tag == _STR else self.scalar(node)
        if node.tag not in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
            raise self.fail(node, f"YAML tag {node.tag!r} is not allowed", "ftr reads plain YAML data only")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag not in SCALAR_TAGS:
            raise self.fail(node, f"YAML tag {tag!r} is not allowed", "ftr reads plain YAML data only")
        if tag == _STR:  # most keys and values: what SafeConstructor returns for them, without the call
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL and node.value.lower() in _BOOLS:
            return _BOOLS[node.value.lower()]
        number = _plain_number(tag, node.value)
        if number is not None:
            return number
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            raise self.fail(node, f"bad value: {exc.problem or exc.context}") from None
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):  # e.g. `!!int x`
            raise self.fail(node, f"bad value {node.value!r} for the tag {node.tag!r}") from None
        if isinstance(value, (datetime.date, datetime.datetime)):
            return node.value
        if isinstance(value, bytes):
            raise self.fail(node, "binary (!!binary) values are not supported")
        return value

    def duplicate(self, key_node: yaml.Node, path: Path_) -> None:
        first = self.doc.key_positions[path][0]
        error = self.fail(key_node, f"duplicate key {path[-1]!r} (first defined at line {first}; a YAML loader "
                          "that accepts it keeps this later value and silently drops the first)",
                          "remove one of the two")
        if not self.keep_last:
            raise error
        self.doc.duplicates.append(replace(error.findings[0], key=dotted(path)))

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict:
        result: dict = {}
        key_positions = self.doc.key_positions
        for key_node, value_node in node.value:
            if key_node.tag == _STR and type(key_node) is _SCALAR:  # most keys: what the checks below give
                key = key_node.value
            else:
                key = self.key(key_node)
            child = path + (key,)
            if key in result:
                self.duplicate(key_node, child)
            mark = key_node.start_mark
            key_positions[child] = (mark.line + 1, mark.column + 1)
            result[key] = self.build(value_node, child)
        return result

    def key(self, key_node: yaml.Node) -> str:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise self.fail(key_node, "YAML merge keys (<<) are not supported", "use extends: to reuse recipes")
        if not isinstance(key_node, yaml.ScalarNode):
            raise self.fail(key_node, "a mapping key must be a plain scalar")
        key = self.scalar(key_node)
        return key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)


def dotted(path: Path_) -> str:
    """("data", "train", 0, "path") -> "data.train[0].path"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
