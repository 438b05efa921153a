"""The backend contract: the types a backend's parts exchange with the core, and one ``Protocol`` per part.

A backend declares each part it has on its ``Backend`` object (``backends/base.py``) by module path; the
conformance test (tests/unit/backends/test_backend_interface.py) imports every declared part of every registered
backend and checks it against the protocol here, so a part that is missing a function fails a test rather than a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

# --- the types --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnvSpec:
    """A backend version's own virtual environment, built from a pinned lock file (``ftr backend install``)."""

    name: str  # the backend's registered name
    version: str  # backend version, e.g. "0.9.5"
    python: str  # interpreter version, e.g. "3.11"
    lock: Path  # fully pinned requirements file (pip freeze of a known-good env), installed with --no-deps
    import_name: str  # module that must import after install
    cli: str  # the backend's command
    # Files to delete after install, as globs relative to site-packages. Used where a PyPI wheel carries a
    # native extension that cannot load here and the package works without it (see the backend's lock notes).
    prune: tuple[str, ...] = field(default=())

    @property
    def env_var(self) -> str:
        return f"FTR_{re.sub(r'[^A-Za-z0-9]', '_', self.name).upper()}_PYTHON"


@dataclass(frozen=True)
class LaunchOptions:
    gpus: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    deepspeed: str | None = None
    fsdp: bool = False
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Launch:
    """What a backend launch is: argv plus environment changes, and the folder it produces (a merge)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    produces: Path | None = None


# --- the parts --------------------------------------------------------------------------------------------

@runtime_checkable
class Emitter(Protocol):
    """``Backend.emitter``: the recipe -> the backend's native files (``emit.Emitted``)."""

    def emit(self, recipe: Any, out_dir: Path, backend: Any = None) -> Any: ...


@runtime_checkable
class Importer(Protocol):
    """``Backend.importer``: a native config -> recipe values, through a ``native.Mapper``."""

    def to_recipe(self, m: Any, base: Path) -> None: ...


@runtime_checkable
class Launcher(Protocol):
    """``Backend.launcher``: how the backend's own environment trains, resumes and merges."""

    def launch(self, python: Path, config: Path, opts: LaunchOptions) -> Launch: ...

    def run_overrides(self, opts: LaunchOptions, checkpoint: Path | None) -> dict: ...

    def merge(self, python: Path, run_dir: Path, cfg: dict, out: Path) -> Launch: ...


@runtime_checkable
class Oracle(Protocol):
    """``Backend.oracle``: the effective values the backend's own parser should hold for the structural parts."""

    def structural(self, recipe: Any) -> Iterable[tuple[str, str, Any]]: ...


@runtime_checkable
class Templates(Protocol):
    """``Backend.templates``: the chat template a finished run's tokenizer should carry (None: the backend saves
    it itself). ``training_text`` (the text FTR305 compares) is optional."""

    def served_template(self, name: str | None) -> str | None: ...


@runtime_checkable
class Rows(Protocol):
    """``Backend.rows``: how the backend reads conversation rows where it drops some (role tags, turn order), for
    ftr's data checks (``datacheck``) and its emitter."""

    def declared_tags(self, ds: Any) -> dict: ...

    def drop_reason(self, turns: list, tags: dict) -> str | None: ...

    def standard_tags(self, tags: dict) -> dict: ...

    def standard_turns(self, turns: list, tags: dict) -> list: ...

    def spellings(self, turns: list, tags: dict) -> tuple: ...

    def file_tags(self, ds: Any, counts: Any) -> dict: ...

    def skipped(self, ds: Any, scanned: Any, drops: dict, native: bool) -> dict: ...


PARTS = {"emitter": Emitter, "importer": Importer, "launcher": Launcher, "oracle": Oracle, "templates": Templates,
         "rows": Rows}
