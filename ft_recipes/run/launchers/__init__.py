"""Where ``ftr run`` starts a run: this machine, a SLURM job, a SkyPilot cluster or a Ray cluster.

Each engine is one module here with the same small interface:

- ``FILE``: the name of what it writes into the run directory (``None`` for ``local``);
- ``ready(hardware) -> None``: FtrError (with how to fix it) when the engine cannot take a job from here,
  checked before anything is written;
- ``script(job) -> str``: that file's text (an sbatch script, a SkyPilot task, a Ray job entrypoint);
- ``submit(job, path) -> str``: hands ``path`` to the engine and returns its job id;
- ``status(manifest) -> State``: the job's state as the engine reports it;
- ``cancel(manifest) -> None``.

The per-backend multi-node mechanism (torchrun variables, ``--launcher torchrun``, ``accelerate launch``) stays
in each backend's launch module; the engines only decide how many nodes run ``launchers.node`` and give each
its rank and the head's address. ftr never schedules anything itself.
"""

from __future__ import annotations

import importlib

from ft_recipes.core.findings import UsageError

NAMES = ("local", "slurm", "skypilot", "ray")


def get(name: str):
    if name not in NAMES:
        raise UsageError(f"unknown launcher {name!r}; choose one of: {', '.join(NAMES)}")
    return importlib.import_module(f"ft_recipes.run.launchers.{name}")
