"""``ftr run``: lint, compile into a run directory, launch the backend from its own environment,
tee its logs, forward signals, and record a manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import __version__, backends
from .backends import backend_python
from .backends.interface import Launch, LaunchOptions
from .emit import atomic_write, deepspeed_file, recipe_hash, to_yaml, write_outputs
from .findings import Finding, FtrError
from .normalise import to_data
from .pipeline import Loaded
from .recipe import Recipe
from .runlock import LOCK, RunLock

MANIFEST = "manifest.json"


@dataclass
class RunPlan:
    run_dir: Path
    config: Path
    launch: Launch
    python: Path
    checkpoint: Path | None
    lock: RunLock | None = None  # this process owns run_dir while it holds it
    writes: list[Path] = field(default_factory=list)  # what the run writes into run_dir before its command
    refused: list[FtrError] = field(default_factory=list)  # a dry run: why the real run would stop
    dry_run: bool = False
    moves_aside: bool = False  # a dry run with --force: the real run moves the previous run aside first


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint-N. The trainer writes trainer_state.json last, so a directory without it,
    or with one that does not parse (cut mid-write), was cut short (a preemption while saving) and resuming from
    it fails; it is skipped with a note."""
    found = sorted((p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in found:
        problem = _checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        note(f"ftr: skipping {checkpoint}: incomplete ({problem}; the save was interrupted)")
    return None


def _checkpoint_problem(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from; None when its trainer_state.json is a whole JSON object."""
    state = checkpoint / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"trainer_state.json cannot be read: {exc.strerror}"
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        return "trainer_state.json does not parse"
    return None if isinstance(data, dict) else "trainer_state.json is not a JSON object"


def holds_run(run_dir: Path) -> bool:
    """The folder holds something besides its lock file."""
    return run_dir.is_dir() and any(p.name != LOCK for p in run_dir.iterdir())


def prepare_dir(run_dir: Path, resume: bool, force: bool) -> Path | None:
    """Apply the reuse rules (FTR501); returns the checkpoint to resume from."""
    if not holds_run(run_dir):
        if resume:
            raise FtrError(f"{run_dir}: nothing to resume", exit_code=1)
        return None
    if resume:
        checkpoint = last_checkpoint(run_dir)
        if checkpoint is None:
            raise FtrError(f"{run_dir}: --resume given but the directory holds no complete checkpoint-N", exit_code=1)
        return checkpoint
    if force:
        _check_is_run(run_dir)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
        run_dir.rename(aside)
        print(f"ftr: moved the previous run aside to {aside}", file=sys.stderr)
        return None
    raise FtrError("output directory in use", [Finding(
        "<run>", 1, 1, "FTR501", "error", f"{run_dir} holds a previous run",
        "pass --resume to continue from its last checkpoint, or --force to start over (the old one is moved aside)")])


RUN_MARKS = (MANIFEST, "recipe.resolved.yaml")  # what ftr writes into every run folder it compiles into


def _check_is_run(run_dir: Path) -> None:
    """``--force`` moves aside only a folder ftr made a run of; anything else (a model, a data folder) stays."""
    if any((run_dir / mark).is_file() for mark in RUN_MARKS):
        return
    raise FtrError("output directory is not a run", [Finding(
        "<run>", 1, 1, "FTR501", "error", f"{run_dir} holds files but no earlier run of ftr (no {MANIFEST} or "
        f"recipe.resolved.yaml); --force only moves an earlier run aside",
        "give the run a folder of its own (output.dir: runs/NAME), or move that folder yourself")])


def visible_gpus() -> int | None:
    """The NVIDIA GPUs a launch here would see: the driver's devices, limited by CUDA_VISIBLE_DEVICES.
    None when it cannot tell (another vendor's driver, e.g. ROCm's /dev/kfd)."""
    found = _driver_gpus()
    if found == 0 and Path("/dev/kfd").exists():
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    ids = [part for part in visible.split(",") if part.strip()]
    if not ids or ids[0].strip().startswith("-"):
        return 0
    return min(len(ids), found)


def _driver_gpus() -> int:
    proc_dir = Path("/proc/driver/nvidia/gpus")
    try:
        return len(list(proc_dir.iterdir()))
    except OSError:
        pass
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU ")) if out.returncode == 0 else 0


def fit_machine(opts: LaunchOptions, available: int | None, asked: bool) -> tuple[LaunchOptions, str | None]:
    """Options this machine can run. Without a GPU, a recipe's own GPU count becomes a CPU run (with a
    note); GPUs asked for on the command line (``asked``), or more than the machine has, are an FtrError."""
    if available is None or opts.gpus <= available:
        return opts, None
    if available == 0 and opts.nnodes == 1 and not asked:
        note = (f"this machine has no usable GPU (the recipe asks for {opts.gpus}); running on the CPU as with "
                f"--gpus 0 (fp32; Axolotl's LoRA kernels off); pass --gpus 0 to say so")
        return replace(opts, gpus=0), note
    raise FtrError(f"the run asks for {opts.gpus} GPU(s) per node but this machine has {available} usable"
                   f" (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); pass --gpus "
                   f"{available}{' (the CPU)' if available == 0 else ''} or run it where the GPUs are", exit_code=1)


def for_cpu(recipe: Recipe) -> Recipe:
    """The recipe as a CPU run compiles it: no GPU, fp32 (bf16/fp16 fail on a CPU)."""
    return replace(recipe, hardware=replace(recipe.hardware, gpus=0, bf16=False),
                   train=replace(recipe.train, precision="fp32"))


def _check_run_dir(run_dir: Path, recipe: Recipe) -> None:
    """The run directory is the run's own: it must not hold the recipe or its data (``--force`` moves it aside)."""
    inputs = [Path(recipe.source_file), *(d.path for d in (*recipe.data.train, *recipe.data.val) if d.path)]
    if recipe.model.is_local and Path(recipe.model.base).resolve() == run_dir.resolve():
        inputs.append(Path(recipe.model.base))
    for path in inputs:
        if path.resolve().is_relative_to(run_dir.resolve()):
            file, line, col = recipe.where(("output", "dir"))
            raise FtrError("run directory holds inputs", [Finding(
                file, line, col, "FTR501", "error", f"output.dir {run_dir} contains the run's input {path}",
                "give the run a folder of its own, e.g. output.dir: runs/NAME")])


def plan(loaded: Loaded, backend: str, opts: LaunchOptions, resume: bool, force: bool,
         dry_run: bool, allow_changed: bool = False) -> RunPlan:
    """Compile into the run directory, which this process then owns (``RunPlan.lock``) unless ``dry_run``.
    ``resume`` of a run whose recipe changed since it started is refused unless ``allow_changed``."""
    run_dir = loaded.recipe.output.dir
    _check_run_dir(run_dir, loaded.recipe)
    if dry_run:
        return _plan(loaded, backend, opts, resume, force, True, None)
    lock = _own(run_dir)
    try:
        if resume and not allow_changed:
            check_same_recipe(run_dir, loaded.recipe)
        return _plan(loaded, backend, opts, resume, force, False, lock)
    except BaseException:  # a refused or failed plan gives the folder back at once (a pipeline goes on living)
        lock.release()
        raise


def _plan(loaded: Loaded, backend: str, opts: LaunchOptions, resume: bool, force: bool, dry_run: bool,
          lock: RunLock | None) -> RunPlan:
    recipe = loaded.recipe
    if opts.gpus == 0:
        recipe = for_cpu(recipe)
    run_dir = recipe.output.dir
    launcher = backends.launcher(backend)
    refused = [] if not dry_run else _dry_refusals(run_dir, resume, force)
    checkpoint = last_checkpoint(run_dir) if dry_run and resume else (
        None if dry_run else prepare_dir(run_dir, resume, force))
    if lock is not None and lock.moved():  # --force moved the old run (and its lock file) aside
        old, lock = lock, _own(run_dir)
        old.release()
    emitted = backends.get(backend).emit(recipe, run_dir)
    for note in (n for n in emitted.notes if not n.cross):  # `ftr compile`'s notes: what this backend carries
        print(f"ftr: {note.text(backend)}", file=sys.stderr)
    main_cfg = emitted.configs[emitted.main]
    try:
        main_cfg.update(launcher.run_overrides(opts, checkpoint))
    except ValueError as exc:
        raise FtrError(str(exc), exit_code=2) from None
    if opts.deepspeed:
        main_cfg["deepspeed"] = deepspeed_file(opts.deepspeed, Path.cwd())
    python = backend_python(backend) if not dry_run else _python_or_placeholder(backend, refused)
    if not dry_run:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_outputs(emitted, recipe, run_dir, force=True)
        atomic_write(run_dir / "recipe.resolved.yaml", to_yaml(to_data(recipe)))
    config = run_dir / emitted.main
    launch = backend_launch(backend, python, config, opts, offline=recipe.model.is_local)
    writes = [run_dir / name for name in (*emitted.configs, *emitted.data_files, "recipe.resolved.yaml")]
    aside = dry_run and force and not resume and holds_run(run_dir)
    return RunPlan(run_dir, config, launch, python, checkpoint, lock, writes, refused, dry_run, aside)


def _dry_refusals(run_dir: Path, resume: bool, force: bool) -> list[FtrError]:
    """What ``prepare_dir`` would refuse for the real run, found without moving or writing anything."""
    try:
        if force and holds_run(run_dir) and not resume:
            _check_is_run(run_dir)
        elif not force:
            prepare_dir(run_dir, resume, False)
    except FtrError as exc:
        return [exc]
    return []


def check_same_recipe(run_dir: Path, recipe: Recipe) -> None:
    """Refuse to resume a run whose recipe changed since it started (the manifest's ``recipe_hash``): the rest
    of the training would follow other settings than its first part. A run without a readable manifest passes."""
    before = previous_manifest(run_dir).get("recipe_hash")
    now = recipe_hash(recipe)
    if before is None or before == now:
        return
    raise FtrError(f"{run_dir}: the recipe changed since this run started (recipe sha256:{before} then, "
                   f"sha256:{now} now); --resume would train the rest with other settings. Pass --force to start "
                   f"over (the old run is moved aside), or --resume --allow-changed to continue anyway (the "
                   f"manifest records it)", exit_code=1)


def previous_manifest(run_dir: Path) -> dict:
    """The manifest an earlier attempt left in ``run_dir``; empty when there is none or it does not parse."""
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _own(run_dir: Path) -> RunLock:
    from .runlock import acquire

    try:
        return acquire(run_dir)
    except PermissionError as exc:
        raise FtrError(f"{run_dir}: cannot create the run's lock file: {exc.strerror}", exit_code=2) from None


def backend_launch(backend: str, python: Path, config: Path, opts: LaunchOptions, offline: bool) -> Launch:
    """The backend's launch for ``opts``, finding torchrun/accelerate in its environment; ``offline`` (a local
    model needs no hub; some backends still try to reach it otherwise) sets HF_HUB_OFFLINE."""
    launch = backends.launcher(backend).launch(python, config, opts)
    env = {**launch.env, "PATH": f"{python.parent}{os.pathsep}$PATH"}
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return Launch(launch.argv, env, launch.produces)


def _python_or_placeholder(backend: str, refused: list[FtrError]) -> Path:
    try:
        return backend_python(backend)
    except FtrError as exc:
        refused.append(exc)
        return Path(f"<{backend}-env>/bin/python")


def describe(p: RunPlan) -> str:
    """The plan, every path and command shell-quoted. A dry run's: the command as one line a shell runs, then
    ``#`` comments (what the real run writes first, what it would refuse), so that the whole text can be pasted.
    A real run's (on stderr): one labelled item per line."""
    if p.dry_run:
        return "\n".join([command_line(p), *dry_run_notes(p)])
    env = " ".join(f"{k}={_quote_env(v)}" for k, v in sorted(p.launch.env.items()))
    lines = [f"run dir:  {quote(str(p.run_dir))}", f"config:   {quote(str(p.config))}"]
    if p.checkpoint:
        lines.append(f"resume:   {quote(str(p.checkpoint))}")
    lines.append(f"env:      {env or '(unchanged)'}")
    lines.append("command:  " + " ".join(quote(arg) for arg in p.launch.argv))
    return "\n".join(lines)


def command_line(p: RunPlan) -> str:
    """The launch as one line a shell runs as it stands: the environment assignments, then the command."""
    env = [f"{k}={_quote_env(v)}" for k, v in sorted(p.launch.env.items())]
    return " ".join([*env, *(quote(arg) for arg in p.launch.argv)])


def dry_run_notes(p: RunPlan) -> list[str]:
    """What a dry run says besides the command (as shell comments): what the real run writes first, where it
    resumes, and what it would refuse."""
    written = ", ".join(quote(str(path.relative_to(p.run_dir))) for path in p.writes)
    aside = "moves the previous run aside (to NAME.old-DATE), " if p.moves_aside else ""
    notes = [f"# a dry run writes nothing; the real run first {aside}writes {written} into "
             f"{quote(str(p.run_dir))}, then runs the line above"]
    if p.checkpoint:
        notes.append(f"# it resumes from {quote(str(p.checkpoint))}")
    return notes + dry_run_refusals(p.refused)


def dry_run_refusals(refused: list[FtrError]) -> list[str]:
    return [f"# the real run would stop before it (exit {exc.exit_code}): {_why(exc)}" for exc in refused]


def _why(exc: FtrError) -> str:
    """An error on one line, without the placeholder positions of findings about no file (``<run>:1:1``)."""
    if not exc.findings:
        return " ".join(str(exc).removeprefix("error: ").split())
    return "; ".join(" ".join(f"{'' if f.file.startswith('<') else f'{f.file}:{f.line}:{f.col}: '}{f.message}"
                              f"{f' ({f.hint})' if f.hint else ''}".split()) for f in exc.findings)


def quote(value: str) -> str:
    """``shlex.quote``; a value with control characters (a newline) becomes one ``$'...'`` word instead,
    so that every printed command stays on one line (bash, zsh, ksh and POSIX.1-2024 sh read it)."""
    if all(c.isprintable() for c in value):
        return shlex.quote(value)
    escaped = "".join(_C_ESCAPES.get(c) or (c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 128
                                            else f"\\u{ord(c):04x}" if ord(c) < 65536 else f"\\U{ord(c):08x}")
                      for c in value)
    return f"$'{escaped}'"


_C_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quote_env(value: str) -> str:
    """A value for ``NAME=value`` in a shell; ``$PATH`` stays a reference to the current PATH."""
    return "$PATH".join(quote(part) if part else "" for part in value.split("$PATH")) or "''"


def _probe(python: Path) -> dict:
    code = ("import json, sys, platform\n"
            "info = {'python': platform.python_version()}\n"
            "try:\n import torch\n info['torch'] = torch.__version__\n"
            " info['gpus'] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]\n"
            "except Exception as e:\n info['torch'] = None\n"
            "print(json.dumps(info))")
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return {}


def execute(p: RunPlan, loaded: Loaded, backend: str, argv: list[str]) -> int:
    return execute_manifest(p, new_manifest(p, loaded, backend, argv))


def new_manifest(p: RunPlan, loaded: Loaded, backend: str, argv: list[str]) -> dict:
    """The manifest of a run not started yet (``start`` is None)."""
    from .envs import installed_version

    spec = backends.env_spec(backend)
    earlier = earlier_attempts(previous_manifest(p.run_dir)) if p.checkpoint else []
    digest = recipe_hash(loaded.recipe)
    return {"ftr_version": __version__, "recipe": str(Path(loaded.recipe.source_file).resolve()),
            "recipe_hash": digest, "backend": backend, "attempts": earlier,
            "recipe_changed": bool(earlier) and earlier[-1].get("recipe_hash") not in (None, digest),
            "backend_version": installed_version(p.python, spec), "command_line": argv,
            "backend_command": p.launch.argv, "env": p.launch.env, "host": platform.node(),
            "resumed_from": str(p.checkpoint) if p.checkpoint else None, "template": loaded.recipe.model.template,
            "run_dir": str(p.run_dir.resolve()),
            "start": None, "end": None, "exit_status": None, "interrupted": False}


def execute_manifest(p: RunPlan, manifest: dict, log_name: str = "train.log", record: bool = True) -> int:
    """Run ``p`` here, teeing into ``logs/log_name``; ``record``: keep ``manifest`` (start, end, exit status)
    in the run directory and print the final diagnosis (another node of a multi-node run does neither).
    Every way out leaves the manifest in a final state; the run's lock is released last."""
    (p.run_dir / "logs").mkdir(exist_ok=True)
    if not record:
        return _stream(p, p.run_dir / "logs" / log_name).code
    history = earlier_attempts(manifest)
    for key in ("error", "output_errors"):  # a requeued job's manifest still holds its last attempt's outcome
        manifest.pop(key, None)
    manifest.update(host=platform.node(), **_probe(p.python), start=_now(), end=None, exit_status=None,
                    interrupted=False)
    if p.lock is not None:
        manifest["owner"] = {k: p.lock.owner[k] for k in ("pid", "host", "start")}
    manifest["attempts"] = [*history, attempt_of(manifest)]
    try:
        save_manifest(p.run_dir, manifest)
        outcome = _stream(p, p.run_dir / "logs" / log_name)
        manifest.update(end=_now(), exit_status=outcome.code, interrupted=outcome.interrupted)
        if outcome.output_errors:
            manifest["output_errors"] = outcome.output_errors
        if outcome.code != 0 and outcome.import_error and not outcome.interrupted:
            note(f"ftr: the backend could not import a module: its environment may be damaged or incomplete; "
                 f"reinstall it with `ftr backend install {manifest['backend']} --force`")
        _save_final(p.run_dir, manifest)
        if outcome.code == 0 and not outcome.interrupted and "template" in manifest:
            manifest["chat_template"] = carry_template(p.run_dir, manifest["backend"], manifest["template"])
            _save_final(p.run_dir, manifest)
    except BaseException as exc:  # anything that ends ftr here still ends the run: record it, then go on failing
        _record_failure(p.run_dir, manifest, exc)
        raise
    finally:
        if p.lock is not None:
            p.lock.release()
    _final_report(p.run_dir)
    return outcome.code


ATTEMPT = ("start", "end", "exit_status", "interrupted", "resumed_from", "recipe_hash", "host", "error")


def attempt_of(manifest: dict) -> dict:
    """One attempt's record in the manifest's ``attempts`` (an attempt without an ``end``: its ftr died)."""
    return {key: manifest.get(key) for key in ATTEMPT}


def earlier_attempts(manifest: dict) -> list[dict]:
    """The attempts a manifest records, oldest first; a manifest of an older ftr (no ``attempts``) gives its
    one attempt, a manifest of a run never started none."""
    attempts = manifest.get("attempts")
    if isinstance(attempts, list):
        return attempts
    return [attempt_of(manifest)] if manifest.get("start") else []


def _record_failure(run_dir: Path, manifest: dict, exc: BaseException) -> None:
    if manifest.get("end") is None:
        code = exc.exit_code if isinstance(exc, FtrError) else 130 if isinstance(exc, KeyboardInterrupt) else 1
        manifest.update(end=_now(), exit_status=code)
    manifest["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, FtrError) else str(exc)
    _save_final(run_dir, manifest)


def _save_final(run_dir: Path, manifest: dict) -> None:
    """Save the manifest (its last attempt updated); a full or read-only disk is reported, not fatal (the
    training's outcome stands, and `ftr status` sees from the released lock that the run is over)."""
    if manifest.get("attempts"):
        manifest["attempts"][-1] = attempt_of(manifest)
    try:
        save_manifest(run_dir, manifest)
    except FtrError as exc:
        note(f"ftr: warning: cannot update {run_dir / MANIFEST}: {exc}")


def carry_template(run_dir: Path, backend: str, name: str | None) -> dict:
    """The saved tokenizers of a finished run (the run directory, its ``merged/``) carry the chat template it
    trained with: ftr writes it where the backend does not; the manifest records which and where."""
    from . import templates

    text = backends.get(backend).served_template(name)
    written = [d.name if d != run_dir else "." for d in (run_dir, run_dir / "merged")
               if text is not None and templates.carry(d, text)]
    return {"template": name, "source": "ftr" if text is not None else backend, "written": written,
            "sha256": hashlib.sha256(text.encode()).hexdigest() if text is not None else None}


def _final_report(run_dir: Path) -> None:
    from .report import diagnose, read_curves

    try:
        curves = read_curves(run_dir)
    except (OSError, ValueError):
        return
    for d in diagnose(curves, rules=_project_rules(run_dir)):
        note(f"ftr: {d.kind}: {d.summary}")
        for remedy in d.remedies:
            note(f"ftr:   - {remedy}")


def _project_rules(run_dir: Path) -> dict | None:
    """The rule pack of the run's recipe's project ([tool.ftr.lint] rule-packs), so that the advice after the run
    stays inside the ranges its lint uses; None (ftr's own pack) when it cannot be read."""
    from .lint.options import from_project
    from .lint.pack import load_pack

    recipe = previous_manifest(run_dir).get("recipe")
    try:
        return load_pack(from_project(Path(recipe).parent if recipe else None).rule_packs).get("rules")
    except (FtrError, OSError, ValueError):
        return None


def expand_env(changes: dict[str, str]) -> dict[str, str]:
    """Environment changes with ``$PATH`` replaced by the current PATH."""
    return {k: v.replace("$PATH", os.environ.get("PATH", "")) for k, v in changes.items()}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def save_manifest(run_dir: Path, manifest: dict) -> None:
    atomic_write(run_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


STOP_GRACE = 30.0  # seconds between forwarding a stop signal and SIGKILL (FTR_STOP_GRACE overrides)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Outcome:
    code: int
    interrupted: bool
    output_errors: list[str]
    import_error: bool = False  # the backend said ImportError / ModuleNotFoundError: its environment may be damaged


class Sink:
    """One place the backend's output goes (the log file, the console). Its first write error (a closed pipe,
    a full disk, a closed descriptor) turns it off and is kept: the training never dies of ftr's own output."""

    def __init__(self, name: str, stream, console: bool = False):
        self.name, self.stream, self.console = name, stream, console
        self.error = None if stream is not None else "closed"

    def write(self, data) -> None:
        if self.error is not None:
            return
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed file object
            self.error = getattr(exc, "strerror", None) or str(exc)
            if self.console:
                silence(self.stream)


def silence(stream) -> None:
    """Point a console stream's descriptor at /dev/null, so that later writes and the flush at exit succeed."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def note(text: str) -> None:
    """A line of ftr's own on stderr; a broken or closed stderr loses it and nothing else."""
    Sink("stderr", sys.stderr, console=True).write(text + "\n")


def _console_stdout():
    return getattr(sys.stdout, "buffer", None)


def _stream(p: RunPlan, log_path: Path) -> Outcome:
    """Run the backend in its own process group and tee its output. SIGINT/SIGTERM/SIGHUP are forwarded to the
    group (SIGHUP as SIGTERM), then SIGKILL after the grace period. Output errors never stop the draining:
    ftr reads the backend to its end and waits for it, whatever happens to the log or the console."""
    env = {**os.environ, **expand_env(p.launch.env)}
    try:
        proc = subprocess.Popen(p.launch.argv, cwd=p.run_dir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                pass_fds=(p.lock.fd,) if p.lock is not None else (),
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    except OSError as exc:
        raise FtrError(f"{p.launch.argv[0]}: cannot start the backend: {exc.strerror}; check its environment "
                       f"(`ftr backend install`)", exit_code=2) from None
    stopper = Stopper(proc)
    previous = {s: signal.signal(s, stopper.forward) for s in STOP_SIGNALS}
    try:
        sinks, import_error = _tee(proc, log_path)
        code = proc.wait()
    finally:
        stopper.cancel()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if code < 0:  # killed by a signal: report it the shell's way
        code = 128 - code
    errors = [f"{s.name}: {s.error}" for s in sinks if s.error not in (None, "closed")]
    for error in errors:
        note(f"ftr: could not write the backend's output to {error}; the training went on")
    return Outcome(code, stopper.interrupted, errors, import_error)


IMPORT_ERRORS = (b"ModuleNotFoundError: ", b"ImportError: ")


def _tee(proc: subprocess.Popen, log_path: Path) -> tuple[list[Sink], bool]:
    """Copy the backend's output to the log, stdout and (as progress lines) stderr until it closes it; whether
    it reported an import error."""
    try:
        log_file = log_path.open("ab")
    except OSError as exc:
        log_file, log_error = None, exc.strerror
    else:
        log_error = None
    log = Sink(str(log_path), log_file)
    log.error = log_error or log.error
    console, progress_out = Sink("stdout", _console_stdout(), console=True), Sink("stderr", sys.stderr, console=True)
    progress, import_error = Progress(), False
    try:
        for chunk in iter(proc.stdout.readline, b""):
            import_error = import_error or any(word in chunk for word in IMPORT_ERRORS)
            log.write(chunk)
            console.write(chunk)
            line = progress.feed(chunk.decode("utf-8", "replace"))
            if line:
                progress_out.write(line + "\n")
    finally:
        if log_file is not None:
            _close_quietly(log_file)
    return [log, console, progress_out], import_error


def _close_quietly(handle) -> None:
    try:
        handle.close()
    except OSError:  # the last flush of a full disk; its error is already recorded
        pass


class Stopper:
    """Forwards stop signals to the backend's process group and escalates to SIGKILL after the grace period."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.interrupted, self.timer = proc, False, None

    def forward(self, signum, _frame) -> None:
        self.interrupted = True
        self._signal(signal.SIGTERM if signum == signal.SIGHUP else signum)
        if self.timer is None:
            import threading

            grace = float(os.environ.get("FTR_STOP_GRACE", STOP_GRACE))
            self.timer = threading.Timer(grace, self._signal, (signal.SIGKILL,))
            self.timer.daemon = True
            self.timer.start()

    def _signal(self, signum) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def _die_with_parent() -> None:
    """In the backend's process: get SIGTERM when ftr dies (kill -9), so that no trainer outlives its owner."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Progress:
    """Turns the backend's tqdm bars and Trainer log dicts into one short ftr progress line."""

    BAR = re.compile(r"(\d+)/(\d+) \[[^<\]]*<([^,\]]+)")
    LOSS = re.compile(r"'loss': '?([0-9.eE+-]+|nan|inf)'?")

    def __init__(self) -> None:
        self.step = self.total = None
        self.eta = "?"
        self.loss = None

    def feed(self, text: str) -> str | None:
        for part in text.split("\r"):
            bar = self.BAR.search(part)
            if bar:
                self.step, self.total, self.eta = int(bar.group(1)), int(bar.group(2)), bar.group(3).strip()
            loss = self.LOSS.search(part)
            if loss:
                self.loss = loss.group(1)
                if self.step is not None:
                    return f"ftr: step {self.step}/{self.total}  loss {self.loss}  eta {self.eta}"
        return None


def read_run_manifest(run_dir: Path) -> dict:
    """``RUN_DIR/manifest.json`` as ``ftr run`` wrote it; FtrError naming the file when it is not one."""
    path = run_dir / MANIFEST
    hint = "give the run directory of an `ftr run` (output.dir), which holds its manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FtrError(f"{path}: no such file; {hint}", exit_code=2) from None
    except OSError as exc:
        raise FtrError(f"{path}: cannot read: {exc.strerror}", exit_code=2) from None
    except ValueError as exc:
        raise FtrError(f"{path}: not valid JSON ({exc}); {hint}", exit_code=1) from None
    if not isinstance(manifest, dict) or manifest.get("backend") not in backends.NAMES:
        raise FtrError(f"{path}: not an `ftr run` manifest (no known \"backend\"); {hint}", exit_code=1)
    return manifest


def _run_config(run_dir: Path, backend: str) -> dict:
    import yaml

    path = run_dir / backends.get(backend).main
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as exc:
        raise FtrError(f"{path}: cannot read: {exc.strerror}", exit_code=2) from None
    except yaml.YAMLError as exc:
        raise FtrError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})", exit_code=1) from None
    if not isinstance(cfg, dict):
        raise FtrError(f"{path}: not a {backend} config (expected a mapping)", exit_code=1)
    return cfg


def run_target(manifest: dict) -> dict[str, str]:
    """The backend version a recorded run used, for ``backends.targeting`` (empty when ftr cannot target it)."""
    backend, version = manifest["backend"], manifest.get("backend_version")
    return {backend: version} if version in backends.get(backend).versions else {}


def merge(run_dir: Path, out: Path | None) -> int:
    """Merge the adapter of ``run_dir`` (the folder given, wherever the run was compiled) into its base model;
    refused while the run is live. The merged model appears at ``out`` whole or not at all."""
    from .runlock import acquire_existing

    run_dir = run_dir.resolve()
    manifest = read_run_manifest(run_dir)
    lock = acquire_existing(run_dir, "merge")  # a live run (training, resuming) owns its folder
    try:
        with backends.targeting(run_target(manifest)):  # the environment of the version that trained it
            return _merge(run_dir, manifest, out)
    finally:
        if lock is not None:
            lock.release()


def _merge(run_dir: Path, manifest: dict, out: Path | None) -> int:
    backend = manifest["backend"]
    cfg = rebase(_run_config(run_dir, backend), compiled_dir(run_dir, manifest), run_dir)
    python = backend_python(backend)
    target = (out or run_dir / "merged").resolve()
    if target.exists() and any(target.iterdir()):
        raise FtrError(f"{target} is not empty; choose another -o", exit_code=2)
    _check_adapter(run_dir, manifest)
    work = _work_dir(target)
    try:
        code, produced = _merge_in(work, python, backend, run_dir, cfg)
        if code != 0:
            note(f"ftr: the merge failed (exit status {code}); nothing was written to {target}")
            return code
        _place(produced, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _carry_merged(run_dir, target)
    note(f"ftr: merged model in {target}")
    return 0


def _merge_in(work: Path, python: Path, backend: str, run_dir: Path, cfg: dict) -> tuple[int, Path]:
    """Run the backend's merge with everything it writes inside ``work``: its own copy of the config (whose
    run-folder paths point into ``work/run``) and the merged model. Returns its exit code and the model's folder."""
    main = backends.get(backend).main
    config_dir, scratch, out = work / "config", work / "run", work / "out"
    config_dir.mkdir()
    scratch.mkdir()
    copy = rebase(cfg, run_dir, scratch)
    atomic_write(config_dir / main, json.dumps(copy, indent=2) + "\n" if main.endswith(".json") else to_yaml(copy))
    try:
        job = backends.launcher(backend).merge(python, config_dir, cfg, out)
    except KeyError as exc:
        raise FtrError(f"{run_dir / main}: has no {exc.args[0]!r}; is it a LoRA run?", exit_code=1) from None
    try:
        code = subprocess.run(job.argv, env={**os.environ, **expand_env(job.env)}, cwd=work).returncode
    except OSError as exc:
        raise FtrError(f"{job.argv[0]}: cannot start: {exc.strerror}; reinstall with `ftr backend install "
                       f"{backend}`", exit_code=2) from None
    if job.produces is None:
        return code, out
    produced = job.produces.resolve()  # named in the run folder's terms; written where the copy points
    return code, scratch / produced.relative_to(run_dir) if produced.is_relative_to(run_dir) else produced


def compiled_dir(run_dir: Path, manifest: dict) -> Path:
    """The run folder the configs were compiled for (the run may have been moved aside or copied since)."""
    import yaml

    if manifest.get("run_dir"):
        return Path(manifest["run_dir"])
    try:
        resolved = yaml.safe_load((run_dir / "recipe.resolved.yaml").read_text(encoding="utf-8"))
        return Path(resolved["output"]["dir"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return run_dir


def rebase(value, old: Path, new: Path):
    """``value`` with every path string inside ``old`` moved to the same place inside ``new``."""
    if isinstance(value, dict):
        return {k: rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rebase(v, old, new) for v in value]
    if isinstance(value, str) and value.startswith(str(old)):
        rest = value[len(str(old)):]
        if rest == "" or rest.startswith("/"):
            return str(new) + rest
    return value


def _check_adapter(run_dir: Path, manifest: dict) -> None:
    if (run_dir / "adapter_config.json").is_file():
        return
    if manifest.get("exit_status") == 0 and not manifest.get("interrupted"):
        raise FtrError(f"{run_dir} holds no LoRA adapter (adapter_config.json); only a LoRA run can be merged",
                       exit_code=1)
    how = ("was interrupted" if manifest.get("interrupted") else "has no end (its ftr process died)"
           if manifest.get("end") is None else f"failed (exit status {manifest.get('exit_status')})")
    raise FtrError(f"{run_dir} holds no adapter to merge: the run {how} before saving it; continue it with "
                   f"`ftr run {quote(str(manifest.get('recipe', 'RECIPE')))} --resume` (its checkpoints stay)",
                   exit_code=1)


def _work_dir(target: Path) -> Path:
    """A scratch folder beside ``target``, so that the finished model is renamed into place."""
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.merging-", dir=target.parent))
    except OSError as exc:
        raise FtrError(f"cannot write beside {target}: {exc.strerror}; pass -o DIR on a writable disk",
                       exit_code=2) from None


def _place(produced: Path, target: Path) -> None:
    try:
        os.rename(produced, target)  # replaces an empty target folder
    except OSError as exc:
        raise FtrError(f"cannot move the merged model to {target}: {exc.strerror}", exit_code=2) from None


def _carry_merged(run_dir: Path, target: Path) -> None:
    """The merged model's tokenizer carries the template the run's tokenizer carries (the one trained)."""
    from . import templates

    text = templates.saved_chat_template(str(run_dir))
    if text is not None:
        templates.carry(target, text)
