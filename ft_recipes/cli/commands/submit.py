"""``ftr run --launcher slurm|skypilot|ray``: compile here, write the engine's job file, submit, optionally follow.
(The ``run`` command's scale-out half; ``ftr status`` follows a submitted run.)"""

from __future__ import annotations

from dataclasses import replace

import click


def submit_run(loaded, request) -> int:
    """Compile ``loaded`` for ``request`` (a RunRequest whose launcher is slurm, skypilot or ray), write the job
    file and submit it; with ``request.attach``, follow the job to its end."""
    from ft_recipes.backends.emitted import DEEPSPEED_PRESETS
    from ft_recipes.lint.gate import dry_gate
    from ft_recipes.run.launchers import get
    from ft_recipes.run.launchers.jobs import follow, make_job, script_path, submit
    from ft_recipes.run.launchers.options import check
    from ft_recipes.run.plan import dry_run_refusals, for_cpu, plan, quote

    backend, opts, launcher, dry_run = request.backend, request.opts, request.launcher, request.dry_run
    ray_address = request.ray_address
    if ray_address and launcher != "ray":
        raise click.UsageError("--ray-address goes with --launcher ray")
    check(replace(opts, master_addr=opts.master_addr or "head"), DEEPSPEED_PRESETS)  # the head is found per job
    lint_refusal = dry_gate(loaded, request.no_lint, dry_run)
    recipe = for_cpu(loaded.recipe) if opts.gpus == 0 else loaded.recipe
    if ray_address:
        recipe = replace(recipe, hardware=replace(recipe.hardware, ray_address=ray_address))
    if not dry_run:
        get(launcher).ready(recipe.hardware)
    run_plan = plan(loaded, request)
    job = make_job(run_plan, backend, opts, recipe)
    path = script_path(launcher, job)
    if dry_run:  # comments, a blank line, the job file; the exit code the real run would have
        refused = [*lint_refusal, *run_plan.refused]
        written = ", ".join(quote(str(p.relative_to(job.run_dir))) if p.is_relative_to(job.run_dir)
                            else quote(str(p)) for p in (*run_plan.writes, path))
        click.echo(f"# a dry run writes nothing; the real run writes {written} into {quote(str(job.run_dir))}, "
                   f"then submits it: {_submit_line(launcher, job, path)}; the job file follows")
        for line in dry_run_refusals(refused):
            click.echo(line)
        click.echo("")
        click.echo(get(launcher).script(job), nl=False)
        return refused[0].exit_code if refused else 0
    import sys

    if run_plan.lock is not None:  # the job's rank 0 owns the folder from its start
        run_plan.lock.release()
    record = submit(launcher, job, run_plan, loaded, sys.argv)
    if record["job_id"] is None:
        from ft_recipes.run.launchers.skypilot import INSTALL, launch_command

        click.echo(f"ftr: SkyPilot is not installed here ({INSTALL}); the task is written, launch it with:\n  "
                   + " ".join(quote(a) for a in launch_command(job, path)), err=True)
        return 0
    run_dir = quote(str(job.run_dir))
    click.echo(f"ftr: submitted {launcher} job {record['job_id']} ({job.opts.nnodes} node(s), "
               f"{job.opts.gpus} GPU(s) per node)\nftr: script {quote(str(path))}\n"
               f"ftr: logs   {quote(str(job.run_dir / 'logs'))} (train.log from rank 0, as a local run)\n"
               f"ftr: follow ftr status --attach {run_dir}", err=True)
    if not request.attach:
        return 0
    return follow(job.run_dir, confirm=lambda q: click.confirm(q, default=False, err=True))


def _submit_line(launcher: str, job, path) -> str:
    """How the real run submits the job file, as a command where there is one."""
    from ft_recipes.run.plan import quote

    if launcher == "slurm":
        return f"sbatch {quote(str(path))}"
    if launcher == "skypilot":
        from ft_recipes.run.launchers.skypilot import launch_command

        return " ".join(quote(a) for a in launch_command(job, path))
    return f"a {launcher} job running `bash {quote(str(path))}`"
