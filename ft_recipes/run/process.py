"""Running the backend: the process, its log and console, stop signals, the manifest as it goes."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ft_recipes import __version__, backends
from ft_recipes.backends.emitted import recipe_hash
from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.loaded import Loaded
from ft_recipes.run.console import Sink, _console_stdout, note
from ft_recipes.run.manifest import (
    _now,
    _record_failure,
    _save_final,
    attempt_of,
    earlier_attempts,
    previous_manifest,
    save_manifest,
)
from ft_recipes.run.plan import RunPlan, _probe


def execute(p: RunPlan, loaded: Loaded, backend: str, argv: list[str]) -> int:
    return execute_manifest(p, new_manifest(p, loaded, backend, argv))


def new_manifest(p: RunPlan, loaded: Loaded, backend: str, argv: list[str]) -> dict:
    """The manifest of a run not started yet (``start`` is None)."""
    from ft_recipes.backends.envs import installed_version

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


def carry_template(run_dir: Path, backend: str, name: str | None) -> dict:
    """The saved tokenizers of a finished run (the run directory, its ``merged/``) carry the chat template it
    trained with: ftr writes it where the backend does not; the manifest records which and where."""
    from ft_recipes.recipe import templates

    text = backends.get(backend).served_template(name)
    written = [d.name if d != run_dir else "." for d in (run_dir, run_dir / "merged")
               if text is not None and templates.carry(d, text)]
    return {"template": name, "source": "ftr" if text is not None else backend, "written": written,
            "sha256": hashlib.sha256(text.encode()).hexdigest() if text is not None else None}


def _final_report(run_dir: Path) -> None:
    from ft_recipes.insight.report import diagnose, read_curves

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
    from ft_recipes.lint.options import from_project
    from ft_recipes.lint.pack import load_pack

    recipe = previous_manifest(run_dir).get("recipe")
    try:
        return load_pack(from_project(Path(recipe).parent if recipe else None).rule_packs).get("rules")
    except (FtrError, OSError, ValueError):
        return None


def expand_env(changes: dict[str, str]) -> dict[str, str]:
    """Environment changes with ``$PATH`` replaced by the current PATH."""
    return {k: v.replace("$PATH", os.environ.get("PATH", "")) for k, v in changes.items()}


STOP_GRACE = 30.0  # seconds between forwarding a stop signal and SIGKILL (FTR_STOP_GRACE overrides)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Outcome:
    code: int
    interrupted: bool
    output_errors: list[str]
    import_error: bool = False  # the backend said ImportError / ModuleNotFoundError: its environment may be damaged


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
