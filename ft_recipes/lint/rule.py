"""The rule base: every rule is one class declaring its code, name, default severity, summary and
documentation in one place. ``ftr rules``, the SARIF rule metadata and docs/rules/*.md are generated from it.

A rule reads its numbers, messages and hints from the rule pack (validators/default.yaml merged with the
team's packs) and reports positions only through ``recipe.where(path)``, so it works the same on a recipe,
a preset it extends, and a native config imported into a recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.recipe.load import dotted
from ft_recipes.recipe.model import Recipe
from ft_recipes.recipe.presets import is_builtin

DOCS_URL = "https://github.com/ft-recipes/ft-recipes/blob/main/docs/rules/{code}.md"
STATUSES = ("stable", "planned", "run")  # run: reported by `ftr compile` / `ftr run`
SOURCES = ("lint", "schema", "loader", "catalogue")


class Rule:
    """Base class. Subclasses set the class attributes and implement ``check``."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    severity: ClassVar[str] = "warning"
    summary: ClassVar[str] = ""
    status: ClassVar[str] = "stable"   # stable | planned (not yet checked) | run (checked by `ftr run`)
    reported_by: ClassVar[str] = "lint"  # lint | schema (validate.py) | loader (load.py / resolve.py) | catalogue
    what: ClassVar[str] = ""
    why: ClassVar[str] = ""
    bad: ClassVar[str] = ""
    good: ClassVar[str] = ""
    fix: ClassVar[str] = ""
    # What the rule reads from its rule-pack section: the message kinds it reports and its other settings. A
    # report of an undeclared kind is a bug in the rule; a pack naming an unknown kind or option is refused.
    messages: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[str, ...]] = ()

    def check(self, ctx: "Context") -> None:
        """Report findings through ``ctx.report``. Rules that cannot decide stay silent."""

    @classmethod
    def url(cls) -> str:
        return DOCS_URL.format(code=cls.code)

    @classmethod
    def checked_here(cls) -> bool:
        return cls.status == "stable" and cls.reported_by == "lint"


class Num(float):
    """A float that formats ``{x:g}`` as ``1e-5`` and ``3e-4`` rather than ``1e-05`` and ``0.0003``."""

    def __format__(self, spec: str) -> str:
        value = float(self)
        text = format(value, ".3e" if spec == "g" and 0 < abs(value) < 1e-3 else spec)
        text = re.sub(r"\.?0+e", "e", text) if "e" in text and "." in text else text
        return re.sub(r"e([+-])0*(\d)", lambda m: f"e{'-' if m.group(1) == '-' else ''}{m.group(2)}", text)


class UndeclaredMessage(RuntimeError):
    """A rule reported a message kind it does not declare: a bug in ftr."""


RULES: dict[str, type[Rule]] = {}


def rule(cls: type[Rule]) -> type[Rule]:
    """Class decorator: register a rule under its code."""
    if cls.code in RULES:
        raise ValueError(f"rule {cls.code} registered twice")
    if cls.status not in STATUSES or cls.reported_by not in SOURCES:
        raise ValueError(f"rule {cls.code}: status {cls.status!r} / reported_by {cls.reported_by!r} is not one of "
                         f"{STATUSES} / {SOURCES}")
    RULES[cls.code] = cls
    return cls


@dataclass
class Context:
    """What a rule sees: the recipe, its own section of the rule pack, and a way to report."""

    recipe: Recipe
    rule: type[Rule]
    pack: dict
    findings: list[Finding] = field(default_factory=list)
    dialect: str = "recipe"  # "recipe", or the backend whose native file was imported
    native: dict | None = None  # the native mapping as written (native files only)
    version: str | None = None  # the backend version the native file is checked against
    extends_at: tuple | None = None  # (file, line, col) of the recipe's `extends`, where a preset's values enter

    @property
    def is_native(self) -> bool:
        return self.dialect != "recipe"

    def __getitem__(self, key: str) -> Any:
        return self.pack[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.pack.get(key, default)

    def report(self, path: tuple, kind: str, /, *, causes: tuple = (), **fields: Any) -> None:
        """A finding at the recipe key ``path`` using the pack's message ``kind``, formatted with ``fields``.
        ``causes``: the other keys whose values make ``path``'s value a problem (see ``where``)."""
        if kind not in self.rule.messages:
            raise UndeclaredMessage(f"rule {self.rule.code} reported message kind {kind!r}, which it does not "
                                    f"declare (messages = {self.rule.messages!r})")
        spec = self.pack.get("messages", {}).get(kind, {})
        if self.is_native:  # a message's ``native:`` overrides (text, hint, severity) for a native file
            spec = {**spec, **spec.get("native", {})}
        values = {**{k: v for k, v in self.pack.items() if not isinstance(v, (dict, list))}, **fields}
        values = {k: Num(v) if isinstance(v, float) else v for k, v in values.items()}
        try:
            text = spec.get("text", kind).format(**values)
            hint = spec.get("hint", "").format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            raise FtrError(f"rule pack: message {self.rule.code}.{kind} cannot be formatted ({exc!r}); "
                           f"fields: {', '.join(sorted(values))}", exit_code=2) from None
        severity = spec.get("severity") or self.pack.get("severity") or self.rule.severity
        file, line, col = self.recipe.where(path)
        if is_builtin(file):
            hint = "; ".join(filter(None, (hint, f"ftr's preset {Path(file).name} sets it on line {line}")))
            file, line, col = self.where(causes) or (file, line, col)
        self.findings.append(Finding(file, line, col, self.rule.code, severity, text, hint, dotted(path)))

    def where(self, causes: tuple) -> tuple | None:
        """For a value of one of ftr's own presets: the first of ``causes`` the recipe wrote, else the recipe's
        `extends` line (where the preset's value enters), so that the finding is reported in the user's file."""
        for path in causes:
            file, line, col = self.recipe.where(path)
            if file == self.recipe.source_file and tuple(path) in self.recipe.provenance:
                return file, line, col
        return self.extends_at

