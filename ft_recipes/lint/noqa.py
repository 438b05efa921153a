"""`# ftr: noqa` (every rule) and `# ftr: noqa: FTR102, FTR1` (those codes or prefixes) on a line."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ft_recipes.core.findings import Finding

NOQA = re.compile(r"#\s*ftr:\s*noqa(?P<rest>[^#]*)", re.IGNORECASE)
CODE = re.compile(r"FTR[0-9]{0,3}", re.IGNORECASE)


def parse(line: str) -> tuple[str, ...] | None:
    """None: no noqa comment; (): every code; else the codes and prefixes listed."""
    match = NOQA.search(line)
    if match is None:
        return None
    rest = match.group("rest").strip().lstrip(":").strip()
    return tuple(c.upper() for c in CODE.findall(rest)) if rest.upper().startswith("FTR") else ()


@lru_cache(maxsize=256)
def _file_lines(file: str, stamp: float) -> tuple[str, ...]:
    try:
        return tuple(Path(file).read_text(encoding="utf-8-sig").splitlines())
    except (OSError, UnicodeDecodeError):
        return ()


def file_lines(file: str) -> tuple[str, ...]:
    try:
        stamp = Path(file).stat().st_mtime_ns
    except OSError:
        return ()
    return _file_lines(file, stamp)


def suppressed(finding: Finding, lines: dict[str, tuple[str, ...]] | None = None) -> bool:
    """Whether a noqa comment on the finding's line covers its code."""
    text = (lines or {}).get(finding.file) or file_lines(finding.file)
    if not 0 < finding.line <= len(text):
        return False
    listed = parse(text[finding.line - 1])
    if listed is None:
        return False
    return not listed or any(finding.code.startswith(code) for code in listed)
