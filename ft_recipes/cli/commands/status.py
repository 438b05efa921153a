"""``ftr status RUN_DIR``: where a run (local or submitted) stands; ``--attach`` follows it to its end."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ft_recipes.cli.commands import guard


@click.command("status")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--attach", "-f", is_flag=True, help="Follow the log and progress line until the job ends; Ctrl-C "
                                                   "offers to cancel the job.")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between polls (--attach).")
@guard
def status_cmd(run_dir: Path, attach: bool, interval: float) -> None:
    """Show the state of the run in RUN_DIR: its launcher and job id, the engine's state, the last progress
    line and its logs. With --attach, ftr's exit code is the run's."""
    from ft_recipes.run.launchers.jobs import follow, last_progress, logs, state
    from ft_recipes.run.plan import quote

    run_dir = run_dir.resolve()
    manifest, now = state(run_dir)
    job = f", job {manifest['job_id']}" if manifest.get("job_id") else ""
    lines = [f"run dir:  {quote(str(run_dir))}", f"backend:  {manifest['backend']}",
             f"launcher: {manifest['launcher']}{job}", f"state:    {now.state}"]
    progress = last_progress(run_dir)
    if progress:
        lines.append(f"progress: {progress.removeprefix('ftr: ')}")
    owner = manifest.get("owner") or {}
    if now.state == "INTERRUPTED":
        lines.append(f"owner:    ftr pid {owner.get('pid', '?')} on {manifest.get('host')} is gone (killed, or its "
                     f"terminal closed); checkpoints stay: `ftr run RECIPE --resume` continues")
    elif not now.done and owner and manifest.get("end") is None:
        lines.append(f"owner:    ftr pid {owner.get('pid')} on {owner.get('host')} since {owner.get('start')}")
    if manifest.get("exit_status") is not None and now.done:
        lines.append(f"exit:     {manifest['exit_status']}")
    elif manifest.get("exit_status") is not None:  # a requeued job between attempts: the engine still holds it
        lines.append(f"exit:     {manifest['exit_status']} (an attempt that ended at {manifest.get('end')}; the job "
                     f"goes on)")
    lines += [f"log:      {quote(str(path))}" for path in logs(run_dir)]
    click.echo("\n".join(lines))
    if attach and not now.done:
        sys.exit(follow(run_dir, interval, confirm=lambda q: click.confirm(q, default=False, err=True)))
    if attach and now.ok is False:  # over already, and not well: the exit code is the run's
        sys.exit(manifest.get("exit_status") or 1)
