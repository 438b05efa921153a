"""The launchers' checks on launch options (the types are the backend contract's, backends/interface.py)."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.interface import LaunchOptions


def check(opts: LaunchOptions, deepspeed_presets: tuple[str, ...] = ()) -> None:
    """The launchers' own constraints on the options; UsageError (exit 2) naming the option otherwise."""
    from ft_recipes.core.findings import UsageError

    if opts.gpus < 0:
        raise UsageError(f"--gpus {opts.gpus}: must be 0 (CPU) or more")
    if opts.nnodes < 1:
        raise UsageError(f"--nnodes {opts.nnodes}: must be 1 or more")
    if not 0 <= opts.node_rank < opts.nnodes:
        raise UsageError(f"--node-rank {opts.node_rank}: must be in 0..{opts.nnodes - 1} for --nnodes {opts.nnodes}")
    if opts.master_port is not None and not 1 <= opts.master_port <= 65535:
        raise UsageError(f"--master-port {opts.master_port}: must be a TCP port, 1..65535")
    if opts.nnodes > 1 and not opts.master_addr:
        raise UsageError(f"--nnodes {opts.nnodes} needs --master-addr (the rendezvous host every node reaches)")
    if opts.master_addr is not None and not opts.master_addr.strip() or any(
            c.isspace() or not c.isprintable() for c in opts.master_addr or ""):
        raise UsageError(f"--master-addr {opts.master_addr!r}: must be a host name or IP address")
    if opts.deepspeed and opts.deepspeed not in deepspeed_presets and not Path(opts.deepspeed).is_file():
        raise UsageError(f"--deepspeed {opts.deepspeed}: neither a preset ({', '.join(deepspeed_presets)}) nor "
                         f"an existing DeepSpeed JSON file")
