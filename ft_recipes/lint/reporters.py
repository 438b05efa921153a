"""Output formats of `ftr lint`: one class per format, registered by name (the CLI's --format choices)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ft_recipes import __version__
from ft_recipes.core.findings import Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVELS = {"error": "error", "warning": "warning", "info": "note"}
GITHUB_LEVELS = {"error": "error", "warning": "warning", "info": "notice"}


def relative(file: str) -> str:
    """``file`` relative to the working directory when inside it, with forward slashes."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_posix()
    return Path(os.path.normpath(path)).as_posix()


def summary(findings: list[Finding], files) -> str:
    """The closing line. ``files``: the linted files (or their number); a finding in a file they extend (a
    preset) is counted apart, never as one of the linted files."""
    count = files if isinstance(files, int) else len(files)
    noun = f"file{'s' if count != 1 else ''}"
    if not findings:
        return f"All checks passed ({count} {noun})."
    counts = [f"{n} {sev}{'s' if n != 1 else ''}" for sev in ("error", "warning", "info")
              if (n := sum(f.severity == sev for f in findings))]
    where = {os.path.realpath(f.file) for f in findings}
    linted = where if isinstance(files, int) else where & {os.path.realpath(p) for p in files}
    extended = len(where - linted)
    they = "it extends" if count == 1 else "they extend"
    tail = f" linted and {extended} file{'s' if extended != 1 else ''} {they}" if extended else ""
    return f"Found {len(findings)} problem{'s' if len(findings) != 1 else ''} ({', '.join(counts)}) " \
           f"in {len(linted)} of {count} {noun}{tail}."


class Reporter:
    """Turns sorted findings into the text written to stdout."""

    name = ""

    def render(self, findings: list[Finding], files: int) -> str:
        raise NotImplementedError


class TextReporter(Reporter):
    """`file:line:col: CODE [severity] message (hint)`, then a summary line."""

    name = "text"

    def render(self, findings, files):
        lines = [f.text() for f in findings]
        return "\n".join(lines + [summary(findings, files)])


class JsonReporter(Reporter):
    """A JSON list of findings."""

    name = "json"

    def render(self, findings, files):
        from ft_recipes.lint.registry import all_rules

        rules = all_rules()
        rows = [{"file": relative(f.file), "line": f.line, "col": f.col, "code": f.code,
                 "name": rules[f.code].name if f.code in rules else "", "severity": f.severity,
                 "message": f.message, "hint": f.hint, "key": f.key, "recipe_key": f.recipe_key or f.key}
                for f in findings]
        return json.dumps(rows, indent=2, ensure_ascii=False)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubReporter(Reporter):
    """GitHub Actions workflow commands: annotations on the pull request's changed lines."""

    name = "github"

    def render(self, findings, files):
        lines = []
        for f in findings:
            props = f"file={_escape_property(relative(f.file))},line={f.line},col={f.col},title={f.code}"
            message = f.message + (f" ({f.hint})" if f.hint else "")
            lines.append(f"::{GITHUB_LEVELS[f.severity]} {props}::{_escape_data(message)}")
        return "\n".join(lines)


class SarifReporter(Reporter):
    """SARIF 2.1.0 for GitHub code scanning (upload with github/codeql-action/upload-sarif)."""

    name = "sarif"

    def render(self, findings, files):
        from ft_recipes.lint.registry import all_rules

        rules = all_rules()
        index = {code: i for i, code in enumerate(rules)}
        run = {"tool": {"driver": {"name": "ftr", "version": __version__, "semanticVersion": __version__,
                                   "informationUri": "https://github.com/ft-recipes/ft-recipes",
                                   "rules": [sarif_rule(cls) for cls in rules.values()]}},
               "columnKind": "unicodeCodePoints",
               "results": [self._result(f, index) for f in findings]}
        return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False)

    @staticmethod
    def _result(f: Finding, index: dict) -> dict:
        text = f.message + (f" ({f.hint})" if f.hint else "")
        result = {"ruleId": f.code, "level": SARIF_LEVELS[f.severity], "message": {"text": text},
                  "locations": [{"physicalLocation": {
                      "artifactLocation": {"uri": relative(f.file)},
                      "region": {"startLine": max(f.line, 1), "startColumn": max(f.col, 1)}}}]}
        if f.code in index:
            result["ruleIndex"] = index[f.code]
        if f.key:
            result["properties"] = {"key": f.key, "recipe_key": f.recipe_key or f.key}
        return result


def sarif_rule(cls) -> dict:
    """SARIF reportingDescriptor for one rule, from the registry."""
    from ft_recipes.lint.docs import markdown

    return {"id": cls.code, "name": cls.name, "shortDescription": {"text": cls.summary},
            "fullDescription": {"text": cls.what or cls.summary}, "helpUri": cls.url(),
            "help": {"text": cls.fix or cls.summary, "markdown": markdown(cls)},
            "defaultConfiguration": {"level": SARIF_LEVELS[cls.severity]},
            "properties": {"tags": [cls.status], "precision": "high"}}


REPORTERS: dict[str, type[Reporter]] = {cls.name: cls for cls in (TextReporter, JsonReporter, SarifReporter,
                                                                  GithubReporter)}
