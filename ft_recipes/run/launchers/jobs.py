"""Submitting a compiled run to an engine, and following it: what ``ftr run --launcher`` and ``ftr status`` do."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ft_recipes.core.findings import FtrError
from ft_recipes.run.launchers import get
from ft_recipes.run.launchers.base import Job, State, write_node_spec
from ft_recipes.run.manifest import MANIFEST, read_run_manifest, save_manifest
from ft_recipes.run.plan import RunPlan, quote
from ft_recipes.run.process import Progress, new_manifest

JOB = "job.json"  # the engine's job id and where it was submitted; written by the submitter only


def make_job(p: RunPlan, backend: str, opts, recipe) -> Job:
    return Job(p.run_dir, backend, p.python, p.config, opts, recipe, p.checkpoint)


def script_path(launcher: str, job: Job) -> Path:
    return job.run_dir / get(launcher).FILE


def submit(launcher: str, job: Job, p: RunPlan, loaded, argv: list[str]) -> dict:
    """Write the job's script, node spec and manifest into the run directory, submit it; the job record."""
    from ft_recipes.backends.emitted import atomic_write

    engine = get(launcher)
    path = script_path(launcher, job)
    (job.run_dir / "logs").mkdir(exist_ok=True)  # the engine's own log files go there too
    atomic_write(path, engine.script(job))
    write_node_spec(job)
    manifest = new_manifest(p, loaded, job.backend, argv)
    manifest.update(launcher=launcher, nodes=job.opts.nnodes, gpus_per_node=job.opts.gpus, script=str(path))
    save_manifest(job.run_dir, manifest)
    record = {"launcher": launcher, "job_id": engine.submit(job, path), "script": str(path),
              "submitted": manifest_time()}
    if launcher == "ray":
        record["ray_address"] = engine.address(job.hardware)
    atomic_write(job.run_dir / JOB, json.dumps(record, indent=2) + "\n")
    return record


def manifest_time() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def job_manifest(run_dir: Path) -> dict:
    """The run's manifest with its job record (job id, engine address) merged in."""
    manifest = read_run_manifest(run_dir)
    try:
        manifest.update(json.loads((run_dir / JOB).read_text(encoding="utf-8")))
    except FileNotFoundError:
        manifest.setdefault("launcher", "local")
    except (OSError, ValueError) as exc:
        raise FtrError(f"{run_dir / JOB}: cannot read the job record ({exc})", exit_code=2) from None
    return manifest


def record_job_id(run_dir: Path) -> None:
    """On the job's rank 0: copy the job id into the manifest (SLURM's own variable wins: it is always there,
    while job.json may still be on its way from the submitter)."""
    manifest = read_run_manifest(run_dir)
    job_id = os.environ.get("SLURM_JOB_ID") or job_manifest(run_dir).get("job_id")
    manifest["job_id"] = job_id
    save_manifest(run_dir, manifest)


def logs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "logs").glob("*")) if (run_dir / "logs").is_dir() else []


def last_progress(run_dir: Path) -> str | None:
    """The progress line a local run would show last, read from logs/train.log."""
    path = run_dir / "logs" / "train.log"
    if not path.is_file():
        return None
    progress, line = Progress(), None
    with path.open(encoding="utf-8", errors="replace") as log:  # streamed: a log of any size in bounded memory
        for text in log:
            for part in text.splitlines():  # tqdm's \r-separated updates are lines of their own, as before
                line = progress.feed(part) or line
    return line


def state(run_dir: Path) -> tuple[dict, State]:
    manifest = job_manifest(run_dir)
    if manifest.get("job_id") is None and manifest["launcher"] != "local":
        return manifest, State("NOT SUBMITTED", done=True, ok=None)
    now = get(manifest["launcher"]).status(manifest)
    if manifest["launcher"] == "local" and not now.done and owner_gone(run_dir, manifest):
        return manifest, State("INTERRUPTED", done=True, ok=False)
    return manifest, now


def owner_gone(run_dir: Path, manifest: dict) -> bool:
    """A local run without an end whose ftr process is gone (kill -9, a closed terminal): nobody holds its
    lock. Only checked on the run's own host (a lock on a shared filesystem may not be seen from another)."""
    import platform

    from ft_recipes.run.runlock import held

    return manifest.get("host") in (None, platform.node()) and held(run_dir) is False


POLL_TRIES = 5  # a poll the engine does not answer (a busy slurmctld times out) is tried again this often


def follow(run_dir: Path, interval: float = 2.0, confirm=None) -> int:
    """Echo the run's log and progress line until the job ends; its exit status (Ctrl-C offers to cancel).
    The engine says when the job has ended, not the manifest: an attempt's end (a requeued SLURM job's) is not
    the job's while the engine still holds it."""
    path, offset, progress = run_dir / "logs" / "train.log", 0, Progress()
    manifest, now = state(run_dir)
    try:
        failed = 0
        while True:
            offset = _echo(path, offset, progress)
            if now.done:
                break
            time.sleep(interval)
            try:
                manifest, now = state(run_dir)
                failed = 0
            except FtrError as exc:
                failed += 1
                if failed >= POLL_TRIES:
                    raise
                print(f"ftr: {exc}; asking again", file=sys.stderr)
        _echo(path, offset, progress)
    except KeyboardInterrupt:
        engine = get(manifest["launcher"])
        if confirm is not None and confirm(f"\ncancel job {manifest.get('job_id')} ({manifest['launcher']})?"):
            engine.cancel(manifest)
            print(f"ftr: cancelled job {manifest.get('job_id')}", file=sys.stderr)
        else:
            print(f"ftr: the job goes on; follow it again with: ftr status --attach {quote(str(run_dir))}",
                  file=sys.stderr)
        return 130
    code = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8")).get("exit_status")
    if code is None:
        code = 0 if now.ok else 1
    seen = "" if code == 0 else "; see " + ", ".join(quote(str(p)) for p in logs(run_dir))
    what = f"job {manifest['job_id']}" if manifest.get("job_id") else "run"
    print(f"ftr: {what} {now.state.lower()}{seen}", file=sys.stderr)
    return code


CHUNK = 1 << 20  # the log is echoed a MiB at a time: attaching to a huge log stays in bounded memory


def _echo(path: Path, offset: int, progress: Progress) -> int:
    while True:
        moved = _echo_chunk(path, offset, progress)
        if moved == offset:
            return offset
        offset = moved


def _echo_chunk(path: Path, offset: int, progress: Progress) -> int:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            chunk = log.read(CHUNK)
    except FileNotFoundError:
        return offset
    end = chunk.rfind(b"\n") + 1  # whole lines only; the rest comes next time
    if end == 0 and len(chunk) == CHUNK:  # one line longer than a chunk: echo it as it is
        end = len(chunk)
    for raw in chunk[:end].splitlines(keepends=True):
        sys.stdout.buffer.write(raw)
        line = progress.feed(raw.decode("utf-8", "replace"))
        if line:
            print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    return offset + end
