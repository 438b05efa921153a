"""SLURM: an sbatch script in the run directory; ``srun`` starts ``launchers.node`` once per node (task), with
the head node from ``SLURM_JOB_NODELIST`` and the node rank from ``SLURM_PROCID``."""

from __future__ import annotations

import re

from ft_recipes.core.findings import FtrError, UsageError
from ft_recipes.run.launchers.base import Job, State, call, comment, tool
from ft_recipes.run.plan import quote

FILE = "job.sbatch"
INSTALL = "run on a SLURM login node (sbatch comes with SLURM's client tools)"
# SLURM's job states as squeue (%T) and scontrol (JobState=) print them (job_state_string in SLURM's
# slurm_protocol_defs.c). Only these end a job. A job SLURM still holds is in another, however briefly, even when
# an attempt of it has ended (the manifest has an end): a requeued job is COMPLETING while its attempt's
# processes go, then PENDING (Reason=BeginTime, about 2 minutes) or held (REQUEUE_HOLD; SPECIAL_EXIT: requeued
# and held until `scontrol release`), REQUEUED or REQUEUE_FED on the way; squeue lists every such job.
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE", "PREEMPTED", "REVOKED"}
FORGOTTEN = "Invalid job id specified"  # what squeue -j and scontrol say of a job past MinJobAge


def directives(job: Job) -> dict[str, str | None]:
    """``#SBATCH`` options by name; an option in ``hardware.sbatch`` replaces ftr's own of that name."""
    hw, opts = job.hardware, job.opts
    found: dict[str, str | None] = {
        "job-name": job.name, "nodes": str(opts.nnodes), "ntasks-per-node": "1",
        "output": str(job.run_dir / "logs" / "slurm-%j.out"), "open-mode": "append", "chdir": str(job.run_dir),
        "requeue": None}
    extra = {"gpus-per-node": str(opts.gpus) if opts.gpus else None, "cpus-per-task": hw.cpus_per_node,
             "partition": hw.partition, "account": hw.account, "time": hw.time}
    found.update({k: str(v) for k, v in extra.items() if v is not None})
    for option in hw.sbatch:
        name, sep, value = option.removeprefix("--").partition("=")
        if not option.startswith("--") or not OPTION.fullmatch(name):
            raise UsageError(f"hardware.sbatch: {option!r} is not a long sbatch option; write it as --name=value "
                             f"(e.g. --qos=high) or --flag")
        found[name] = value if sep else None
    for name, value in found.items():
        _check_value(name, value)
    return found


OPTION = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def _check_value(name: str, value: str | None) -> None:
    """sbatch reads an ``#SBATCH`` line up to its end, with no escape for a control character: a value with
    one (a newline or tab in the run folder's path) is refused."""
    if value is not None and not value.isprintable():
        raise UsageError(f"#SBATCH --{name}: {value!r} holds a control character (a newline or tab), which an "
                         f"sbatch script cannot carry; give the run a folder name without one (output.dir)")


def script(job: Job) -> str:
    lines = ["#!/bin/bash", comment(f"{job.name}: written by ftr run --launcher slurm; submit with sbatch")]
    lines += [f"#SBATCH --{name}" + ("" if value is None else f"={quote(value)}")
              for name, value in directives(job).items()]
    node = " ".join(quote(arg) for arg in job.node_command())
    inner = f'exec {node} --rank "$SLURM_PROCID" --master-addr "$1" --master-port "$2"'
    srun = ["srun", "--export=ALL", "--kill-on-bad-exit=1"]
    if job.hardware.container:
        srun.append(f"--container-image={quote(job.hardware.container)}")
    lines += ["set -euo pipefail", *job.hardware.setup,
              'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
              f"port={job.port}",
              "# a requeued job resumes from the run directory's last checkpoint",
              f"{node} --prepare",
              f"{' '.join(srun)} bash -c {quote(inner)} ftr-node \"$head\" \"$port\""]
    return "\n".join(lines) + "\n"


def ready(hardware) -> None:
    """Before anything is written: sbatch is here."""
    tool("sbatch", INSTALL)


def submit(job: Job, path) -> str:
    out = call([tool("sbatch", INSTALL), "--parsable", str(path)], "sbatch")
    return out.strip().split(";")[0]


def status(manifest: dict) -> State:
    """The job's state as SLURM has it. An attempt's end (the manifest's ``end``, written by rank 0 when a
    requeue or a preemption stops it) is not the job's: only a state in FINISHED is, and the manifest decides
    only once SLURM has forgotten the job."""
    job_id = str(manifest["job_id"])
    queued = _squeue(job_id)
    if queued:  # SLURM still holds the job: e.g. "PENDING BeginTime", "COMPLETING None", "REQUEUE_HOLD JobHeldAdmin"
        state, _, reason = queued.splitlines()[0].partition(" ")
        return State(state if reason in ("", "None") else f"{state} ({reason})", done=False)
    try:
        shown = call([tool("scontrol", INSTALL), "show", "job", "-o", job_id], "scontrol")
    except FtrError:  # scontrol forgets a finished job after MinJobAge: then the manifest decides
        shown = ""
    found = re.search(r"JobState=(\S+)", shown)
    if found:
        return job_state(found.group(1))
    code = manifest.get("exit_status")
    return State("COMPLETED" if code == 0 else "FINISHED", done=True, ok=code == 0)


def job_state(word: str) -> State:
    """One of SLURM's state words: final only when in FINISHED (a word of a newer SLURM is not)."""
    return State(word, done=word in FINISHED, ok=word == "COMPLETED" if word in FINISHED else None)


def _squeue(job_id: str) -> str:
    """squeue's line for the job; empty once the job has ended, and once SLURM has forgotten it (MinJobAge),
    when squeue -j exits 1 saying so."""
    try:
        return call([tool("squeue", INSTALL), "-h", "-j", job_id, "-o", "%T %r"], "squeue").strip()
    except FtrError as exc:
        if FORGOTTEN in str(exc):
            return ""
        raise


def cancel(manifest: dict) -> None:
    call([tool("scancel", INSTALL), str(manifest["job_id"])], "scancel")
