"""Generated backend docs: the key tables side by side (docs/backends/keys.md) and the table of known
approximations (docs/backends/approximations.md). ``python -m ft_recipes.backends.docs`` rewrites them;
a test fails when they are stale."""

from __future__ import annotations

import sys
from pathlib import Path

from ft_recipes.backends import all_backends

DOCS = Path(__file__).resolve().parents[2] / "docs" / "backends"


def field_help(path: str) -> str:
    """The help of the recipe.py dataclass field behind a YAML path (the one place a field is documented)."""
    import dataclasses
    import typing

    from ft_recipes.backends.keys import TYPED
    from ft_recipes.recipe import model as r

    cls = r.Recipe
    parts = TYPED.get(path, path).split(".")
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(cls)
        match = [f for f in dataclasses.fields(cls) if f.name == part]
        if not match:
            return ""
        if i == len(parts) - 1:
            return match[0].metadata.get("help", "")
        kind = hints[part]
        args = [a for a in typing.get_args(kind) if dataclasses.is_dataclass(a)]
        cls = args[0] if args else kind
        if not dataclasses.is_dataclass(cls):
            return ""
    return ""


def keys_page() -> str:
    backends = all_backends()
    paths: list[str] = []
    for backend in backends:
        paths += [row.path for row in backend.keys if row.path not in paths]
    head = "| recipe field | meaning | " + " | ".join(f"{b.title} {b.version}" for b in backends) + " |"
    lines = ["# Recipe fields and the native keys they become", "",
             "Generated from each backend's key table (`ft_recipes/backends/<name>/keys.py`) by "
             "`python -m ft_recipes.backends.docs`; do not edit. `-` means the backend cannot express the field: "
             "`ftr compile` refuses it with FTR005 and names the backends that can. *structural* keys are written "
             "by the emitter's code (datasets, templates, cadences, precision), not by a plain rename.", "",
             head, "|" + "---|" * (len(backends) + 2)]
    for path in paths:
        cells = []
        for backend in backends:
            row = backend.keys.by_path.get(path)
            if row is None:
                cells.append("-")
            else:
                cells.append(f"`{row.native}`" + (" *structural*" if row.structural else "")
                             + (f" (only: {_cell(row.refusal)})" if row.accepts else ""))
        lines.append(f"| `{path}` | {_cell(field_help(path))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def approximations_page() -> str:
    lines = ["# Known approximations", "",
             "Where a backend carries a recipe value only approximately, `ftr compile` prints the note below "
             "whenever it applies (a difference *between* backends, marked \"between backends\", is printed by "
             "`ftr convert` and `ftr tokens --diff` instead), and the effective-value oracle "
             "(`tests/backends/test_oracle.py`) accepts a difference in the listed fields only then. Every other "
             "difference between a recipe and what the backend's own parser holds fails the oracle. Generated from "
             "each backend's `APPROXIMATIONS` by `python -m ft_recipes.backends.docs`; do not edit.", "",
             "| backend | recipe field | note | fields whose effective value may differ |", "|---|---|---|---|"]
    for backend in all_backends():
        for item in backend.approximations:
            excused = ", ".join(f"`{f}`" for f in item.excused) or "none (the rows or rendering differ)"
            message = f"{_cell(item.message)}{' (between backends)' if item.cross else ''}"
            lines.append(f"| {backend.title} | `{item.path}` | {message} | {excused} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


PAGES = {"keys.md": keys_page, "approximations.md": approximations_page}


def main() -> int:
    for name, page in PAGES.items():
        (DOCS / name).write_text(page(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
