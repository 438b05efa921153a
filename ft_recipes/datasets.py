"""Reading local dataset rows (first N only) and rewriting them into one canonical chat form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from .recipe import Dataset

READABLE = (".jsonl", ".json")


def iter_rows(path: Path, limit: int | None = None) -> Iterator[dict]:
    """Rows of a .jsonl or .json file (a list of objects). Raises ValueError with a readable reason."""
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


def preference_to_messages(row: dict, ds: Dataset) -> dict:
    """One preference row (prompt + chosen/rejected strings) -> messages + chosen/rejected turns."""
    prompt = _join(row.get(ds.column("instruction")) or row.get(ds.column("prompt")) or "",
                   row.get(ds.column("input")) or "")
    messages = []
    system = row.get(ds.column("system"))
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return {"messages": messages,
            "chosen": {"role": "assistant", "content": row.get(ds.column("chosen")) or ""},
            "rejected": {"role": "assistant", "content": row.get(ds.column("rejected")) or ""}}


def preference_to_conversational(row: dict, ds: Dataset) -> dict:
    """One preference row -> trl's conversational form (prompt turns; chosen/rejected as one reply turn each).
    trl renders prompt + reply with the chat template, so each reply keeps its whole end of turn."""
    pair = preference_to_messages(row, ds)
    return {"prompt": pair["messages"], "chosen": [pair["chosen"]], "rejected": [pair["rejected"]]}


def preference_to_conversations(row: dict, ds: Dataset) -> dict:
    """One preference row -> Argilla-style full conversations (Axolotl's ORPO ``chat_template.argilla``)."""
    pair = preference_to_messages(row, ds)
    system = [m for m in pair["messages"] if m["role"] == "system"]
    user = pair["messages"][-1]
    out = {"prompt": user["content"], "chosen": [user, pair["chosen"]], "rejected": [user, pair["rejected"]]}
    if system:
        out["system"] = system[0]["content"]
    return out
