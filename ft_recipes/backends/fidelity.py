"""The fidelity report of `ftr import` and `ftr convert`: what became of every key of the native file.

Each line has one status: carried (the value is in the recipe, and in the target's config), approximated (carried
with a difference the line names), lost (not in the output), refused (the conversion stops: FTR005), kept (no recipe
key; kept as it was under ``backends.<name>``, or written the same by the target)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ft_recipes.recipe.load import dotted

STATUSES = ("carried", "approximated", "lost", "refused", "kept")
PROBLEMS = ("approximated", "lost")  # what --strict refuses


@dataclass(frozen=True)
class Line:
    status: str
    key: str  # the native key of the source file (a recipe key where none)
    value: Any = None
    detail: str = ""
    recipe_key: str = ""
    target_key: str = ""  # convert: the key the target's config writes it to

    def text(self) -> str:
        value = f": {self.value!r}" if self.value is not None else ""
        target = f" -> {self.target_key or self.recipe_key}" if self.target_key or self.recipe_key else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.status}  {self.key}{value}{target}{detail}"


@dataclass
class Report:
    source: str
    dialect: str
    target: str | None = None  # None: an import
    lines: list[Line] = None

    def __post_init__(self):
        self.lines = list(self.lines or [])

    def add(self, *lines: Line) -> None:
        self.lines.extend(lines)

    def counts(self) -> dict[str, int]:
        return {status: sum(line.status == status for line in self.lines) for status in STATUSES}

    def summary(self) -> str:
        return ", ".join(f"{status} {n}" for status, n in self.counts().items())

    def problems(self) -> list[Line]:
        return [line for line in self.lines if line.status in PROBLEMS]

    def text(self) -> str:
        order = {status: i for i, status in enumerate(STATUSES)}
        lines = sorted(self.lines, key=lambda line: order[line.status])
        return "".join(line.text() + "\n" for line in lines) + self.summary() + "\n"

    def json(self, written: list | None = None) -> str:
        out = {"source": self.source, "from": self.dialect, "to": self.target, "summary": self.counts(),
               "lines": [asdict(line) for line in self.lines], "written": [str(p) for p in written or []]}
        return json.dumps(out, indent=2, ensure_ascii=False, default=repr) + "\n"


def read_lines(imported, names=None, same: bool = False) -> list[Line]:
    """One line per native key read into the recipe: carried, or approximated when the importer noted a
    difference (for ``same``, a round trip, only a difference this backend itself makes). ``names`` (recipe path
    -> the target's key) fills ``target_key``."""
    document = imported.resolved.document
    at = {position: path for path, position in document.key_positions.items()}
    read: dict[str, list[str]] = {}
    for path, source in imported.resolved.provenance.items():
        native = at.get((source.line, source.col)) if source.file == document.file else None
        if native is None or path[:1] in (("ftr",), ("backends",)):
            continue
        read.setdefault(dotted(native), []).append(dotted(path))
    notes = {note.key: note for note in imported.notes if not (same and note.cross)}
    return [_read_line(key, paths, document, notes.get(key), names) for key, paths in sorted(read.items())]


def kept_lines(imported) -> list[Line]:
    """Import: every key with no recipe counterpart is kept under ``backends.<name>``."""
    notes = {note.key: note for note in imported.notes}
    return [Line("kept", key, value, _why(notes.get(key), f"no recipe key; under backends.{imported.dialect}"))
            for key, value in sorted(imported.passthrough.items())]


def passthrough_lines(imported, target: str, target_config) -> list[Line]:
    """Convert: a key kept under ``backends.<source>`` is kept when the target's config sets the same value (or
    the target is the source backend), else lost."""
    notes = {note.key: note for note in imported.notes}
    out = []
    for key, value in sorted(imported.passthrough.items()):
        if imported.dialect == target:
            out.append(Line("kept", key, value, f"under backends.{target}"))
        elif isinstance(target_config, dict) and target_config.get(key, object()) == value:
            out.append(Line("kept", key, value, f"the {target} config sets the same value"))
        else:
            out.append(Line("lost", key, value, _why(notes.get(key), f"{imported.dialect}-only; not carried")))
    return out


def _why(note, default: str) -> str:
    return f"{default}: {note.reason}" if note is not None else default


def _read_line(key: str, paths: list[str], document, note, names) -> Line:
    value = _value(document.data, key)
    targets = sorted({t for t in (names(p) for p in paths) if t}) if names else []
    status = "approximated" if note is not None else "carried"
    return Line(status, key, value, note.reason if note is not None else "", ", ".join(sorted(paths)),
                ", ".join(targets))


def note_lines(imported, carried: set[str], lossy_status: str) -> list[Line]:
    """Lines for the importer's notes not already said by a read or kept key's line: a note on a key that
    changes the training is ``lossy_status`` (lost when converting with --lossy, kept when importing), any
    other is lost."""
    out = []
    for note in imported.notes:
        if note.key in carried or note.key in imported.passthrough:
            continue
        if note.cross:  # what another backend does differently with the key's (absent) value
            if lossy_status != "kept":
                out.append(Line("approximated", note.key, note.value, note.reason))
            continue
        out.append(Line(lossy_status if note.changes_training else "lost", note.key, note.value, note.reason))
    return out


def _value(data, key: str):
    path = _path(key)
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data if not isinstance(data, (dict, list)) or len(json.dumps(data, default=str)) < 120 else "..."


def _path(key: str) -> tuple:
    out: list = []
    for part in key.replace("]", "").split("."):
        name, *indexes = part.split("[")
        out += [name, *(int(i) for i in indexes)]
    return tuple(out)


def approximate(lines: list[Line], recipe_key: str, key: str, detail: str) -> list[Line]:
    """``lines`` with the line that carried ``recipe_key`` marked approximated (``detail`` says how), or with a
    new approximated line at ``key`` when no line carried it."""
    from dataclasses import replace

    for i, line in enumerate(lines):
        if recipe_key in line.recipe_key.split(", "):
            detail = f"{line.detail}; {detail}" if line.detail else detail
            return [*lines[:i], replace(line, status="approximated", detail=detail), *lines[i + 1:]]
    return [*lines, Line("approximated", key, None, detail, recipe_key)]


def merge(lines: list[Line], more: list[Line]) -> list[Line]:
    """``lines`` plus ``more``, where a key of ``more`` that a line of ``lines`` also read (a value both read into
    the recipe and kept as written, such as Axolotl's ``bf16: auto``) adds to that line instead: kept, it is
    carried and also kept; lost, it is approximated (the value as written is not carried)."""
    from dataclasses import replace

    index = {line.key: i for i, line in enumerate(lines)}
    out = list(lines)
    for line in more:
        if line.key not in index:
            out.append(line)
            continue
        i = index[line.key]
        if line.status == "lost":
            out[i] = replace(out[i], status="approximated", detail=_join(out[i].detail, f"as written: {line.detail}"))
        else:
            out[i] = replace(out[i], detail=_join(out[i].detail, "also kept as written"))
    return out


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second
