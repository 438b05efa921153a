"""Every row of a local dataset, read once, streamed: JSON errors, rows in another format, fields of the wrong type,
rows a backend would drop, duplicates, identical preference answers and lengths. ``scan(ds)`` returns a
``FileScan`` (remembered per file path, size, modification time and dataset settings, so ``ftr lint``, ``ftr
compile`` and ``ftr data`` in one process read a file once); ``leaks`` and ``lengths`` work on scans.

What each backend reads differently lives in the backend's ``rows`` module (``ft_recipes/backends/<name>/rows.py``,
optional), found by name like the other backend modules."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Callable, Iterator

from ft_recipes.recipe.model import Dataset

try:  # about 3x faster than the json module on dataset rows; optional
    import orjson

    _loads = orjson.loads
    JSONError: tuple = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads
    JSONError = (json.JSONDecodeError,)

EXAMPLES = 3  # lines kept per kind of problem
PROGRESS_BYTES = 64 << 20  # files larger than this report progress (when a callback is given)


@dataclass
class Issue:
    """A kind of problem: how many rows have it, and the first few as (line, detail)."""

    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, line: int, detail: str = "") -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append((line, detail))

    @property
    def first(self) -> tuple[int, str]:
        return self.examples[0] if self.examples else (0, "")

    def lines(self) -> str:
        return ", ".join(str(line) for line, _ in self.examples) + (", ..." if self.count > len(self.examples) else "")


# Python's string hashes (the row keys) differ between processes unless PYTHONHASHSEED is set: a scan records the
# process it hashed in, so that keys from a scan kept on disk are compared only with keys of the same hashing.
KEY_SPACE = hash("ft-recipes row keys")


@dataclass
class FileScan:
    path: Path
    rows: int = 0
    issues: dict = field(default_factory=dict)  # kind -> Issue: not_json, not_object, columns, types, empty_answer
    formats: Counter = field(default_factory=Counter)  # the format rows with a columns problem fit instead
    drops: dict = field(default_factory=dict)  # backend -> {reason: Issue}: rows that backend skips
    spellings: Counter = field(default_factory=Counter)  # (user names, assistant names) -> rows
    # the key (hash of the normalised row) of every row once: a set, or a SortedKeys (when numpy is installed) for a
    # large file; filled when every row is counted (``find_duplicates``)
    keys: set | SortedKeys = field(default_factory=set)
    duplicates: Issue = field(default_factory=Issue)
    identical: Issue = field(default_factory=Issue)  # preference rows with chosen == rejected
    chosen_longer: int = 0
    pairs: int = 0
    # one entry per counted row, in file order: its key, line, and characters of prompt and answer. 4-byte
    # entries (a line number or a row's length is at most the file's size) but for files of 4 GiB or more.
    row_keys: array = field(default_factory=lambda: array("q"))
    prompt_chars: array = field(default_factory=lambda: array("I"))
    answer_chars: array = field(default_factory=lambda: array("I"))
    answer_lines: array = field(default_factory=lambda: array("I"))
    unreadable: str | None = None
    located: bool = True  # problems are at file lines (.jsonl); False: row numbers of a .json list
    key_space: int = KEY_SPACE  # the hashing of row_keys and keys (the process's: see KEY_SPACE)

    def __post_init__(self) -> None:
        try:
            wide = self.path.stat().st_size >= 1 << 32
        except OSError:
            wide = False
        if wide:
            self.prompt_chars, self.answer_chars, self.answer_lines = array("q"), array("q"), array("q")

    def issue(self, kind: str) -> Issue:
        return self.issues.setdefault(kind, Issue())

    def first_line(self, key: int) -> int:
        """The line of the first row with ``key`` (a search through the rows: for the few lines a report names;
        a dictionary of every key's line would double the scan's memory)."""
        return self.answer_lines[self.row_keys.index(key)]

    @property
    def bad_rows(self) -> int:
        return sum(self.issues[k].count for k in ("not_json", "not_object", "columns", "types") if k in self.issues)

    def where(self, line: int) -> str:
        return f"{self.path.name}:{line}" if self.located else f"{self.path.name} row {line}"


def norm(text: str) -> str:
    """Whitespace runs as one space, lower case: the comparison of duplicates and leakage."""
    return " ".join(text.split()).lower()


def row_key(text: str) -> int:
    """The hash of ``norm(text)``, without splitting the text into words when it is already normal (the common
    case): printable text (whose only whitespace is the ASCII space: every other whitespace character is a control
    or separator, not printable) with no double, leading or trailing space. Lower-casing neither makes nor unmakes
    whitespace, so lower-casing first gives the same text."""
    text = text.lower()
    if not text.isprintable() or "  " in text or text[:1] == " " or text[-1:] == " ":
        text = " ".join(text.split())
    return hash(text)


def kind_of(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


# --- the shape a format asks of a row ------------------------------------------------------------------------

def _turns_problem(turns, role: str, content: str) -> tuple[str, str] | None:
    if not isinstance(turns, list) or not turns:
        return "the conversation is not a non-empty list", "messages"
    for turn in turns:
        if not isinstance(turn, dict) or role not in turn or content not in turn:
            return f"a turn lacks {role!r}/{content!r}", ("role" if isinstance(turn, dict) and role not in turn
                                                          else "content")
    return None


def row_problem(row: dict, ds: Dataset) -> tuple[str, str] | None:
    """(problem, standard column to map) when ``row`` does not fit ``ds.format``, else None."""
    mapped = dict(ds.columns)
    if ds.format in ("sharegpt", "messages"):
        default = "conversations" if ds.format == "sharegpt" else "messages"
        column = mapped.get("messages", default)
        if column not in row:
            return f"no {column!r} column", "messages"
        tags = ("from", "value") if ds.format == "sharegpt" else ("role", "content")
        return _turns_problem(row[column], mapped.get("role", tags[0]), mapped.get("content", tags[1]))
    required = {"alpaca": ("instruction", "output"), "preference": ("chosen", "rejected"), "text": ("text",)}
    for std in required.get(ds.format, ()):
        if ds.column(std) not in row:
            return f"no {ds.column(std)!r} column", std
    if ds.format == "preference" and ds.column("prompt") not in row and ds.column("instruction") not in row:
        return "no prompt: neither 'prompt' nor 'instruction' column", "prompt"
    return None


# --- reading rows ------------------------------------------------------------------------------------------

MAX_LINE = 64 << 20  # a longer line is no dataset row (a sparse or binary file): skipped, never held in memory


BLOCK = 1 << 20  # bytes read at a time (larger blocks are no faster and leave a larger heap)


def line_blocks(path: Path, progress: Callable[[int, int], None] | None = None, start: int = 0,
                end: int | None = None) -> Iterator[tuple[int, list]]:
    """The lines of a .jsonl file (or of its bytes ``start`` to ``end``, both at the start of a line) in blocks of
    about BLOCK bytes: (number of the line before the block, counted from ``start``, its lines as bytes without the
    newline, blank ones included); None for a line longer than MAX_LINE, read through without keeping it. Bounded
    memory; reading a block at a time costs far less than a call per line."""
    size = path.stat().st_size
    report = progress if progress and size > PROGRESS_BYTES else None
    number, done, tail, tail_size, skipping = 0, 0, [], 0, False
    piece, left = min(BLOCK, MAX_LINE), (size if end is None else end) - start
    with path.open("rb") as handle:
        handle.seek(start)
        while True:
            block = handle.read(min(piece, left))
            left -= len(block)
            if not block:
                break
            done += len(block)
            parts = block.split(b"\n")
            if len(parts) == 1:  # no line ends in this block: the current line goes on
                if not skipping:
                    tail.append(block)
                    tail_size += len(block)
                    if tail_size >= MAX_LINE:
                        tail, tail_size, skipping = [], 0, True
                continue
            if skipping:
                parts[0], skipping = None, False
            elif tail:
                parts[0] = b"".join(tail) + parts[0] if tail_size + len(parts[0]) < MAX_LINE else None
                tail, tail_size = [], 0
            last = parts.pop()
            if last:
                tail, tail_size = [last], len(last)
            yield number, parts
            number += len(parts)
            if report:
                report(done, size)
    if skipping or tail:
        yield number, [None if skipping else b"".join(tail)]
    if report:
        report(size, size)


def lines(path: Path, progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of every non-blank line of a .jsonl file (``line_blocks``, one by one)."""
    for number, block in line_blocks(path, progress):
        for line in block:
            number += 1
            if line is None or line.strip():
                yield number, line


def rows_of(path: Path, scan: FileScan, progress=None) -> Iterator[tuple[int, object]]:
    """(line, parsed row) of a .jsonl or .json file; JSON errors are recorded in ``scan`` and skipped."""
    if path.suffix == ".json":
        data = _loads(path.read_bytes())
        if not isinstance(data, list):
            raise ValueError("a .json dataset must hold a list of rows")
        scan.located = False
        yield from enumerate(data, 1)
        return
    for number, block in line_blocks(path, progress):
        yield from _block_rows(block, number, scan)


def _block_rows(block: list, number: int, scan: FileScan) -> Iterator[tuple[int, object]]:
    """(line, parsed row) of the lines of a block after line ``number`` (rows_of's)."""
    for line in block:
        number += 1
        if line is None:
            _long_line(scan, number)
            continue
        try:
            yield number, _loads(line)
        except JSONError as exc:
            _not_json(scan, number, line, exc)
        except UnicodeDecodeError:
            scan.issue("not_json").add(number, "not UTF-8 text")


def _long_line(scan: FileScan, number: int) -> None:
    scan.issue("not_json").add(number, f"a line of more than {MAX_LINE >> 20} MiB (not a row; a sparse or binary "
                                       f"file?)")


def _not_json(scan: FileScan, number: int, line: bytes, exc: Exception) -> None:
    """A line the parser refused: nothing when it is blank, else why."""
    if line.strip():  # the reason as the line was read with its newline (a truncated string "ends" there)
        scan.issue("not_json").add(number, _json_reason(exc, line + b"\n"))


def _json_reason(exc: Exception, line: bytes) -> str:
    """The reason in the json module's words, whichever parser found it (orjson is optional: findings must not
    depend on it)."""
    try:
        json.loads(line)
        message = str(exc).split(":")[0]
    except ValueError as stdlib:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
        message = str(stdlib).split(":")[0]
    return f"not JSON ({message}; a truncated line?)" if not line.rstrip().endswith(b"}") else f"not JSON ({message})"


# --- one row, by format ------------------------------------------------------------------------------------

def guess_format(row: dict) -> str | None:
    """The format a row fits, by its columns."""
    for column in ("conversations", "messages"):
        turns = row.get(column)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict):
            return "sharegpt" if "from" in turns[0] else "messages"
    if "chosen" in row and "rejected" in row:
        return "preference"
    if "instruction" in row and "output" in row:
        return "alpaca"
    if "text" in row:
        return "text"
    return None


def _str_field(row: dict, column: str, required: bool, problems: list) -> str:
    value = row.get(column)
    if isinstance(value, str):
        return value
    if value is None and not required:
        return ""
    problems.append(f"{column!r} is {kind_of(value)}, not a string")
    return ""


def _alpaca(row: dict, ds: Dataset, problems: list) -> tuple[str, str]:
    prompt = [_str_field(row, ds.column(c), c == "instruction", problems) for c in ("system", "instruction", "input")]
    history = row.get(ds.column("history"))
    if history is not None:
        if not isinstance(history, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in history):
            problems.append(f"{ds.column('history')!r} is not a list of [prompt, answer] string pairs")
        else:
            prompt += [t for pair in history for t in pair]
    return "\n".join(prompt), _str_field(row, ds.column("output"), True, problems)


def _turn_keys(ds: Dataset) -> tuple[str, str, str]:
    mapped = dict(ds.columns)
    column = mapped.get("messages", "conversations" if ds.format == "sharegpt" else "messages")
    tags = ("from", "value") if ds.format == "sharegpt" else ("role", "content")
    return column, mapped.get("role", tags[0]), mapped.get("content", tags[1])


def _chat(row: dict, ds: Dataset, problems: list) -> tuple[str, str]:
    from ft_recipes.recipe.datasets import role_names

    column, role_key, content_key = _turn_keys(ds)
    turns = row[column]
    names = role_names(ds)
    texts = []
    for number, turn in enumerate(turns, 1):
        role, content = turn.get(role_key), turn.get(content_key)
        if not isinstance(role, str):
            problems.append(f"turn {number}: {role_key!r} is {kind_of(role)}, not a string")
        if not isinstance(content, str):
            problems.append(f"turn {number}: {content_key!r} is {kind_of(content)}, not a string")
            content = ""
        texts.append((names.get(role, role), content))
    last = max((number for number, (role, _) in enumerate(texts) if role == "assistant"), default=None)
    if last is None:
        return "\n".join(t for _, t in texts), ""
    return "\n".join(t for _, t in texts[:last]), texts[last][1]


def _answer_text(value, ds: Dataset, side: str, problems: list) -> str:
    if isinstance(value, list):
        value = value[-1] if value else ""
    if isinstance(value, dict):
        _, role_key, content_key = _turn_keys(ds)
        value = value.get(content_key, value.get("content", value.get("value")))
    if isinstance(value, str):
        return value
    problems.append(f"{side!r} is {kind_of(value)}, not a string")
    return ""


def _preference(row: dict, ds: Dataset, problems: list) -> tuple[str, str, str]:
    prompt = row.get(ds.column("prompt"), row.get(ds.column("instruction")))
    if isinstance(prompt, list):
        prompt = "\n".join(_answer_text(turn, ds, "prompt", problems) for turn in prompt)
    elif not isinstance(prompt, str):
        problems.append(f"the prompt is {kind_of(prompt)}, not a string")
        prompt = ""
    extra = _str_field(row, ds.column("input"), False, problems)
    chosen = _answer_text(row.get(ds.column("chosen")), ds, ds.column("chosen"), problems)
    rejected = _answer_text(row.get(ds.column("rejected")), ds, ds.column("rejected"), problems)
    return "\n".join(p for p in (prompt, extra) if p), chosen, rejected


def _readers() -> dict:
    """Backend name -> its ``rows`` part (``Backend.rows``: the backends that read conversations their own way)."""
    from ft_recipes import backends

    return {b.name: b.part("rows") for b in backends.all_backends() if b.rows}


# --- a whole file ------------------------------------------------------------------------------------------

def texts(row: dict, ds: Dataset, problems: list) -> tuple[str, str, str | None]:
    """(prompt, answer, rejected answer or None) of a row that has the format's columns; type problems are added to
    ``problems``."""
    if ds.format == "alpaca":
        return (*_alpaca(row, ds, problems), None)
    if ds.format in ("sharegpt", "messages"):
        return (*_chat(row, ds, problems), None)
    if ds.format == "preference":
        return _preference(row, ds, problems)
    return "", _str_field(row, ds.column("text"), True, problems), None


def fast_reader(ds: Dataset) -> Callable[[object], tuple | None]:
    """row -> (prompt, answer, rejected, key text) for a well-formed row of ``ds.format`` (every field a string), else
    None: the common case in a few dictionary lookups; ``_check_row`` then explains the row that is not."""
    if ds.format == "alpaca":
        return _fast_alpaca(ds)
    if ds.format == "text":
        column = ds.column("text")
        return lambda row: ("", row[column], None, f"{row[column]} None") \
            if type(row) is dict and type(row.get(column)) is str else None
    return lambda row: None


def _fast_alpaca(ds: Dataset):
    instruction, extra, output, system = (ds.column(c) for c in ("instruction", "input", "output", "system"))
    history = ds.column("history")

    def read(row):
        if type(row) is not dict or history in row:
            return None
        first, answer, more, sys_text = row.get(instruction), row.get(output), row.get(extra), row.get(system)
        if type(first) is str and type(answer) is str and (more is None or type(more) is str) and \
                (sys_text is None or type(sys_text) is str):
            # the key's words are those of _count's f"{prompt} {answer} {None}", without the empty fields
            key = " ".join([t for t in (sys_text, first, more, answer) if t] + ["None"])
            return f"{sys_text or ''}\n{first}\n{more or ''}", answer, None, key
        return None

    return read


def _check_row(row, number: int, ds: Dataset, scan: FileScan, readers: dict) -> None:
    if not isinstance(row, dict):
        scan.issue("not_object").add(number, f"{kind_of(row)}, not a JSON object")
        return
    problem = row_problem(row, ds)
    if problem:
        guess = guess_format(row)
        scan.formats[guess] += 1
        scan.issue("columns").add(number, problem[0] + (f" (the row looks like format {guess})"
                                                        if guess and guess != ds.format else ""))
        return
    problems: list = []
    prompt, answer, rejected = texts(row, ds, problems)
    if problems:
        scan.issue("types").add(number, "; ".join(problems[:2]))
        return
    if ds.format in ("sharegpt", "messages"):
        _backend_reads(row[_turn_keys(ds)[0]], number, ds, scan, readers)
    _count(prompt, answer, rejected, number, ds, scan)


def _backend_reads(turns: list, number: int, ds: Dataset, scan: FileScan, readers: dict) -> None:
    for name, reader in readers.items():
        tags = reader.declared_tags(ds)
        reason = reader.drop_reason(turns, tags)
        if reason == "role":  # "tags": dropped only for the spelling of its roles; "order": any spelling
            standard = reader.drop_reason(reader.standard_turns(turns, tags), reader.standard_tags(tags))
            reason = "tags" if standard is None else "order"
        if reason:
            scan.drops.setdefault(name, {}).setdefault(reason, Issue()).add(number)
        scan.spellings[reader.spellings(turns, tags)] += 1


def _count(prompt: str, answer: str, rejected: str | None, number: int, ds: Dataset, scan: FileScan,
           key_text: str | None = None) -> None:
    """Count one well-formed row; ``key_text``: a text with the same words as f"{prompt} {answer} {rejected}" (the
    duplicate and leakage key), when the reader has a cheaper one."""
    scan.rows += 1
    if not answer.strip() and ds.format != "text":
        scan.issue("empty_answer").add(number)
    if rejected is not None:
        scan.pairs += 1
        if norm(answer) == norm(rejected):
            scan.identical.add(number)
        scan.chosen_longer += len(answer) > len(rejected)
    key = row_key(f"{prompt} {answer} {rejected}" if key_text is None else key_text)
    scan.row_keys.append(key)
    scan.prompt_chars.append(len(prompt))
    scan.answer_chars.append(len(answer))
    scan.answer_lines.append(number)


# --- a whole block of well-formed rows at once ---------------------------------------------------------------
# The common case (every line a JSON object whose fields are strings) is counted with map() over the block's lists
# (loops in C) instead of Python code per row: the same figures as _count row by row, which every other block gets.

_STR, _NONE = {str}, {str, type(None)}
# the whitespace of str.split() but the space
_SPACES = ("\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680", "\u2028",
           "\u2029", "\u202f", "\u205f", "\u3000", *map(chr, range(0x2000, 0x200b)))
_DOUBLE = re.compile("  ")  # 3x faster than `"  " in text` when spaces are frequent (CPython 3.11)


def _block_reader(ds: Dataset):
    """``read(block) -> (key texts, answers, prompt lengths)`` of a block of lines of an alpaca dataset when each
    line is a well-formed row, else None; None for other formats. The key texts have the words of _count's."""
    if ds.format != "alpaca" or _loads is json.loads:
        return None
    instruction, extra, output, system = (ds.column(c) for c in ("instruction", "input", "output", "system"))
    history = ds.column("history")

    def read(block: list) -> tuple[list, list, list] | None:
        try:
            rows = list(map(_loads, block))  # a blank line or a JSON error: the block goes row by row
        except (TypeError, UnicodeDecodeError) + JSONError:
            return None
        if set(map(type, rows)) != {dict} or any(map(dict.__contains__, rows, repeat(history))):
            return None
        firsts, answers = list(map(dict.get, rows, repeat(instruction))), list(map(dict.get, rows, repeat(output)))
        mores = list(map(dict.get, rows, repeat(extra), repeat("")))
        systems = list(map(dict.get, rows, repeat(system), repeat("")))
        if set(map(type, firsts)) != _STR or set(map(type, answers)) != _STR or not set(map(type, mores)) <= _NONE \
                or not set(map(type, systems)) <= _NONE:
            return None
        if None in mores or None in systems:
            mores, systems = [m or "" for m in mores], [s or "" for s in systems]
        # the key text: the words of f"{prompt} {answer} {None}" as _count's (empty fields left out)
        keys = list(map(" ".join, map(filter, repeat(None), zip(systems, firsts, mores, answers, repeat("None")))))
        return keys, answers, list(map(_sum3, map(len, systems), map(len, firsts), map(len, mores)))

    return read


def _sum3(a: int, b: int, c: int) -> int:
    return a + b + c + 2  # len(f"{system}\n{instruction}\n{input}")


def _bulk_keys(texts: list) -> list:
    """``row_key`` of each text: a few searches over the whole block when every text is already normal (no whitespace
    but single spaces, none at either end), else row by row. Joined with spaces, a text with a space at either end
    makes a double space. Lower-casing neither makes nor unmakes whitespace: the texts are checked as they are."""
    big = " ".join(texts)
    if big[:1] == " " or big[-1:] == " " or any(map(big.__contains__, _SPACES)) or _DOUBLE.search(big):
        return list(map(row_key, texts))
    return list(map(hash, map(str.lower, texts)))


def _count_block(scan: FileScan, texts: list, answers: list, prompt_chars: list, lines: range) -> None:
    """_count's figures for a block of rows without a rejected answer: rows, empty answers, keys, lengths."""
    scan.rows += len(answers)
    if sum(map(bool, map(str.strip, answers))) < len(answers):
        for line, answer in zip(lines, answers):
            if not answer.strip():
                scan.issue("empty_answer").add(line)
    keys = _bulk_keys(texts)
    scan.row_keys.extend(keys)
    scan.prompt_chars.extend(prompt_chars)
    scan.answer_chars.extend(map(len, answers))
    scan.answer_lines.extend(lines)


# --- duplicates, once every row is counted ---------------------------------------------------------------------

NUMPY_FROM = 200_000  # rows from which numpy (when installed) finds the duplicates: 8 bytes a key, not about 70


def find_duplicates(scan: FileScan) -> None:
    """The scan's keys, and its duplicates (rows whose key an earlier row has, each named with that row's line),
    from the key of each row: with numpy (optional) for a large file, else a set; the same figures."""
    np = _numpy() if scan.rows >= NUMPY_FROM else None
    if np is None:
        step = 1 << 16
        for at in range(0, len(scan.row_keys), step):
            _add_keys(scan, scan.row_keys[at:at + step], scan.answer_lines[at:at + step])
        return
    keys = np.frombuffer(scan.row_keys, dtype=np.int64)
    order = np.argsort(keys, kind="stable")  # equal keys in file order (np.unique's copies take more memory)
    ordered = keys[order]
    starts = np.empty(len(keys), dtype=bool)  # where a run of equal keys starts: at its first row
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    scan.keys = SortedKeys(ordered[starts])
    del ordered
    repeated = np.ones(len(keys), dtype=bool)
    repeated[order[starts]] = False
    del order, starts
    scan.duplicates.count = len(keys) - len(scan.keys)
    for row in np.flatnonzero(repeated)[:EXAMPLES].tolist():
        scan.duplicates.examples.append((scan.answer_lines[row], str(scan.first_line(scan.row_keys[row]))))


def _numpy():
    try:
        import numpy
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return numpy


class SortedKeys:
    """Distinct keys in a sorted numpy array: the set's ``in``, ``len``, iteration and ``==``."""

    def __init__(self, keys) -> None:
        self.keys = keys

    def __contains__(self, key: int) -> bool:
        at = int(self.keys.searchsorted(key))
        return at < len(self.keys) and int(self.keys[at]) == key

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys.tolist())

    def __eq__(self, other) -> bool:
        return set(self) == set(other)


def _add_keys(scan: FileScan, keys, lines) -> None:
    """The duplicates among rows with ``keys`` at ``lines``, the rows after those already in ``scan.keys``; their
    keys into the set."""
    seen = scan.keys
    if len(scan.duplicates.examples) >= EXAMPLES:  # only counted now: by how much the set grows
        before = len(seen)
        seen.update(keys)
        scan.duplicates.count += len(keys) - (len(seen) - before)
        return
    new = dict.fromkeys(keys)
    known = seen.intersection(new)
    repeated = len(keys) - len(new) + len(known)  # rows whose key came earlier, in these rows or before them
    if repeated:  # the first few, in file order
        met: set = set()
        for key, line in zip(keys, lines):
            if key in known or key in met:
                scan.duplicates.add(line, str(scan.first_line(key)))
                repeated -= 1
                if len(scan.duplicates.examples) >= EXAMPLES:
                    break
            met.add(key)
        scan.duplicates.count += repeated  # the others: counted, not named
    seen.update(new)


_SCANS: dict = {}


def scan(ds: Dataset, progress: Callable[[int, int], None] | None = None, keyed: bool = False) -> FileScan:
    """Every row of the local .jsonl/.json dataset ``ds`` (OSError when it cannot be opened); remembered in this
    process, and on disk for files of CACHE_FROM bytes or more (``ftr lint`` on every save reads a large file
    once). ``keyed``: its row keys must be comparable with this process's (``leaks``, ``near_leaks``): a scan
    another process kept hashed its rows with that process's string hashes, so the file is read again."""
    stat = ds.path.stat()
    key = (str(ds.path), stat.st_size, stat.st_mtime_ns, ds.format, ds.columns)
    if key not in _SCANS:
        if len(_SCANS) > 32:
            _SCANS.clear()
        _SCANS[key] = _cached_scan(ds, stat, progress)
    if keyed and _SCANS[key].key_space != KEY_SPACE:
        _SCANS[key] = _scan(ds, progress)
    return _SCANS[key]


# --- scans kept on disk ------------------------------------------------------------------------------------------

CACHE_FROM = 1 << 20  # smaller files are read again: faster than a cache entry
CACHE_ENTRIES = 32  # the newest are kept


def _cached_scan(ds: Dataset, stat, progress) -> FileScan:
    if stat.st_size < CACHE_FROM:
        return _scan(ds, progress)
    path = _cache_file(ds, stat)
    kept = _read_cache(path)
    if kept is not None:
        return kept
    result = _scan(ds, progress)
    _write_cache(path, result)
    return result


def _cache_file(ds: Dataset, stat) -> Path:
    """The cache entry of ``ds`` as it is now: its file's identity (path, inode, size, modification time), the
    dataset's settings, and the code that reads it (this module and the backends' row readers, by their
    modification times, with the package version)."""
    import hashlib

    from ft_recipes import __version__
    from ft_recipes.backends.envs import cache_root

    code = [Path(__file__)] + [Path(r.__file__) for r in _readers().values()]
    identity = (str(ds.path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, ds.format, ds.columns,
                __version__, [(str(p), p.stat().st_mtime_ns) for p in code])
    name = hashlib.sha256(repr(identity).encode()).hexdigest()[:32]
    return cache_root().parent / "scans" / f"{name}.pickle"


def _read_cache(path: Path) -> FileScan | None:
    """The scan kept at ``path``, or None: none there, or not a private file of this user (a pickle is code)."""
    import pickle

    try:
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        with path.open("rb") as handle:
            kept = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError):
        return None
    return kept if isinstance(kept, FileScan) else None


def _write_cache(path: Path, result: FileScan) -> None:
    """Keep ``result`` (a private file, written whole then renamed), and only the newest CACHE_ENTRIES."""
    import pickle
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")  # mode 0600
        with os.fdopen(handle, "wb") as out:
            pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp, path)
        entries = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in entries[CACHE_ENTRIES:]:
            old.unlink(missing_ok=True)
    except OSError:  # a read-only or full cache folder: the scan stands without it
        return


PARALLEL_FROM = 64 << 20  # a larger .jsonl file is read in parts by several processes
PART = 32 << 20  # bytes of a part (several per process: the parent merges one while the others are read)
WORKERS = 8  # processes at most


def _scan(ds: Dataset, progress, part: int = PART, parallel_from: int = PARALLEL_FROM) -> FileScan:
    result = FileScan(ds.path)
    try:
        if ds.path.suffix == ".json":
            readers = _readers() if ds.format in ("sharegpt", "messages") else {}
            fast = fast_reader(ds)
            for number, row in rows_of(ds.path, result, progress):
                _one(row, number, ds, result, readers, fast)
        elif ds.path.stat().st_size <= parallel_from or not _in_parts(ds, result, progress, part):
            _scan_lines(ds, result, progress)
    except (ValueError, UnicodeDecodeError) + JSONError as exc:  # a .json file that is not a list of rows
        result.unreadable = str(exc).split("\n")[0]
    find_duplicates(result)
    return result


def _scan_lines(ds: Dataset, result: FileScan, progress, start: int = 0, end: int | None = None) -> int:
    """Count the rows of a .jsonl file (its bytes ``start`` to ``end``, lines numbered from there); the number of
    lines read."""
    readers = _readers() if ds.format in ("sharegpt", "messages") else {}
    fast = fast_reader(ds)
    whole = _block_reader(ds)
    read = 0
    for number, block in line_blocks(ds.path, progress, start, end):  # the loop of rows_of, inlined: most of the time
        read = number + len(block)
        counted = whole(block) if whole is not None else None
        if counted is not None:  # every line of the block a well-formed row, counted in bulk
            _count_block(result, *counted, range(number + 1, read + 1))
            continue
        for line in block:
            number += 1
            if line is None:
                _long_line(result, number)
                continue
            try:
                row = _loads(line)
            except JSONError as exc:
                _not_json(result, number, line, exc)
                continue
            except UnicodeDecodeError:
                result.issue("not_json").add(number, "not UTF-8 text")
                continue
            _one(row, number, ds, result, readers, fast)
    return read


# --- a large file in parts, one process each ----------------------------------------------------------------

def _in_parts(ds: Dataset, result: FileScan, progress, part: int) -> bool:
    """Count the rows of a .jsonl file read in parts of about ``part`` bytes by several processes (False, having
    counted nothing, where that is not possible). The figures are those of one reading: each part's lines are
    numbered from its start, then shifted as the parts are merged in file order. The processes are forked, so hash()
    (the key) is the parent's."""
    workers = _workers()
    if workers < 2:
        return False
    size = ds.path.stat().st_size
    bounds = _line_starts(ds.path, size, part)
    jobs = [(ds, start, end) for start, end in zip(bounds, bounds[1:])]
    report = progress if progress and size > PROGRESS_BYTES else None
    offset = 0
    with multiprocessing.get_context("fork").Pool(min(workers, len(jobs))) as pool:
        for (_, start, end), (scanned, lines) in zip(jobs, pool.imap(_part, jobs)):
            _merge(result, scanned, offset)
            offset += lines
            if report:
                report(end, size)
    return True


def _workers() -> int:
    """Processes to read a file with; 1 where they cannot be forked (hash() must be the parent's: it makes the keys),
    where other threads run (a fork copies the locks they hold) or in a daemon process (a pool's worker, which
    cannot have children)."""
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1 \
            or multiprocessing.current_process().daemon:
        return 1
    return min(_cpus(), WORKERS)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _line_starts(path: Path, size: int, part: int) -> list[int]:
    """0, the start of the first line after each ``part`` bytes, and ``size``."""
    bounds = [0]
    with path.open("rb") as handle:
        for guess in range(part, size, part):
            if guess <= bounds[-1]:
                continue  # within a line longer than a part
            handle.seek(guess - 1)
            at = guess - 1
            while True:
                piece = handle.read(1 << 16)
                found = piece.find(b"\n")
                if found >= 0 or not piece:
                    break
                at += len(piece)
            start = at + found + 1 if piece and found >= 0 else size
            if bounds[-1] < start < size:
                bounds.append(start)
    return bounds + [size]


def _part(job: tuple) -> tuple[FileScan, int]:
    ds, start, end = job
    scanned = FileScan(ds.path)
    return scanned, _scan_lines(ds, scanned, None, start, end)


def _merge(result: FileScan, part: FileScan, offset: int) -> None:
    """Add the figures of a part whose lines start after line ``offset``."""
    result.rows += part.rows
    for kind, issue in part.issues.items():
        _add_issue(result.issue(kind), issue, offset)
    for name, reasons in part.drops.items():
        for reason, issue in reasons.items():
            _add_issue(result.drops.setdefault(name, {}).setdefault(reason, Issue()), issue, offset)
    _add_issue(result.identical, part.identical, offset)
    result.formats.update(part.formats)
    result.spellings.update(part.spellings)
    result.chosen_longer += part.chosen_longer
    result.pairs += part.pairs
    lines = array(part.answer_lines.typecode, map(offset.__add__, part.answer_lines))
    result.row_keys.extend(part.row_keys)
    result.prompt_chars.extend(part.prompt_chars)
    result.answer_chars.extend(part.answer_chars)
    result.answer_lines.extend(lines)


def _add_issue(total: Issue, part: Issue, offset: int) -> None:
    total.count += part.count
    room = EXAMPLES - len(total.examples)
    total.examples += [(line + offset, detail) for line, detail in part.examples[:max(0, room)]]


def _one(row, number: int, ds: Dataset, result: FileScan, readers: dict, fast) -> None:
    read = fast(row)
    if read is None:
        _check_row(row, number, ds, result, readers)
    else:
        _count(read[0], read[1], read[2], number, ds, result, read[3])


def leaks(train: list[FileScan], val: FileScan) -> Issue:
    """Validation rows (prompt and answer, whitespace and case normalised) that are also training rows (each named
    with the first training file and line that has it)."""
    found = Issue()
    lines = dict(zip(reversed(val.row_keys), reversed(val.answer_lines)))  # each key at its first line
    for key in dict.fromkeys(val.row_keys):
        for scanned in train:
            if key in scanned.keys:
                if len(found.examples) < EXAMPLES:
                    found.add(lines[key], scanned.where(scanned.first_line(key)))
                else:
                    found.count += 1
                break
    return found


# --- near-duplicates of validation rows in training (MinHash-style) ----------------------------------------

SHINGLE = 3  # words per shingle
ANCHORS = 8  # the smallest shingle hashes of a row that index it (a bottom-k MinHash sketch)


def shingles(text: str) -> set:
    """The hashes of the word 3-grams of ``text`` (lower case; a shorter text: the hash of its words)."""
    words = text.lower().split()
    if len(words) < SHINGLE:
        return {hash(tuple(words))} if words else set()
    return set(map(hash, zip(words, words[1:], words[2:])))


def _row_texts(ds: Dataset, start: int = 0, end: int | None = None) -> Iterator[tuple[int, str]]:
    """(line, prompt and answer) of every well-formed row of ``ds`` (the rows the other checks count; of a .jsonl
    file's bytes ``start`` to ``end``, lines numbered from there), a block of well-formed alpaca rows at a time as
    the scan reads them."""
    ignored = FileScan(ds.path)
    if ds.path.suffix == ".json":
        yield from _texts_of(rows_of(ds.path, ignored), ds)
        return
    whole = _block_reader(ds)
    for number, block in line_blocks(ds.path, None, start, end):
        counted = whole(block) if whole is not None else None
        if counted is not None:
            yield from zip(range(number + 1, number + 1 + len(block)), counted[0])
        else:
            yield from _texts_of(_block_rows(block, number, ignored), ds)


def _texts_of(rows: Iterator[tuple[int, object]], ds: Dataset) -> Iterator[tuple[int, str]]:
    fast = fast_reader(ds)
    for number, row in rows:
        read = fast(row)
        if read is not None:
            yield number, read[3]
            continue
        if not isinstance(row, dict) or row_problem(row, ds):
            continue
        problems: list = []
        prompt, answer, rejected = texts(row, ds, problems)
        if not problems:
            yield number, f"{prompt} {answer} {rejected}"


COMMON = 64  # a 3-gram in more validation rows than this (a template's) indexes none: it would match them all


def near_leaks(train: list[tuple[Dataset, FileScan]], val: tuple[Dataset, FileScan], similarity: float) -> Issue:
    """Validation rows whose word 3-grams are ``similarity`` (Jaccard) or more those of a training row, exact
    repeats (``leaks``) left out; each named with the first such training row. The validation rows are indexed by
    their ANCHORS smallest shingle hashes (a bottom-k MinHash sketch, over the 3-grams in at most COMMON validation
    rows); each training row is read once (streamed) and compared exactly (Jaccard of the shingle sets) with the
    validation rows that share at least a third of its anchors: two rows of Jaccard J share about J of their
    smallest hashes, so a near-duplicate is missed with a probability of about 1e-3 at 0.7. A validation row leaves
    the index once matched. Memory: the validation rows' shingles; time: one pass over the training rows (a large
    file in parts, one process each, as ``scan`` reads it)."""
    near = _near_index(val[0], [scanned for _, scanned in train], similarity)
    matched: dict = {}  # validation line -> (training place, similarity)
    for ds, scanned in train:
        for number, line, score in _near_matches(ds, near) if near.index else ():
            if line not in matched:  # the first training row like it
                matched[line] = (scanned.where(number), score)
                near.drop(line)
    found = Issue()
    for line in sorted(matched):
        where, score = matched[line]
        found.add(line, f"{where}, {score:.0%} alike")
    return found


@dataclass
class _Near:
    rows: dict  # validation line -> its shingles
    common: set  # 3-grams of more than COMMON validation rows
    anchored: dict  # validation line -> its anchors
    index: dict  # anchor -> validation lines
    similarity: float

    def drop(self, line: int) -> None:
        """A matched validation row out of the index (again: a no-op)."""
        for anchor in self.anchored[line]:
            lines = self.index.get(anchor, ())
            if line in lines:
                lines.discard(line)
                if not lines:
                    del self.index[anchor]

    def matches(self, ds: Dataset, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, float]]:
        """(training line, validation line, similarity) where the rows are alike, the first for each validation
        line, in file order (of the rows from byte ``start`` to ``end``, lines numbered from there)."""
        common, index, need, anchors = self.common, self.index, max(1, ANCHORS // 3), self.index.keys()
        for number, text in _row_texts(ds, start, end):
            sh = shingles(text)
            if anchors.isdisjoint(sh):
                continue  # no 3-gram of the row is an anchor (a quicker test than the one below, which it implies)
            bottom = sorted(sh - common if common else sh)[:ANCHORS]
            if anchors.isdisjoint(bottom):
                continue  # most rows: no validation row shares one of its smallest 3-grams
            hits = Counter(line for anchor in bottom for line in index.get(anchor, ()))
            for line, shared in hits.items():
                theirs = self.rows[line]
                if shared < min(need, len(self.anchored[line]), len(bottom)):
                    continue
                shared = len(sh & theirs)
                score = shared / (len(sh) + len(theirs) - shared)  # Jaccard: the union's size without making it
                if score >= self.similarity:
                    yield number, line, score
                    self.drop(line)
            if not index:
                return


def _near_index(val: Dataset, train: list[FileScan], similarity: float) -> _Near:
    rows: dict = {}
    for line, text in _row_texts(val):
        key = row_key(text)
        if not any(key in scanned.keys for scanned in train):  # an exact repeat is FTR208's
            sh = shingles(text)
            if sh:
                rows[line] = sh
    spread = Counter(h for sh in rows.values() for h in sh)
    common = {h for h, n in spread.items() if n > COMMON}
    del spread
    near = _Near(rows, common, {}, {}, similarity)
    for line, sh in rows.items():
        near.anchored[line] = sorted(sh - common if common else sh)[:ANCHORS]
        for anchor in near.anchored[line]:
            near.index.setdefault(anchor, set()).add(line)
    return near


_NEAR: _Near | None = None  # the index the forked processes of _near_matches read


def _near_matches(ds: Dataset, near: _Near) -> Iterator[tuple[int, int, float]]:
    """``near.matches`` of the training rows of ``ds``; a large .jsonl file read in parts by several processes,
    merged in file order."""
    global _NEAR
    size = ds.path.stat().st_size
    workers = _workers()
    if ds.path.suffix == ".json" or size <= PARALLEL_FROM or workers < 2:
        yield from near.matches(ds)
        return
    bounds = _line_starts(ds.path, size, PART)
    jobs = [(ds, start, end) for start, end in zip(bounds, bounds[1:])]
    _NEAR, offset = near, 0
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(jobs))) as pool:
            for found, lines in pool.imap(_near_part, jobs):
                yield from ((number + offset, line, score) for number, line, score in found)
                offset += lines
    finally:
        _NEAR = None


def _near_part(job: tuple) -> tuple[list, int]:
    ds, start, end = job
    with ds.path.open("rb") as handle:
        handle.seek(start)
        lines = handle.read(end - start).count(b"\n")  # the part ends at a line's start, or the file's end
    return list(_NEAR.matches(ds, start, end)), lines


def progress_line(path: Path) -> Callable[[int, int], None]:
    """A callback writing ``reading NAME: 45% (270 of 600 MB)`` over itself on stderr."""
    def report(done: int, size: int) -> None:
        end = "\n" if done >= size else "\r"
        sys.stderr.write(f"reading {path.name}: {100 * done // size}% ({done >> 20} of {size >> 20} MB){end}")
        sys.stderr.flush()

    return report


# --- lengths against max_length ----------------------------------------------------------------------------

CHARS_PER_TOKEN = 4  # the estimate when the model's tokenizer is not on this machine


@dataclass
class Lengths:
    """Token lengths of a dataset's rows (prompt + answer content; the chat template adds a few tokens a turn)."""

    exact: bool  # counted with the model's tokenizer; else estimated from characters
    rows: int = 0
    over: Issue = field(default_factory=Issue)  # rows longer than max_length
    no_answer: Issue = field(default_factory=Issue)  # rows whose prompt alone fills max_length
    longest: int = 0
    tokens: array = field(default_factory=lambda: array("q"))
    answer_cut: Issue = field(default_factory=Issue)  # rows whose answer max_length cuts (part of it kept)
    kept: int = 0  # tokens left after the cut (or the drop) at max_length
    trainable: int = 0  # of those, the tokens the loss is computed on

    def share(self, issue: Issue) -> float:
        return issue.count / self.rows if self.rows else 0.0

    def percentile(self, q: float) -> int:
        ordered = sorted(self.tokens)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


def tokenizer_for(base: str):
    """The model's tokenizer from tokenizer.json on this machine (local path or Hugging Face cache) with the
    ``tokenizers`` library, or None (never a download)."""
    from ft_recipes.recipe.modelinfo import model_dir

    directory = model_dir(base)
    if directory is None or not (directory / "tokenizer.json").is_file():
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    try:
        return Tokenizer.from_file(str(directory / "tokenizer.json"))
    except Exception:  # noqa: BLE001 - the library raises its own exception type for a file it cannot read
        return None


def lengths(ds: Dataset, scanned: FileScan, max_length: int, tokenizer=None, train_on_prompt: bool = False,
            drop_over: bool = False) -> Lengths:
    """Rows over ``max_length`` tokens, rows whose prompt fills it and rows whose answer it cuts, and the tokens
    kept and trained after the cut (counted with ``tokenizer``, else estimated from the scan's character counts).
    The cut keeps the start of the row, as Axolotl and trl cut (LLaMA-Factory shares the budget between prompt and
    answer); ``drop_over``: rows over max_length are dropped instead (data.overlength: drop); ``train_on_prompt``:
    the loss is on the prompt too (a text row's whole content is its answer)."""
    result = Lengths(exact=tokenizer is not None)
    pairs = _token_pairs(ds, tokenizer) if tokenizer is not None else (
        (line, -(-p // CHARS_PER_TOKEN), -(-a // CHARS_PER_TOKEN))
        for line, p, a in zip(scanned.answer_lines, scanned.prompt_chars, scanned.answer_chars))
    for line, prompt, answer in pairs:
        total = prompt + answer
        result.rows += 1
        result.tokens.append(total)
        result.longest = max(result.longest, total)
        if total > max_length:
            result.over.add(line, str(total))
        if prompt >= max_length:
            result.no_answer.add(line, str(prompt))
        elif total > max_length:
            result.answer_cut.add(line, f"{max_length - prompt} of {answer}")
        if drop_over and total > max_length:
            continue
        kept = min(total, max_length)
        result.kept += kept
        result.trainable += kept if train_on_prompt else max(0, kept - prompt)
    return result


def _token_pairs(ds: Dataset, tokenizer, batch: int = 2048):
    """(line, prompt tokens, answer tokens) of every readable row, tokenized in batches."""
    pending: list = []
    for number, row in rows_of(ds.path, FileScan(ds.path)):
        problems: list = []
        if not isinstance(row, dict):
            continue
        if row_problem(row, ds):
            continue
        prompt, answer, _ = texts(row, ds, problems)
        if not problems:
            pending.append((number, prompt, answer))
        if len(pending) >= batch:
            yield from _encode(pending, tokenizer)
            pending = []
    yield from _encode(pending, tokenizer)


def _encode(pending: list, tokenizer):
    if not pending:
        return
    prompts = tokenizer.encode_batch([p for _, p, _ in pending], add_special_tokens=False)
    answers = tokenizer.encode_batch([a for _, _, a in pending], add_special_tokens=False)
    for (line, _, _), prompt, answer in zip(pending, prompts, answers):
        yield line, len(prompt.ids), len(answer.ids)
