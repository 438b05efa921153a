"""The trl backend: plain transformers + peft + trl through an emitted script."""

from __future__ import annotations

from pathlib import Path

from . import emit as BACKEND  # noqa: N812
from . import launch as LAUNCH  # noqa: N812, F401


def __getattr__(name: str):
    if name == "ENV":
        from ...envs import EnvSpec

        return EnvSpec(name="trl", version="1.9.0", python="3.11", lock=Path(__file__).parent / "lock.txt",
                       import_name="trl", cli="python")
    raise AttributeError(name)
