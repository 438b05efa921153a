"""Reading local dataset rows (first N only) and rewriting them into one canonical chat form."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from ft_recipes.recipe.model import Dataset


def iter_rows(path: Path, limit: int | None = None) -> Iterator[dict]:
    """Rows of a .jsonl or .json file (a list of objects). Raises ValueError with a readable reason."""
    from ft_recipes.recipe.load import file_kind

    kind = file_kind(path)
    if kind not in ("file", "no such file"):  # never block on a FIFO or read a device
        raise ValueError(f"{kind}; ftr reads rows from regular files")
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            count = 0
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number}: not JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"line {number}: a row must be a JSON object")
                yield row
                count += 1
                if limit is not None and count >= limit:
                    return
    elif path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ValueError("a .json dataset must hold a list of rows")
        yield from rows[:limit] if limit is not None else rows
    else:
        raise ValueError(f"ftr reads .jsonl and .json rows; {path.suffix} is passed to the backend as is")


SPLIT = re.compile(r"^(\w+)(?:\[(\d*):(\d*)\])?$")  # a split name, optionally sliced by row numbers


def first_rows_split(ds: Dataset) -> str | None:
    """The split expression of ``datasets.load_dataset`` that reads the first ``num_samples`` rows of ``ds.split``
    (``train[:100]``; a slice already there is narrowed), the way both backends load a dataset. None when the
    split is an expression this cannot narrow (percentages)."""
    if not ds.num_samples:
        return ds.split
    match = SPLIT.match(ds.split)
    if match is None:
        return None
    name, start, end = match.groups()
    first = int(start or 0)
    stop = first + ds.num_samples if not end else min(int(end), first + ds.num_samples)
    return f"{name}[{first}:{stop}]" if first else f"{name}[:{stop}]"


def _join(instruction: str, extra: str) -> str:
    return f"{instruction}\n{extra}" if instruction and extra else (instruction or extra)


def alpaca_to_messages(row: dict, ds: Dataset) -> dict:
    """One alpaca row -> {"messages": [...]}, joined the way LLaMA-Factory joins instruction and input."""
    messages = []
    system = row.get(ds.column("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for old_prompt, old_response in row.get(ds.column("history")) or []:
        messages += [{"role": "user", "content": old_prompt}, {"role": "assistant", "content": old_response}]
    prompt = _join(row.get(ds.column("instruction")) or "", row.get(ds.column("input")) or "")
    messages += [{"role": "user", "content": prompt},
                 {"role": "assistant", "content": row.get(ds.column("output")) or ""}]
    return {"messages": messages}


ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
         "observation": "tool", "function_call": "assistant", "tool": "tool"}


def _turn(turn, ds: Dataset) -> dict:
    """One turn of a sharegpt (from/value) or OpenAI (role/content) conversation -> {"role", "content"}."""
    if not isinstance(turn, dict):
        return {"role": "assistant", "content": "" if turn is None else str(turn)}
    role_key = ds.column("role") if ds.column("role") in turn else "from" if "from" in turn else "role"
    content_key = ds.column("content") if ds.column("content") in turn else "value" if "value" in turn else "content"
    role = str(turn.get(role_key, "user"))
    return {"role": role_names(ds).get(role, role), "content": turn.get(content_key) or ""}


def role_names(ds: Dataset) -> dict[str, str]:
    """Role name in the file -> standard role: the usual names, and the dataset's own user/assistant names
    (``columns: {user: prompter, assistant: bot}``, LLaMA-Factory's user_tag/assistant_tag)."""
    columns = dict(ds.columns)
    return {**ROLES, **{columns[std]: std for std in ("user", "assistant") if std in columns}}


def _answer(value, ds: Dataset) -> dict:
    """A chosen/rejected answer: a string, one message object, or a list whose last turn is the answer."""
    if isinstance(value, list):
        value = value[-1] if value else ""
    if isinstance(value, dict):
        return {**_turn(value, ds), "role": "assistant"}
    return {"role": "assistant", "content": value or ""}


def preference_to_messages(row: dict, ds: Dataset) -> dict:
    """One preference row -> messages + chosen/rejected turns. The prompt is a string (alpaca pairs: prompt or
    instruction, plus input) or a conversation (LLaMA-Factory's sharegpt pairs: a list of turns, and message
    objects as chosen/rejected)."""
    prompt = row.get(ds.column("prompt"))
    messages = []
    system = row.get(ds.column("system"))
    if system:
        messages.append({"role": "system", "content": system})
    if isinstance(prompt, list):
        messages += [_turn(turn, ds) for turn in prompt]
    else:
        messages.append({"role": "user", "content": _join(row.get(ds.column("instruction")) or prompt or "",
                                                          row.get(ds.column("input")) or "")})
    return {"messages": messages, "chosen": _answer(row.get(ds.column("chosen")), ds),
            "rejected": _answer(row.get(ds.column("rejected")), ds)}


def preference_to_conversational(row: dict, ds: Dataset) -> dict:
    """One preference row -> trl's conversational form (prompt turns; chosen/rejected as one reply turn each).
    trl renders prompt + reply with the chat template, so each reply keeps its whole end of turn."""
    pair = preference_to_messages(row, ds)
    return {"prompt": pair["messages"], "chosen": [pair["chosen"]], "rejected": [pair["rejected"]]}


def chat_to_messages(row: dict, ds: Dataset) -> list[dict]:
    """A sharegpt or messages row -> its turns as {"role", "content"}, the system column first when it has one."""
    default = "conversations" if ds.format == "sharegpt" else "messages"
    column = ds.column("messages") if "messages" in dict(ds.columns) else default
    system = row.get(ds.column("system")) if "system" in dict(ds.columns) else None
    turns = [_turn(turn, ds) for turn in row.get(column) or []]
    return ([{"role": "system", "content": system}] if system else []) + turns


def kto_to_conversational(row: dict, ds: Dataset) -> dict:
    """One KTO row (a conversation whose last turn is the rated reply, and its kto_tag) -> trl's unpaired
    conversational form: the prompt turns, the reply as the completion, the label (True: desirable)."""
    messages = alpaca_to_messages(row, ds)["messages"] if ds.format == "alpaca" else chat_to_messages(row, ds)
    return {"prompt": messages[:-1], "completion": messages[-1:], "label": row.get(ds.column("kto_tag")) is True}


def preference_to_bradley_terry(row: dict, ds: Dataset) -> dict | None:
    """One preference row -> the flat form of Axolotl's reward-model strategy (``bradley_terry.chat_template``:
    system, input, chosen, rejected strings); None when the prompt has more than one user turn."""
    pair = preference_to_messages(row, ds)
    turns = [m for m in pair["messages"] if m["role"] != "system"]
    if len(turns) != 1 or turns[0]["role"] != "user":
        return None
    system = next((m["content"] for m in pair["messages"] if m["role"] == "system"), "")
    return {"system": system, "input": turns[0]["content"], "chosen": pair["chosen"]["content"],
            "rejected": pair["rejected"]["content"]}


def preference_to_conversations(row: dict, ds: Dataset) -> dict:
    """One preference row -> Argilla-style full conversations (Axolotl's ORPO ``chat_template.argilla``)."""
    pair = preference_to_messages(row, ds)
    system = [m for m in pair["messages"] if m["role"] == "system"]
    turns = [m for m in pair["messages"] if m["role"] != "system"]
    out = {"prompt": turns[-1]["content"], "chosen": turns + [pair["chosen"]], "rejected": turns + [pair["rejected"]]}
    if system:
        out["system"] = system[0]["content"]
    return out


# Where the backend will run: native configs resolve dataset, dataset_dir and DeepSpeed paths against the
# working directory of the backend (both LLaMA-Factory and Axolotl do), not against the config's folder.
_RUN_DIR: ContextVar[Path | None] = ContextVar("ftr_run_dir", default=None)
_DATASET_DIR: ContextVar[str | None] = ContextVar("ftr_dataset_dir", default=None)


def run_dir() -> Path:
    """The directory the backend is run from: the one set by ``running_from``, else the working directory."""
    return _RUN_DIR.get() or Path.cwd()


def run_dir_given() -> bool:
    return _RUN_DIR.get() is not None


def dataset_dir_override() -> str | None:
    """A dataset-registry directory given on the command line, over the one the config names."""
    return _DATASET_DIR.get()


@contextmanager
def running_from(directory: str | Path | None = None, dataset_dir: str | None = None):
    """Resolve native paths as a backend run from ``directory`` (and, if given, with ``dataset_dir``) would."""
    tokens = (_RUN_DIR.set(Path(directory).resolve() if directory else None), _DATASET_DIR.set(dataset_dir))
    try:
        yield
    finally:
        _RUN_DIR.reset(tokens[0])
        _DATASET_DIR.reset(tokens[1])


def resolve_local(value: str | Path) -> Path:
    """A path as the backend resolves it: absolute as written, else relative to ``run_dir()``."""
    from ft_recipes.core.paths import real_path

    path = Path(value).expanduser()
    return path if path.is_absolute() else real_path(run_dir() / path)


# What an importer learnt about a path while resolving it as the backend does, for the lint rules:
# "unchecked" (not resolvable here: a missing file is not an error), "undefined" (the backend's registry does
# not define the dataset: an error), "no_registry" (the registry is missing or unreadable where the backend looks:
# an error), "rows" (rows in a backend format ftr does not read: not judged).
_NOTES: dict[tuple[str, str], str] = {}


def note_path(path: Path, kind: str, reason: str) -> None:
    _NOTES[(kind, str(path))] = reason


def path_note(path: Path, kind: str) -> str | None:
    return _NOTES.get((kind, str(path)))
