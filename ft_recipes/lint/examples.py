"""Every rule's documented ``bad`` example must report the rule and its ``good`` example must not: both are linted
whenever the rule docs are generated (``python -m ft_recipes.lint.docs``) and by the tests.

An example is a recipe fragment, merged over a small base recipe (``extends``), or a native file when its first
line names one (``# llamafactory.yaml``). A leading comment ``# PATH: CONTENT`` writes CONTENT to PATH first (a
data file the example reads); a rule's ``example_setup(directory)`` prepares what a comment cannot (a model's
tokenizer files).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

BASE = ("ftr: 1\nmodel: {base: Qwen/Qwen2.5-0.5B-Instruct}\n"
        "data:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n")
ROWS = [{"instruction": f"say {w}", "input": "", "output": w} for w in ("tea", "rivers", "stars")]
DATA_FILES = ("data/train.jsonl", "data/chat.jsonl", "data.jsonl")
NATIVE_HEAD = re.compile(r"^# ([\w.-]+\.ya?ml)\s*$")
FILE_COMMENT = re.compile(r"^# ([\w./-]+\.\w+): (.*)$")


def codes_reported(rule, text: str) -> set[str]:
    """The codes ``ftr lint`` reports on the example ``text`` of ``rule``, linted in a fresh folder."""
    from ft_recipes.lint import Options, lint_file

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rows = "".join(json.dumps(row) + "\n" for row in ROWS)
        for name in DATA_FILES:
            _write(directory / name, rows)
        lines = text.splitlines()
        for line in lines:
            match = FILE_COMMENT.match(line)
            if match:
                _write(directory / match.group(1), match.group(2) + "\n")
        setup = getattr(rule, "example_setup", None)
        if setup:
            setup(directory)
        native = NATIVE_HEAD.match(lines[0]) if lines else None
        if native:
            path = directory / native.group(1)
            _write(path, text)
        else:
            _write(directory / "_base.yaml", BASE)
            path = directory / "recipe.yaml"
            _write(path, "extends: [_base.yaml]\n" + text)
        return {finding.code for finding in lint_file(path, Options())}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def problems(rule) -> list[str]:
    """What is wrong with the rule's examples ([] when its bad example reports it and its good one does not)."""
    out = []
    if rule.bad and rule.code not in codes_reported(rule, rule.bad):
        out.append(f"{rule.code}: its bad example does not report {rule.code}")
    if rule.good and rule.code in codes_reported(rule, rule.good):
        out.append(f"{rule.code}: its good example reports {rule.code}")
    return out


def checked_rules() -> list:
    from ft_recipes.lint.registry import all_rules

    return [cls for cls in all_rules().values() if cls.checked_here() and (cls.bad or cls.good)]
