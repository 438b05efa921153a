"""``python -m ft_recipes.cli.schema_gen [--check]``: write (or check) schemas/recipe.schema.json, generated from the
field declarations of recipe.py (fields.recipe_schema) and the registered backend names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ft_recipes.backends import NAMES
from ft_recipes.recipe.fields import recipe_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "recipe.schema.json"


def schema_text() -> str:
    return json.dumps(recipe_schema(NAMES), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = schema_text()
    if "--check" in argv:
        if SCHEMA_FILE.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_FILE} is not current: run python -m ft_recipes.cli.schema_gen", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
