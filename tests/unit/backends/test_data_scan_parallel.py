"""A large .jsonl file read in parts by several processes gives exactly the figures of one reading: rows, every
issue with its first lines, duplicates (also across parts) with the lines they repeat, lengths, keys, leakage."""

from __future__ import annotations

import json
import random

import pytest

from ft_recipes.backends import datacheck
from ft_recipes.recipe.model import Dataset

WORDS = ["tea", "Tea", "sun", "moon ", "río", "x\ty", ""]


def alpaca(rng: random.Random, i: int) -> str:
    row = {"instruction": f"{rng.choice(WORDS)} {i % 50}", "output": rng.choice(WORDS)}  # i % 50: repeats
    if rng.random() < 0.05:
        row = {"prompt": "another format", "completion": "x"}
    elif rng.random() < 0.03:
        row["input"] = 3
    return json.dumps(row)


def sharegpt(rng: random.Random, i: int) -> str:
    roles = rng.choice([("human", "gpt"), ("user", "assistant"), ("gpt", "human"), ("human", "human")])
    turns = [{"from": role, "value": f"{rng.choice(WORDS)} {i % 40}"} for role in roles]
    return json.dumps({"conversations": turns} if rng.random() > 0.05 else {"text": "plain"})


def write(path, fmt: str, seed: int, n: int = 2000) -> None:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(alpaca(rng, i) if fmt == "alpaca" else sharegpt(rng, i))
        luck = rng.random()
        if luck < 0.01:
            out.append("")
        elif luck < 0.02:
            out.append('{"instruction": "cut off')
        elif luck < 0.025:
            out.append("[1, 2]")
        elif luck < 0.027:
            out.append(json.dumps({"instruction": "long " * 1000, "output": "x"}))  # over MAX_LINE, as the test sets it
    path.write_text("\n".join(out) + ("\n" if seed % 2 else ""), encoding="utf-8")


def figures(scan: datacheck.FileScan) -> dict:
    return vars(scan)


@pytest.mark.parametrize("fmt,seed", [("alpaca", 0), ("alpaca", 1), ("sharegpt", 2), ("sharegpt", 3)])
def test_parts_and_one_reading_agree(fmt, seed, tmp_path, monkeypatch):
    path = tmp_path / "train.jsonl"
    write(path, fmt, seed)
    if seed % 2:
        monkeypatch.setattr(datacheck, "NUMPY_FROM", 0)  # duplicates found with numpy where it is installed
    monkeypatch.setattr(datacheck, "BLOCK", 1024)  # blocks of a few rows: both bulk and row by row paths
    monkeypatch.setattr(datacheck, "MAX_LINE", 3000)  # long lines, some across parts' first guesses
    monkeypatch.setattr(datacheck, "_cpus", lambda: 2)
    ds = Dataset(format=fmt, path=path)
    assert datacheck._workers() == 2  # the parts are read by processes (nothing here stops a fork)
    one = datacheck._scan(ds, None)
    parts = datacheck._scan(ds, None, part=4096, parallel_from=0)  # about 30 parts
    assert figures(parts) == figures(one)
    assert one.duplicates.count > 100 and one.bad_rows > 10
    assert fmt != "sharegpt" or one.drops
    val = Dataset(format=fmt, path=tmp_path / "val.jsonl")
    write(val.path, fmt, seed + 10, 300)
    assert datacheck.leaks([parts], datacheck._scan(val, None)) == datacheck.leaks([one], datacheck._scan(val, None))


def test_parts_report_progress_to_the_end(tmp_path, monkeypatch):
    path = tmp_path / "train.jsonl"
    write(path, "alpaca", 1)
    monkeypatch.setattr(datacheck, "PROGRESS_BYTES", 0)
    monkeypatch.setattr(datacheck, "_cpus", lambda: 2)
    calls = []
    datacheck._scan(Dataset(format="alpaca", path=path), lambda done, size: calls.append((done, size)),
                    part=8192, parallel_from=0)
    size = path.stat().st_size
    assert len(calls) > 5 and calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_line_starts_split_at_line_starts(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"a" * 100 + b"\n" + b"b\n" * 50 + b"c" * 300)  # a line longer than a part; no final newline
    bounds = datacheck._line_starts(path, path.stat().st_size, 64)
    data = path.read_bytes()
    assert bounds[0] == 0 and bounds[-1] == len(data) and bounds == sorted(set(bounds))
    assert all(data[b - 1:b] == b"\n" for b in bounds[1:-1])
    assert bounds == [0, 101, 129, 193, 501]  # guesses 64 and 256 fall inside the long lines


def test_near_leaks_in_parts_are_those_of_one_reading(tmp_path, monkeypatch):
    rng = random.Random(5)
    vocabulary = [f"w{k}" for k in range(300)]
    train = [{"instruction": " ".join(rng.choices(vocabulary, k=12)), "output": " ".join(rng.choices(vocabulary, k=12))}
             for _ in range(3000)]
    val = [dict(train[k * 97], output=train[k * 97]["output"] + " changed") for k in range(30)]
    val += [dict(train[k * 89], output=train[k * 89]["output"] + " and more") for k in range(30)]  # a second match
    train += [dict(row, output=row["output"] + " again") for row in val]  # alike again further on: the first is named
    paths = []
    for name, rows in (("train", train), ("val", val)):
        paths.append(tmp_path / f"{name}.jsonl")
        paths[-1].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    td, vd = Dataset(format="alpaca", path=paths[0]), Dataset(format="alpaca", path=paths[1])
    ts, vs = datacheck._scan(td, None), datacheck._scan(vd, None)
    monkeypatch.setattr(datacheck, "EXAMPLES", 1000)  # every match named: all compared
    one = datacheck.near_leaks([(td, ts)], (vd, vs), 0.7)
    monkeypatch.setattr(datacheck, "PARALLEL_FROM", 0)
    monkeypatch.setattr(datacheck, "PART", 8192)
    monkeypatch.setattr(datacheck, "_cpus", lambda: 2)
    assert datacheck.near_leaks([(td, ts)], (vd, vs), 0.7) == one
    assert one.count > 40


def test_an_empty_file_in_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(datacheck, "_cpus", lambda: 2)
    for text in ("", "\n\n"):
        path = tmp_path / "empty.jsonl"
        path.write_text(text, encoding="utf-8")
        ds = Dataset(format="alpaca", path=path)
        assert figures(datacheck._scan(ds, None, part=1, parallel_from=0)) == figures(datacheck._scan(ds, None))
