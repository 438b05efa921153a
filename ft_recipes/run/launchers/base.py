"""What every engine works from: the job (the compiled run plus where it should run) and its state."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ft_recipes.backends.interface import LaunchOptions
from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.model import Hardware, Recipe

NODE_SPEC = "node.json"  # what launchers.node needs on every node, written into the run directory
DEFAULT_PORT = 29500


@dataclass(frozen=True)
class Job:
    run_dir: Path
    backend: str
    python: Path  # the backend environment's python
    config: Path  # the main compiled config
    opts: LaunchOptions  # nodes, GPUs per node; rank and head address are filled in on each node
    recipe: Recipe  # as compiled (for the CPU when --gpus 0)
    checkpoint: Path | None = None

    @property
    def hardware(self) -> Hardware:
        return self.recipe.hardware

    @property
    def offline(self) -> bool:  # a local model: the nodes need no hub
        return self.recipe.model.is_local

    @property
    def name(self) -> str:
        """The job's name for the engine (SLURM job name, SkyPilot cluster, Ray submission id): the run
        folder's name with every run of other characters than letters and digits as one dash."""
        return f"ftr-{re.sub(r'[^A-Za-z0-9]+', '-', self.run_dir.name).strip('-') or 'run'}"

    @property
    def port(self) -> int:
        return self.opts.master_port or self.hardware.port or DEFAULT_PORT

    def node_command(self) -> list[str]:
        """What each node runs (with ``--rank`` and ``--master-addr`` appended): this ftr's python."""
        return [sys.executable, "-m", "ft_recipes.run.launchers.node", str(self.run_dir)]


@dataclass(frozen=True)
class State:
    state: str  # the engine's word: RUNNING, COMPLETED, SUCCEEDED, ...
    done: bool
    ok: bool | None = None  # when done: whether it succeeded


def comment(text: str) -> str:
    """``text`` as one comment line of a job file: a control character (a newline) is written escaped, so
    that it can neither end the comment nor start a line of its own."""
    return "# " + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def write_node_spec(job: Job) -> Path:
    from ft_recipes.backends.emitted import atomic_write

    spec = {"backend": job.backend, "python": str(job.python), "config": str(job.config), "offline": job.offline,
            "opts": asdict(job.opts), "checkpoint": str(job.checkpoint) if job.checkpoint else None}
    path = job.run_dir / NODE_SPEC
    atomic_write(path, json.dumps(spec, indent=2) + "\n")
    return path


def read_node_spec(run_dir: Path) -> dict:
    path = run_dir / NODE_SPEC
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FtrError(f"{path}: cannot read: {exc.strerror}; is {run_dir} on a filesystem every node shares?",
                       exit_code=2) from None


def tool(name: str, install: str) -> str:
    """The path of the engine's command-line tool, or FtrError saying how to get it."""
    found = shutil.which(name)
    if found is None:
        raise FtrError(f"`{name}` is not on PATH; {install}, or pass --dry-run to see what would be submitted",
                       exit_code=2)
    return found


def call(argv: list[str], what: str) -> str:
    """Run an engine command; its stdout, or FtrError with the first line of its complaint."""
    from ft_recipes.run.plan import quote

    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FtrError(f"{argv[0]}: cannot run: {exc}", exit_code=2) from None
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}").splitlines()[-1]
        raise FtrError(f"{what} failed: {said} (command: {' '.join(quote(a) for a in argv)})", exit_code=1)
    return proc.stdout
