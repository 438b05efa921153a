"""What a backend launch is: argv plus environment changes (shared by every backend's launch module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    produces: Path | None = None
