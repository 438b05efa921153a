"""``ftr tokens``: how a backend renders and tokenizes the first rows of a recipe's data, with its own
preprocessing in its own environment, and a row-by-row comparison of two backends."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ft_recipes import backends
from ft_recipes.backends.emitted import write_outputs
from ft_recipes.backends.tokens_rows import PREFIX  # the backends' helpers print their rows after it
from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.loaded import Loaded
from ft_recipes.recipe.model import Recipe

IGNORE = -100


@dataclass(frozen=True)
class Row:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    tokens: tuple[str, ...]
    part: str = ""  # preference pairs: "chosen" or "rejected" (prompt + that response); KTO: "desirable"...
    eos: str = ""  # the tokenizer's EOS token and its id, as the backend set the tokenizer up
    eos_id: int | None = None

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
            results[job] = [Row(tuple(r["input_ids"]), tuple(r["labels"]), tuple(r["tokens"]), r.get("part", ""),
                                r.get("eos") or "", r.get("eos_id")) for r in rows]
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
    from ft_recipes.recipe.modelinfo import model_dir

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


# --- the end of turn is trained (FTR212) -----------------------------------------------------------------------

EOS_ROWS = 20  # rows of each dataset run through a backend's preprocessing for the end-of-turn check


@dataclass
class Ends:
    """One backend's verdict on the end of the assistant turns of a recipe's first rows: ``turns`` trained turns
    seen, ``missed`` of them whose end-of-turn token is not trained, the first few as (row label, detail)."""

    backend: str
    ends: tuple[str, ...]  # the end-of-turn tokens looked for (the tokenizer's EOS, the template's end of turn)
    rows: int = 0
    turns: int = 0
    missed: int = 0
    examples: list = field(default_factory=list)


def end_tokens(recipe: Recipe, rows: list[Row]) -> tuple[str, ...]:
    """The tokens that end an assistant turn: the EOS of the tokenizer the backend set up, and the end of turn of
    the recipe's template (ChatML's ``<|im_end|>``, Llama 3's ``<|eot_id|>``) when ftr knows the template."""
    from ft_recipes.recipe.templates import EOS_UNKNOWN, after_reply, reference

    eos = next((row.eos for row in rows if row.eos), "")
    found = [eos] if eos else []
    template = reference(recipe.model.template)
    if template is not None:
        end, rest = after_reply(template, eos or None)
        special = _SPECIAL.match(rest)  # an end of turn the template writes as text: "\n<|EOT|>\n"
        for token in (end, special and special.group(1)):
            if token and token != EOS_UNKNOWN and token not in found:
                found.append(token)
    return tuple(found)


_SPECIAL = re.compile(r"^\s*(<[^<>\s]+>)")


def _blank(token: str) -> bool:
    """A token of whitespace only (byte-level BPE spells a newline \u010a and a space \u0120, SentencePiece a space
    \u2581): what a template writes after the end-of-turn token, trained or not."""
    return not token.replace("\u010a", "").replace("\u0120", "").replace("\u2581", "").strip()


def untrained_ends(backend: str, rows: list[Row], ends: tuple[str, ...], max_length: int) -> Ends:
    """Each trained span of each row (an assistant turn, or several when the prompt is trained too) must end with
    an end-of-turn token, perhaps followed by whitespace: a span that does not is a turn whose end the model never
    learns to write. A span cut at ``max_length`` is not judged (FTR211 reports those rows)."""
    result = Ends(backend, ends, rows=len(rows))
    if not ends:
        return result
    for k, row in enumerate(rows):
        trained, length = row.trained, len(row.labels)
        start = None
        for pos in range(length + 1):
            inside = pos < length and trained[pos]
            if inside and start is None:
                start = pos
            elif not inside and start is not None:
                _judge(result, rows, k, row, start, pos, ends, cut=pos == length and length >= max_length)
                start = None
    return result


def _judge(result: Ends, rows: list[Row], k: int, row: Row, start: int, stop: int, ends: tuple[str, ...],
           cut: bool) -> None:
    if cut:
        return
    result.turns += 1
    last = stop - 1
    while last > start and row.labels[last] == row.input_ids[last] and _blank(row.tokens[last]):
        last -= 1
    if _is_end(row, last, ends):
        return
    result.missed += 1
    if len(result.examples) < 3:
        after = row.tokens[stop] if stop < len(row.tokens) else None
        detail = (f"{after!r} after the answer is masked" if after in ends else
                  f"the trained tokens end with {row.tokens[last]!r}, and no end-of-turn token follows")
        result.examples.append((label(rows, k), detail))


def _is_end(row: Row, pos: int, ends: tuple[str, ...]) -> bool:
    """Whether the label at ``pos`` is an end-of-turn token: the input token itself, or the EOS id placed in the
    labels at another input token (LLaMA-Factory's efficient_eos templates train the EOS of a turn at the first
    token of the next)."""
    if row.eos_id is not None and row.labels[pos] == row.eos_id:
        return True
    return row.labels[pos] == row.input_ids[pos] and row.tokens[pos] in ends


_ENDS: dict = {}  # (backend, key of the recipe and its data) -> Ends or FtrError, this process


def _ends_key(backend: str, recipe: Recipe) -> str:
    """The recipe (every value: template, masking, max_length...) and the size and time of its local data files."""
    import hashlib

    stamps = []
    for ds in recipe.data.train:
        path = getattr(ds, "path", None)
        if path is not None and Path(path).is_file():
            stat = Path(path).stat()
            stamps.append((str(path), stat.st_size, stat.st_mtime_ns))
    version = backends.get(backend).env_spec().version
    return hashlib.sha256(repr((backend, version, recipe, stamps)).encode()).hexdigest()[:32]


def _ends_cache(key: str) -> Path:
    from ft_recipes.backends.envs import cache_root

    return cache_root().parent / "ends" / f"{key}.json"


def check_ends(backend: str, recipe: Recipe, rows: int = EOS_ROWS, timeout: float = TIMEOUT_S) -> Ends | FtrError:
    """Run the first ``rows`` rows of ``recipe`` through ``backend``'s own preprocessing (``ftr tokens``) and judge
    the end of each trained turn; the verdict is kept on disk by recipe and data, for ``cached_ends``."""
    try:
        tokenized = tokenize_each(backend, rows, [recipe], timeout)[0]
    except FtrError as exc:  # no environment for it
        return exc
    if isinstance(tokenized, FtrError):
        _ENDS[_ends_key(backend, recipe)] = tokenized
        return tokenized
    verdict = untrained_ends(backend, tokenized, end_tokens(recipe, tokenized), recipe.data.max_length)
    remember_ends(recipe, verdict)
    return verdict


def remember_ends(recipe: Recipe, verdict: Ends, persist: bool = True) -> None:
    """Keep ``verdict`` for ``cached_ends``: in this process, and (``persist``) on disk."""
    key = _ends_key(verdict.backend, recipe)
    _ENDS[key] = verdict
    if not persist:
        return
    try:
        path = _ends_cache(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdict.__dict__), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # the cache is a convenience: lint then stays silent until the next `ftr data`


def cached_ends(backend: str, recipe: Recipe) -> Ends | None:
    """The verdict of the last ``check_ends`` on this recipe and data (this process, else the disk cache), or None:
    ``ftr lint`` reports it without starting a backend."""
    key = _ends_key(backend, recipe)
    if key in _ENDS:
        found = _ENDS[key]
        return found if isinstance(found, Ends) else None
    try:
        data = json.loads(_ends_cache(key).read_text(encoding="utf-8"))
        data["ends"] = tuple(data["ends"])
        data["examples"] = [tuple(e) for e in data["examples"]]
        return Ends(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None
