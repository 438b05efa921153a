"""``ftr tokens``: how a backend renders and tokenizes the first rows of a recipe's data, with its own
preprocessing in its own environment, and a row-by-row comparison of two backends."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import backends
from .emit import write_outputs
from .findings import FtrError
from .pipeline import Loaded
from .run import backend_python

PREFIX = "FTR-TOKENS "
IGNORE = -100


@dataclass(frozen=True)
class Row:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    tokens: tuple[str, ...]
    part: str = ""  # preference pairs: "chosen" or "rejected" (prompt + that response)

    @property
    def trained(self) -> tuple[bool, ...]:
        return tuple(label != IGNORE for label in self.labels)


def tokenize(loaded: Loaded, backend: str, n: int, template: str | None = None) -> list[Row]:
    """The first ``n`` rows as ``backend`` tokenizes them (under chat template ``template`` when given)."""
    recipe = loaded.recipe
    if template is not None:
        recipe = replace(recipe, model=replace(recipe.model, template=template))
    helper = Path(backends.get(backend).__file__).with_name("tokens_helper.py")
    if not helper.is_file():
        raise FtrError(f"ftr tokens is not available for the {backend} backend", exit_code=2)
    python = backend_python(backend)
    with tempfile.TemporaryDirectory(prefix="ftr-tokens-") as tmp:
        emitted = backends.get(backend).emit(recipe, Path(tmp))
        write_outputs(emitted, recipe, Path(tmp), force=True)
        proc = subprocess.run([str(python), str(helper), str(Path(tmp) / emitted.main), str(n)],
                              capture_output=True, text=True, env=_env(backend))
    rows = [json.loads(line[len(PREFIX):]) for line in proc.stdout.splitlines() if line.startswith(PREFIX)]
    if proc.returncode != 0 or not rows:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise FtrError(f"{backend} could not tokenize the data:\n{tail}", exit_code=1)
    return [Row(tuple(r["input_ids"]), tuple(r["labels"]), tuple(r["tokens"]), r.get("part", "")) for r in rows]


def _env(backend: str) -> dict:
    import os

    return {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "DISABLE_VERSION_CHECK": "1"}


def render(row: Row, color: bool) -> str:
    """Tokens joined as text; trained tokens in green (or inside [[ ]] without colour)."""
    out, inside = [], False
    for token, trained in zip(row.tokens, row.trained):
        text = token.replace("\u0120", " ").replace("\u010a", "\n")
        if trained != inside:
            out.append(("\x1b[32m" if trained else "\x1b[0m") if color else ("[[" if trained else "]]"))
            inside = trained
        out.append(text)
    if inside:
        out.append("\x1b[0m" if color else "]]")
    return "".join(out)


def diff(a: list[Row], b: list[Row]) -> list[str]:
    """Human-readable differences, one per differing row; empty when identical."""
    problems = []
    if len(a) != len(b):
        problems.append(f"row count differs: {len(a)} vs {len(b)}")
    for k, (x, y) in enumerate(zip(a, b)):
        i = _label(a, k)
        if x.input_ids != y.input_ids:
            pos = next((k for k, (p, q) in enumerate(zip(x.input_ids, y.input_ids)) if p != q),
                       min(len(x.input_ids), len(y.input_ids)))
            problems.append(f"row {i}: token ids differ at position {pos} "
                            f"({_around(x, pos)} vs {_around(y, pos)})")
        elif x.trained != y.trained:
            pos = next(k for k, (p, q) in enumerate(zip(x.trained, y.trained)) if p != q)
            problems.append(f"row {i}: loss mask differs at position {pos} (token {x.tokens[pos]!r}: "
                            f"{'trained' if x.trained[pos] else 'masked'} vs {'trained' if y.trained[pos] else 'masked'})")
    return problems


def _label(rows: list[Row], k: int) -> str:
    """``3`` for the fourth row; ``1 (rejected)`` for one side of the second preference pair."""
    if not rows[k].part:
        return str(k)
    return f"{k // 2} ({rows[k].part})"


def _around(row: Row, pos: int) -> str:
    return repr("".join(row.tokens[max(pos - 2, 0): pos + 3]))


def identity_table(loaded: Loaded, pair: tuple[str, str], templates: list[str], n: int) -> list[tuple[str, str]]:
    """(template, verdict) per template: identical ids and labels, the first difference, or why it failed."""
    table = []
    for name in templates:
        try:
            problems = diff(*(tokenize(loaded, backend, n, name) for backend in pair))
        except FtrError as exc:
            table.append((name, "error: " + str(exc).splitlines()[-1][:120]))
            continue
        table.append((name, f"{len(problems)} row(s) differ; first: {problems[0]}" if problems else "identical"))
    return table
