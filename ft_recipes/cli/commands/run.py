"""``ftr run`` and ``ftr merge``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ft_recipes.backends import NAMES
from ft_recipes.cli.commands import backend_version_option, guard, targets
from ft_recipes.run.launchers import NAMES as LAUNCHERS


@click.command("run", context_settings={"ignore_unknown_options": False})
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--backend", "-b", type=click.Choice(NAMES), required=True)
@click.option("--gpus", "--gpus-per-node", "gpus", type=int, default=None,
              help="GPUs per node (0 = CPU). Default: recipe hardware.gpus.")
@click.option("--nnodes", "--nodes", "nnodes", type=int, default=None, help="Number of nodes. Default: hardware.nodes.")
@click.option("--launcher", type=click.Choice(LAUNCHERS), default=None,
              help="Where the run starts: here (local), a SLURM job, SkyPilot or Ray. Default: hardware.launcher.")
@click.option("--attach", is_flag=True, help="After submitting, follow the job to its end (as `ftr status --attach`).")
@click.option("--ray-address", default=None, help="Ray dashboard of the cluster to join (--launcher ray).")
@click.option("--node-rank", type=int, default=0, show_default=True)
@click.option("--master-addr", default=None, help="Rendezvous address for multi-node runs.")
@click.option("--master-port", type=int, default=None)
@click.option("--deepspeed", default=None, help="zero2, zero3, zero3_offload or a DeepSpeed JSON path.")
@click.option("--fsdp", is_flag=True, help="Shard with FSDP (Axolotl).")
@click.option("--dry-run", is_flag=True, help="Print the command, environment and config paths; start nothing.")
@click.option("--resume", is_flag=True, help="Continue from the run directory's last checkpoint.")
@click.option("--allow-changed", is_flag=True,
              help="With --resume: continue even though the recipe changed since the run started (recorded).")
@click.option("--force", is_flag=True, help="Start over; the previous run directory is moved aside, not deleted.")
@click.option("--no-lint", is_flag=True, help="Launch even when lint reports errors.")
@click.option("--only", "only", metavar="STAGE", default=None, help="A pipeline: run only this stage (again).")
@click.option("--from-stage", metavar="STAGE", default=None,
    help="A pipeline: run this stage and the later ones again.")
@backend_version_option
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
@guard
def run_cmd(recipe, backend, gpus, nnodes, launcher, attach, ray_address, node_rank, master_addr, master_port,
            deepspeed, fsdp, dry_run, resume, allow_changed, force, no_lint, only, from_stage, backend_versions,
            extra):
    """Lint RECIPE, compile it into its run directory (output.dir) and launch BACKEND there, from the
    environment of the backend version it was compiled for (--backend-version).

    Arguments after `--` go to the backend command. The backend's exit code is ftr's.
    """
    _reserve_std_fds()
    if allow_changed and not resume:
        raise click.UsageError("--allow-changed goes with --resume")
    with targets(backend_versions, backend, recipe):  # [tool.ftr] backend-versions nearest the recipe
        _run(recipe, backend, gpus, nnodes, launcher, attach, ray_address, node_rank, master_addr, master_port,
             deepspeed, fsdp, dry_run, resume, force, no_lint, only, from_stage, extra, allow_changed)


def _reserve_std_fds() -> None:
    """A closed stdin/stdout/stderr (`>&-`) gets /dev/null, so that no file ftr opens (the log, the lock)
    takes its number and receives what is meant for the console."""
    import os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one


def _run(recipe, backend, gpus, nnodes, launcher, attach, ray_address, node_rank, master_addr, master_port,
         deepspeed, fsdp, dry_run, resume, force, no_lint, only, from_stage, extra, allow_changed=False):
    from dataclasses import replace

    from ft_recipes.backends.emitted import DEEPSPEED_PRESETS
    from ft_recipes.recipe.loaded import load_recipe
    from ft_recipes.run.launchers.options import LaunchOptions, check
    from ft_recipes.run.plan import RunRequest, describe, plan
    from ft_recipes.run.process import execute

    if resume and force:
        raise click.UsageError("--resume and --force exclude each other")
    from ft_recipes.recipe.stages import has_stages

    if has_stages(recipe):
        from ft_recipes.run.pipelines import run_command

        if launcher not in (None, "local") or attach or ray_address:
            raise click.UsageError("a pipeline runs here (--launcher local) for now; submit its stages one by one")

        sys.exit(run_command(recipe, backend, dict(gpus=gpus, nnodes=nnodes, node_rank=node_rank,
                                                   master_addr=master_addr, master_port=master_port,
                                                   deepspeed=deepspeed, fsdp=fsdp, extra=tuple(extra)),
                             dry_run, resume, force, no_lint, only, from_stage,
                             lambda o, d: _fit(o, d, asked=gpus is not None), sys.argv))
    if only or from_stage:
        raise click.UsageError("--only and --from-stage choose stages of a pipeline; this recipe has no stages:")
    loaded = load_recipe(recipe)
    hw = loaded.recipe.hardware
    opts = LaunchOptions(gpus=hw.gpus if gpus is None else gpus, nnodes=hw.nodes if nnodes is None else nnodes,
        node_rank=node_rank,
                         master_addr=master_addr, master_port=master_port, deepspeed=deepspeed, fsdp=fsdp,
                         extra=tuple(extra))
    request = RunRequest(backend, opts, resume=resume, force=force, dry_run=dry_run, allow_changed=allow_changed,
                         no_lint=no_lint, launcher=launcher or hw.launcher or "local", attach=attach,
                         ray_address=ray_address)
    if request.launcher != "local":
        from ft_recipes.cli.commands.submit import submit_run

        sys.exit(submit_run(loaded, request))
    if attach or ray_address:
        raise click.UsageError("--attach and --ray-address go with --launcher slurm|skypilot|ray")
    check(opts, DEEPSPEED_PRESETS)
    from ft_recipes.lint.gate import dry_gate

    lint_refusal = dry_gate(loaded, no_lint, dry_run)
    request = replace(request, opts=_fit(opts, dry_run, asked=gpus is not None))
    run_plan = plan(loaded, request)
    run_plan.refused[:0] = lint_refusal
    click.echo(describe(run_plan), err=dry_run is False)
    if dry_run:  # the exit code the real run would have
        sys.exit(run_plan.refused[0].exit_code if run_plan.refused else 0)
    sys.exit(execute(run_plan, loaded, backend, sys.argv))


def _fit(opts, dry_run: bool, asked: bool):
    """Adapt to (or refuse) this machine's GPUs; a dry run only says what a run here would do."""
    from ft_recipes.core.findings import FtrError
    from ft_recipes.run.plan import fit_machine, visible_gpus

    try:
        fitted, note = fit_machine(opts, visible_gpus(), asked)
    except FtrError as exc:
        if not dry_run:
            raise
        click.echo(f"note: {exc} (a dry run prints the command for the machine it is meant for)", err=True)
        return opts
    if note:
        click.echo(f"ftr: {note}" if not dry_run else f"note: a run here would adapt (a dry run does not): {note}",
                   err=True)
    return opts if dry_run else fitted


@click.command("merge")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the merged model goes (default RUN_DIR/merged).")
@guard
def merge_cmd(run_dir: Path, output: Path | None) -> None:
    """Merge the LoRA adapter of RUN_DIR into its base model with the backend's own merge."""
    from ft_recipes.run.merge import merge

    sys.exit(merge(run_dir, output))
