"""``ftr run --launcher slurm|skypilot|ray``: compile here, write the engine's job file, submit, optionally follow.
(The ``run`` command's scale-out half; ``ftr status`` follows a submitted run.)"""

from __future__ import annotations

from dataclasses import replace

import click


def submit_run(loaded, backend: str, opts, launcher: str, attach: bool, ray_address: str | None, resume: bool,
               force: bool, dry_run: bool, no_lint: bool, allow_changed: bool = False) -> int:
    from ..emit import DEEPSPEED_PRESETS
    from ..launch import check
    from ..launchers import get
    from ..launchers.jobs import follow, make_job, script_path, submit
    from ..lint.gate import gate_recipe
    from ..run import for_cpu, plan, quote

    if ray_address and launcher != "ray":
        raise click.UsageError("--ray-address goes with --launcher ray")
    check(replace(opts, master_addr=opts.master_addr or "head"), DEEPSPEED_PRESETS)  # the head is found per job
    gate_recipe(loaded, no_lint)
    recipe = for_cpu(loaded.recipe) if opts.gpus == 0 else loaded.recipe
    if ray_address:
        recipe = replace(recipe, hardware=replace(recipe.hardware, ray_address=ray_address))
    if not dry_run:
        get(launcher).ready(recipe.hardware)
    run_plan = plan(loaded, backend, opts, resume, force, dry_run, allow_changed)
    job = make_job(run_plan, backend, opts, recipe)
    path = script_path(launcher, job)
    if dry_run:
        click.echo(f"run dir:  {quote(str(job.run_dir))}\nconfig:   {quote(str(job.config))}\n"
                   f"script:   {quote(str(path))}\n")
        click.echo(get(launcher).script(job), nl=False)
        return 0
    import sys

    if run_plan.lock is not None:  # the job's rank 0 owns the folder from its start
        run_plan.lock.release()
    record = submit(launcher, job, run_plan, loaded, sys.argv)
    if record["job_id"] is None:
        from ..launchers.skypilot import INSTALL, launch_command

        click.echo(f"ftr: SkyPilot is not installed here ({INSTALL}); the task is written, launch it with:\n  "
                   + " ".join(quote(a) for a in launch_command(job, path)), err=True)
        return 0
    run_dir = quote(str(job.run_dir))
    click.echo(f"ftr: submitted {launcher} job {record['job_id']} ({job.opts.nnodes} node(s), "
               f"{job.opts.gpus} GPU(s) per node)\nftr: script {quote(str(path))}\n"
               f"ftr: logs   {quote(str(job.run_dir / 'logs'))} (train.log from rank 0, as a local run)\n"
               f"ftr: follow ftr status --attach {run_dir}", err=True)
    if not attach:
        return 0
    return follow(job.run_dir, confirm=lambda q: click.confirm(q, default=False, err=True))
