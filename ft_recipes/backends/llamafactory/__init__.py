"""The llamafactory backend: emitter, template map, environment spec and launch facts."""

from __future__ import annotations

from pathlib import Path

from . import emit as BACKEND  # noqa: N812  (the module is the backend object)
from . import launch as LAUNCH  # noqa: N812, F401


def __getattr__(name: str):
    if name == "ENV":  # built lazily so importing the emitter never touches the environment code
        from ...envs import EnvSpec

        return EnvSpec(name="llamafactory", version="0.9.5", python="3.11", lock=Path(__file__).parent / "lock.txt",
                       import_name="llamafactory", cli="llamafactory-cli",
                       # PyPI's torchaudio links CUDA libs; LF imports it unconditionally but needs no native op
                       prune=("torchaudio/lib/*.so",))
    raise AttributeError(name)
