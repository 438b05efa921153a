"""Planning a run: the run folder (resume, --force, checkpoints), the machine, the command and its dry run."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from ft_recipes import backends
from ft_recipes.backends import backend_python
from ft_recipes.backends.emitted import atomic_write, deepspeed_file, recipe_hash, to_yaml, write_outputs
from ft_recipes.backends.interface import Launch, LaunchOptions
from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.recipe.loaded import Loaded
from ft_recipes.recipe.model import Recipe
from ft_recipes.recipe.normalise import to_data
from ft_recipes.run.console import note
from ft_recipes.run.manifest import MANIFEST, previous_manifest
from ft_recipes.run.runlock import LOCK, RunLock


@dataclass(frozen=True)
class RunRequest:
    """What a command asked of one run, built once (by `ftr run`, a submitted run or a pipeline's stage) and
    passed down whole instead of a chain of parameters."""

    backend: str
    opts: LaunchOptions
    resume: bool = False
    force: bool = False
    dry_run: bool = False
    allow_changed: bool = False  # resume although the recipe changed since the run started
    no_lint: bool = False
    launcher: str = "local"
    attach: bool = False  # a submitted run: follow it to its end
    ray_address: str | None = None


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


def plan(loaded: Loaded, request: RunRequest) -> RunPlan:
    """Compile into the run directory, which this process then owns (``RunPlan.lock``) unless a dry run.
    ``resume`` of a run whose recipe changed since it started is refused unless ``allow_changed``."""
    run_dir = loaded.recipe.output.dir
    _check_run_dir(run_dir, loaded.recipe)
    if request.dry_run:
        return _plan(loaded, request, None)
    lock = _own(run_dir)
    try:
        if request.resume and not request.allow_changed:
            check_same_recipe(run_dir, loaded.recipe)
        return _plan(loaded, request, lock)
    except BaseException:  # a refused or failed plan gives the folder back at once (a pipeline goes on living)
        lock.release()
        raise


def _plan(loaded: Loaded, request: RunRequest, lock: RunLock | None) -> RunPlan:
    backend, opts, resume, force, dry_run = request.backend, request.opts, request.resume, request.force, \
        request.dry_run
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
    for fidelity in (n for n in emitted.notes if not n.cross):  # `ftr compile`'s notes: what it carries
        print(f"ftr: {fidelity.text(backend)}", file=sys.stderr)
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


def _own(run_dir: Path) -> RunLock:
    from ft_recipes.run.runlock import acquire

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
