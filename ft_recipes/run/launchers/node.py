"""What runs on each node of a SLURM or Ray job: the backend's own launch for this node's rank.

    python -m ft_recipes.run.launchers.node RUN_DIR --rank R --master-addr HOST [--master-port P]
    python -m ft_recipes.run.launchers.node RUN_DIR --prepare     (once per job start, before the nodes)

Rank 0 keeps the run's manifest and ``logs/train.log`` exactly as a local run does; rank R>0 logs into
``logs/node-R.log``. ``--prepare`` makes a requeued job resume from the run directory's last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from ft_recipes import backends
from ft_recipes.backends.emitted import atomic_write
from ft_recipes.backends.interface import LaunchOptions
from ft_recipes.core.findings import FtrError
from ft_recipes.run.launchers.base import NODE_SPEC, read_node_spec
from ft_recipes.run.launchers.jobs import record_job_id
from ft_recipes.run.manifest import read_run_manifest, save_manifest
from ft_recipes.run.plan import RunPlan, backend_launch, last_checkpoint
from ft_recipes.run.process import execute_manifest
from ft_recipes.run.runlock import acquire


def options(spec: dict, rank: int, master_addr: str | None, master_port: int | None) -> LaunchOptions:
    opts = LaunchOptions(**{**spec["opts"], "extra": tuple(spec["opts"]["extra"])})
    return replace(opts, node_rank=rank, master_addr=master_addr or opts.master_addr,
                   master_port=master_port or opts.master_port)


def run_node(run_dir: Path, rank: int, master_addr: str | None, master_port: int | None) -> int:
    spec = read_node_spec(run_dir)
    opts = options(spec, rank, master_addr, master_port)
    python, config = Path(spec["python"]), Path(spec["config"])
    launch = backend_launch(spec["backend"], python, config, opts, offline=spec["offline"])
    checkpoint = Path(spec["checkpoint"]) if spec["checkpoint"] else None
    plan = RunPlan(run_dir, config, launch, python, checkpoint)
    if rank > 0:
        return execute_manifest(plan, {}, log_name=f"node-{rank}.log", record=False)
    plan = replace(plan, lock=acquire(run_dir, "job rank 0"))  # rank 0 owns the folder, as a local run does
    record_job_id(run_dir)
    manifest = read_run_manifest(run_dir)
    manifest.update(backend_command=launch.argv, env=launch.env)
    return execute_manifest(plan, manifest)


def prepare(run_dir: Path) -> None:
    """A requeued job (SLURM_RESTART_COUNT > 0, or a checkpoint left by an earlier start) resumes from the last
    checkpoint: the backend's resume keys go into the compiled config, the manifest says so."""
    spec = read_node_spec(run_dir)
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        return
    opts = options(spec, 0, None, None)
    try:
        keys = backends.launcher(spec["backend"]).run_overrides(opts, checkpoint)
    except ValueError as exc:
        raise FtrError(f"cannot resume from {checkpoint}: {exc}", exit_code=1) from None
    _update_config(Path(spec["config"]), keys)
    spec["checkpoint"] = str(checkpoint)
    atomic_write(run_dir / NODE_SPEC, json.dumps(spec, indent=2) + "\n")
    manifest = read_run_manifest(run_dir)
    manifest.update(resumed_from=str(checkpoint), restarts=int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0))
    save_manifest(run_dir, manifest)
    print(f"ftr: resuming from {checkpoint}", file=sys.stderr)


def _update_config(path: Path, keys: dict) -> None:
    import yaml

    from ft_recipes.backends.emitted import to_yaml

    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    cfg.update(keys)
    atomic_write(path, json.dumps(cfg, indent=2) + "\n" if path.suffix == ".json" else to_yaml(cfg))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ft_recipes.run.launchers.node")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--master-addr", default=None)
    parser.add_argument("--master-port", type=int, default=None)
    parser.add_argument("--prepare", action="store_true")
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    try:
        if args.prepare:
            prepare(run_dir)
            return 0
        return run_node(run_dir, args.rank, args.master_addr, args.master_port)
    except FtrError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
