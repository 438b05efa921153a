"""Findings (lint results and validation errors) and the errors that carry them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at one place: ``file:line:col: CODE [severity] message (hint)``."""

    file: str
    line: int
    col: int
    code: str
    severity: str = "error"
    message: str = ""
    hint: str = ""
    key: str = field(default="", compare=False)
    recipe_key: str = field(default="", compare=False)  # on a native file: the recipe path of ``key``

    def with_severity(self, severity: str) -> "Finding":
        return replace(self, severity=severity)

    def text(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}:{self.col}: {self.code} [{self.severity}] {self.message}{hint}"


class FtrError(Exception):
    """A failure that ends a command with a clear message and an exit code.

    exit_code 1: the input is invalid (findings explain why); 2: usage or I/O problem.
    """

    def __init__(self, message: str, findings: list[Finding] | None = None, exit_code: int = 1):
        super().__init__(message)
        self.findings = sorted(findings or [])
        self.exit_code = exit_code

    def render(self) -> str:
        if self.findings:
            return "\n".join(f.text() for f in self.findings)
        return f"error: {str(self).removeprefix('error: ')}"

    def reason(self) -> str:
        """The problem to quote inside another message: file and line, no "error:" of its own."""
        if self.findings:
            return "; ".join(f"{f.file}:{f.line}:{f.col}: {f.message}" for f in self.findings)
        return str(self).removeprefix("error: ")


class UsageError(FtrError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=2)
