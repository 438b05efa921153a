"""Generated backend docs: the key tables side by side (docs/backends/keys.md) and the table of known
approximations (docs/backends/approximations.md). ``python -m ft_recipes.backends.docs`` rewrites them;
a test fails when they are stale."""

from __future__ import annotations

import sys
from pathlib import Path

from . import all_backends

DOCS = Path(__file__).resolve().parents[2] / "docs" / "backends"


def keys_page() -> str:
    backends = all_backends()
    paths: list[str] = []
    for backend in backends:
        paths += [row.path for row in backend.keys if row.path not in paths]
    head = "| recipe field | " + " | ".join(f"{b.title} {b.version}" for b in backends) + " |"
    lines = ["# Recipe fields and the native keys they become", "",
             "Generated from each backend's key table (`ft_recipes/backends/<name>/keys.py`) by "
             "`python -m ft_recipes.backends.docs`; do not edit. `-` means the backend cannot express the field: "
             "`ftr compile` refuses it with FTR005 and names the backends that can. *structural* keys are written "
             "by the emitter's code (datasets, templates, cadences, precision), not by a plain rename.", "",
             head, "|" + "---|" * (len(backends) + 1)]
    for path in paths:
        cells = []
        for backend in backends:
            row = backend.keys.by_path.get(path)
            if row is None:
                cells.append("-")
            else:
                cells.append(f"`{row.native}`" + (" *structural*" if row.structural else "")
                             + (f" (only: {_cell(row.refusal)})" if row.accepts else ""))
        lines.append(f"| `{path}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def approximations_page() -> str:
    lines = ["# Known approximations", "",
             "Where a backend carries a recipe value only approximately, `ftr compile` prints the note below "
             "whenever it applies, and the effective-value oracle (`tests/backends/test_oracle.py`) accepts a "
             "difference in the listed fields only then. Every other difference between a recipe and what the "
             "backend's own parser holds fails the oracle. Generated from each backend's `APPROXIMATIONS` by "
             "`python -m ft_recipes.backends.docs`; do not edit.", "",
             "| backend | recipe field | note | fields whose effective value may differ |", "|---|---|---|---|"]
    for backend in all_backends():
        for item in backend.approximations:
            excused = ", ".join(f"`{f}`" for f in item.excused) or "none (the rows or rendering differ)"
            lines.append(f"| {backend.title} | `{item.path}` | {_cell(item.message)} | {excused} |")
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
