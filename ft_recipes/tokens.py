"""``ftr tokens``: how a backend renders and tokenizes the first rows of a recipe's data, with its own
preprocessing in its own environment, and a row-by-row comparison of two backends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import backends
from .backends.tokens_rows import PREFIX  # the backends' helpers print their rows after it
from .emit import write_outputs
from .findings import FtrError
from .pipeline import Loaded
from .recipe import Recipe

IGNORE = -100


@dataclass(frozen=True)
class Row:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    tokens: tuple[str, ...]
    part: str = ""  # preference pairs: "chosen" or "rejected" (prompt + that response); KTO: "desirable"...

    @property
    def trained(self) -> tuple[bool, ...]:
        return tuple(label != IGNORE for label in self.labels)


TIMEOUT_S = 300          # a tokenization of a few rows takes seconds; a hung hub download must not hang ftr
HUB_TIMEOUT_S = "10"     # per hub request, so that no network fails in seconds instead of retrying for minutes


def with_template(recipe: Recipe, template: str | None) -> Recipe:
    """``recipe`` under chat template ``template`` (None: its own)."""
    return recipe if template is None else replace(recipe, model=replace(recipe.model, template=template))


def tokenize_each(backend: str, n: int, recipes: list[Recipe],
                  timeout: float = TIMEOUT_S) -> list[list[Row] | FtrError]:
    """The first ``n`` rows of each recipe, all in ONE backend process (its start-up, importing torch and the
    backend, is most of the time): per recipe, its rows or why it failed. ``timeout`` is per recipe."""
    helper = backends.get(backend).tokens_helper
    if helper is None:
        raise FtrError(f"ftr tokens is not available for the {backend} backend", exit_code=2)
    python = backends.backend_python(backend)
    results: dict[int, list[Row] | FtrError] = {}  # recipe index -> its rows or why it failed
    with tempfile.TemporaryDirectory(prefix="ftr-tokens-") as tmp, _cleanup_on_sigterm():
        configs = {}  # recipe index -> compiled config
        for job, recipe in enumerate(recipes):
            try:
                model_here(recipe)
                configs[job] = _emit(recipe, backend, Path(tmp) / str(job))
            except FtrError as exc:  # not on this machine, or not compilable for this backend: the others still run
                results[job] = exc
        if configs:
            argv = [str(python), str(helper), *map(str, configs.values()), str(n)]
            code, out, err = _run(argv, _env(backend), timeout * len(configs), tmp)
            log = _save_log(backend, out, err)
            parsed = _parse(backend, out, err, code, list(configs), log, timeout * len(configs))
            results.update(parsed)
            if log.is_absolute() and not any(isinstance(r, FtrError) for r in parsed.values()):
                log.unlink(missing_ok=True)  # the log serves the error lines only
    return [results[job] for job in range(len(recipes))]


def _parse(backend: str, out: str, err: str, code: int | None, jobs: list[int], log: Path,
           timeout: float) -> dict[int, list[Row] | FtrError]:
    """The helper's output -> recipe index -> its rows or why it failed (the helper numbers its configs 0, 1, ...
    in the order of ``jobs``)."""
    if code is None:
        stopped = FtrError(f"{backend} did not finish tokenizing within {timeout:g} s (stopped; no network for a hub "
                           f"model? use a local model path); log: {log}", exit_code=2)
        return dict.fromkeys(jobs, stopped)
    lines: dict[int, list[dict]] = {}
    for line in out.splitlines():
        if line.startswith(PREFIX):
            row = json.loads(line[len(PREFIX):])
            lines.setdefault(row["job"], []).append(row)
    results: dict[int, list[Row] | FtrError] = {}
    for k, job in enumerate(jobs):
        rows = lines.get(k, [])
        failed = [r["error"] for r in rows if "error" in r]
        if failed or not rows:
            reason = failed[0] if failed else _last_error(err or out) if code != 0 else "no rows"
            results[job] = FtrError(f"{backend} could not tokenize the data: {reason}; log: {log}", exit_code=1)
        else:
            results[job] = [Row(tuple(r["input_ids"]), tuple(r["labels"]), tuple(r["tokens"]), r.get("part", ""))
                            for r in rows]
    return results


def _emit(recipe: Recipe, backend: str, folder: Path) -> Path:
    """``recipe`` compiled for ``backend`` into ``folder``; the path of its main config."""
    folder.mkdir()
    emitted = backends.get(backend).emit(recipe, folder)
    write_outputs(emitted, recipe, folder, force=True)
    return folder / emitted.main


def _run(argv: list[str], env: dict, timeout: float, cwd: str) -> tuple[int | None, str, str]:
    """Run ``argv`` in its own process group; on timeout the whole group is killed (code None)."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=cwd, start_new_session=True, errors="replace")
    except OSError as exc:
        raise FtrError(f"{argv[0]}: cannot start: {exc.strerror}", exit_code=2) from None
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return None, out, err
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextlib.contextmanager
def _cleanup_on_sigterm():
    """SIGTERM ends ftr like Ctrl-C does, so temporary folders and the child are cleaned up."""
    def stop(signum, _frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def model_here(recipe: Recipe) -> None:
    """FtrError (exit 2) at once when the recipe's model is a hub name that is not in the Hugging Face cache:
    the helpers run offline (``_env``), so they would only fail, after importing torch, or hang without network."""
    from .modelinfo import model_dir

    base = recipe.model.base
    if recipe.model.is_local or model_dir(base) is not None:
        return
    raise FtrError(f"model {base} is not on this machine (no download): give a local path as model.base, or "
                   f"download it once (`huggingface-cli download {base}`) into the Hugging Face cache", exit_code=2)


def _save_log(backend: str, out: str, err: str) -> Path:
    """The backend's full output, in a new file of this user's own (mode 0600) in the temp folder, never a fixed
    name another user could have made; the error lines point to it. An unwritable temp folder: no log."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"ftr-tokens.{backend}.", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as log:
            log.write(f"--- stdout\n{out}\n--- stderr\n{err}\n")
        return Path(name)
    except OSError:
        return Path("(none: the temp folder is not writable)")


def _last_error(text: str) -> str:
    """The backend's own one-line reason: the last line of a traceback, else the last non-empty line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _env(backend: str) -> dict:
    env = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "DISABLE_VERSION_CHECK": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # never download
    env.setdefault("HF_HUB_ETAG_TIMEOUT", HUB_TIMEOUT_S)
    env.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", HUB_TIMEOUT_S)
    return env


def render(row: Row, color: bool) -> str:
    """Tokens joined as text; trained tokens in green (or inside [[ ]] without colour)."""
    out, inside = [], False
    for token, trained in zip(row.tokens, row.trained):
        text = token.replace("\u0120", " ").replace("\u010a", "\n")
        if trained != inside:
            out.append(("\x1b[32m" if trained else "\x1b[0m") if color else ("[[" if trained else "]]"))
            inside = trained
        out.append(text)
    if inside:
        out.append("\x1b[0m" if color else "]]")
    return "".join(out)


def diff(a: list[Row], b: list[Row]) -> list[str]:
    """Human-readable differences, one per differing row; empty when identical."""
    problems = []
    if len(a) != len(b):
        problems.append(f"row count differs: {len(a)} vs {len(b)}")
    for k, (x, y) in enumerate(zip(a, b)):
        i = label(a, k)
        if x.part != y.part:  # a KTO row desirable on one backend and undesirable on the other trains the opposite
            problems.append(f"row {i}: {x.part or 'no part'} vs {y.part or 'no part'}")
        elif x.input_ids != y.input_ids:
            pos = next((k for k, (p, q) in enumerate(zip(x.input_ids, y.input_ids)) if p != q),
                       min(len(x.input_ids), len(y.input_ids)))
            problems.append(f"row {i}: token ids differ at position {pos} "
                            f"({_around(x, pos)} vs {_around(y, pos)})")
        elif x.trained != y.trained:
            pos = next(k for k, (p, q) in enumerate(zip(x.trained, y.trained)) if p != q)
            problems.append(f"row {i}: loss mask differs at position {pos} (token {x.tokens[pos]!r}: "
                            f"{'trained' if x.trained[pos] else 'masked'} vs {'trained' if y.trained[pos] else 'masked'})")  # noqa: E501
        elif x.labels != y.labels:
            pos = next(k for k, (p, q) in enumerate(zip(x.labels, y.labels)) if p != q)
            problems.append(f"row {i}: labels differ at position {pos} (token {x.tokens[pos]!r}: label "
                            f"{x.labels[pos]} vs {y.labels[pos]})")
    return problems


def label(rows: list[Row], k: int) -> str:
    """``3`` for the fourth row; ``1 (rejected)`` for one side of the second preference pair; ``3 (desirable)``
    for a KTO row."""
    if not rows[k].part:
        return str(k)
    return f"{k // 2 if rows[k].part in PAIR else k} ({rows[k].part})"


PAIR = ("chosen", "rejected")


def _around(row: Row, pos: int) -> str:
    return repr("".join(row.tokens[max(pos - 2, 0): pos + 3]))


def identity_table(loaded: Loaded, pair: tuple[str, str], templates: list[str], n: int,
                   timeout: float = TIMEOUT_S) -> list[tuple[str, str]]:
    """(template, verdict) per template: identical ids and labels, the first difference, or why it failed."""
    recipes = [with_template(loaded.recipe, name) for name in templates]
    a, b = (tokenize_each(backend, n, recipes, timeout) for backend in pair)
    table = []
    for name, x, y in zip(templates, a, b):
        failed = next((r for r in (x, y) if isinstance(r, FtrError)), None)
        if failed is not None:
            table.append((name, "error: " + str(failed).splitlines()[-1][:120]))
            continue
        problems = diff(x, y)
        table.append((name, f"{len(problems)} row(s) differ; first: {problems[0]}" if problems else "identical"))
    return table
