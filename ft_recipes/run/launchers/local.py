"""This machine: ``ftr run`` starts the backend itself and follows it to the end (the default launcher).
Nothing is written or submitted beforehand; the run's manifest says how it went."""

from __future__ import annotations

from ft_recipes.core.findings import UsageError
from ft_recipes.run.launchers.base import Job, State

FILE = None


def script(job: Job) -> str:
    raise UsageError("a local run has no job script; `ftr run --dry-run` prints its command")


def ready(hardware) -> None:
    """A local run checks its machine itself (``run.fit_machine``)."""


def submit(job: Job, path) -> str:
    raise UsageError("a local run is not submitted; `ftr run` starts it here")


def status(manifest: dict) -> State:
    code = manifest.get("exit_status")
    if manifest.get("end") is None:
        return State("RUNNING" if manifest.get("start") else "PENDING", done=False)
    return State("COMPLETED" if code == 0 else "FAILED", done=True, ok=code == 0)


def cancel(manifest: dict) -> None:
    raise UsageError(f"a local run is stopped with Ctrl-C in its terminal (host {manifest.get('host')})")
