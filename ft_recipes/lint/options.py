"""Lint options: command line over [tool.ftr.lint] in pyproject.toml over the defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from ft_recipes.core.findings import UsageError

CODE_PREFIX = re.compile(r"^FTR[0-9]{0,3}$")


@dataclass(frozen=True)
class Options:
    select: tuple[str, ...] = ("FTR",)
    ignore: tuple[str, ...] = ()
    strict: bool = False
    rule_packs: tuple[str, ...] = ()
    noqa: bool = True  # honour `# ftr: noqa` comments
    versions: tuple[tuple[str, str], ...] = ()  # backend -> key-catalogue version for native files

    def version_of(self, backend: str) -> str | None:
        return dict(self.versions).get(backend)

    def selects(self, code: str) -> bool:
        """Whether ``code`` is selected: the longest matching prefix of select/ignore decides (ruff's way)."""
        chosen = max((p for p in self.select if code.startswith(p)), key=len, default=None)
        dropped = max((p for p in self.ignore if code.startswith(p)), key=len, default=None)
        if chosen is None:
            return False
        return dropped is None or len(chosen) > len(dropped)


def codes(values, where: str) -> tuple[str, ...]:
    """Normalise a list (or comma-separated strings) of codes or prefixes; UsageError on a bad one."""
    out: list[str] = []
    if isinstance(values, str):
        values = [values]
    if values is not None and not (isinstance(values, (list, tuple)) and all(isinstance(v, str) for v in values)):
        raise UsageError(f"{where}: expected a list of rule codes or prefixes such as [\"FTR1\"], got {values!r}")
    for value in values or ():
        for part in str(value).split(","):
            part = part.strip().upper()
            if not part:
                continue
            if not CODE_PREFIX.match(part):
                raise UsageError(f"{where}: {part!r} is not a rule code or prefix (e.g. FTR101, FTR1, FTR)")
            out.append(part)
    return tuple(out)


def from_project(start: Path | None = None) -> Options:
    """Options from the nearest pyproject.toml's [tool.ftr.lint] table."""
    from ft_recipes.core.project import find_pyproject, project_settings

    table = project_settings(start).get("lint", {})
    where = f"{find_pyproject(start)} [tool.ftr.lint]"
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table")
    unknown = sorted(set(table) - {"select", "ignore", "strict", "rule-packs", "backend-versions"})
    if unknown:
        raise UsageError(f"{where}: unknown setting(s) {', '.join(unknown)}; "
                         "expected select, ignore, strict, rule-packs, backend-versions")
    strict = table.get("strict", False)
    if not isinstance(strict, bool):
        raise UsageError(f"{where}: strict must be true or false, got {strict!r}")
    pinned = table.get("backend-versions") or {}
    if not isinstance(pinned, dict) or not all(isinstance(v, str) for v in pinned.values()):
        raise UsageError(f"{where}: backend-versions must be a table such as {{axolotl = \"0.21.0\"}}, "
                         f"got {pinned!r}")
    return Options(select=codes(table.get("select"), f"{where} select") or ("FTR",),
                   ignore=codes(table.get("ignore"), f"{where} ignore"), strict=strict,
                   rule_packs=tuple(table.get("rule-packs", ())),
                   versions=versions([f"{k}={v}" for k, v in pinned.items()], where))


def versions(values, where: str) -> tuple[tuple[str, str], ...]:
    """``axolotl=0.21.0`` pairs -> ((backend, version), ...); the catalogue file must exist."""
    from ft_recipes.core.paths import data_dir

    out = []
    for value in values or ():
        backend, _, version = str(value).partition("=")
        if not (data_dir("schemas") / "backends" / f"{backend}-{version}.json").is_file():
            known = sorted(p.stem for p in (data_dir("schemas") / "backends").glob("*.json"))
            raise UsageError(f"{where}: no key catalogue for {value!r}; available: {', '.join(known)}")
        out.append((backend, version))
    return tuple(out)


def merge_cli(base: Options, select=(), ignore=(), extend_select=(), strict: bool = False,
              rule_packs=(), no_noqa: bool = False) -> Options:
    """Command-line values over project values: --select replaces, --ignore and --extend-select add."""
    chosen = codes(select, "--select") or base.select
    return replace(base, select=chosen + codes(extend_select, "--extend-select"),
                   ignore=base.ignore + codes(ignore, "--ignore"), strict=base.strict or strict,
                   rule_packs=base.rule_packs + tuple(str(Path(p).resolve()) for p in rule_packs),
                   noqa=base.noqa and not no_noqa)

