"""The bulk path of the data scan (a block of well-formed alpaca rows counted with map()) gives exactly the figures
of the row-by-row path: rows, duplicates and the lines they name, empty answers, lengths, leakage keys."""

from __future__ import annotations

import json
import random
import sys

import pytest

from ft_recipes.backends import datacheck
from ft_recipes.recipe.model import Dataset

WORDS = ["tea", "Tea", "TEA", "sun", "  moon", "río", "ΑΣ", "x\ty", "a\nb", "", " ", "\u2003", "end "]


def rows(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        row = {"instruction": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))),
               "output": " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 2)))}
        if rng.random() < 0.5:
            row["input"] = rng.choice(WORDS + [None])
        if rng.random() < 0.1:
            row["system"] = rng.choice(WORDS + [None])
        if rng.random() < 0.02:
            row["output"] = 7  # a bad row: its block goes row by row
        out.append(json.dumps(row, ensure_ascii=rng.random() < 0.5))
        if rng.random() < 0.01:
            out.append("")  # a blank line
    return out


def figures(scan: datacheck.FileScan) -> tuple:
    return (scan.rows, scan.duplicates.count, scan.duplicates.examples, scan.bad_rows,
            {k: (v.count, v.examples) for k, v in scan.issues.items()}, list(scan.prompt_chars),
            list(scan.answer_chars), list(scan.answer_lines), list(scan.row_keys), scan.keys)


@pytest.mark.parametrize("seed", range(6))
def test_bulk_and_row_by_row_agree(seed, tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(rows(seed, 3000)) + ("\n" if seed % 2 else ""), encoding="utf-8")
    monkeypatch.setattr(datacheck, "BLOCK", 2048 << (seed % 3))  # many blocks, a row cut across two
    ds = Dataset(format="alpaca", path=path)
    bulk = datacheck._scan(ds, None)
    monkeypatch.setattr(datacheck, "_block_reader", lambda ds: None)
    one_by_one = datacheck._scan(ds, None)
    assert figures(bulk) == figures(one_by_one)
    assert bulk.duplicates.count > 100


def test_row_key_is_the_hash_of_the_normalised_text():
    rng = random.Random(1)
    for _ in range(2000):
        text = "".join(rng.choice(WORDS + [" ", "  ", "\x1f", "\xa0"]) for _ in range(rng.randint(0, 8)))
        assert datacheck.row_key(text) == hash(datacheck.norm(text))
        assert datacheck._bulk_keys([text, "a b"]) == [hash(datacheck.norm(text)), hash("a b")]


@pytest.mark.parametrize("seed", range(3))
def test_numpy_finds_the_duplicates_the_set_finds(seed, tmp_path, monkeypatch):
    pytest.importorskip("numpy")
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(rows(seed, 3000)), encoding="utf-8")
    ds = Dataset(format="alpaca", path=path)
    monkeypatch.setattr(datacheck, "NUMPY_FROM", 0)
    with_numpy = datacheck._scan(ds, None)
    monkeypatch.setattr(datacheck, "_numpy", lambda: None)
    with_set = datacheck._scan(ds, None)
    assert isinstance(with_numpy.keys, datacheck.SortedKeys) and isinstance(with_set.keys, set)
    assert figures(with_numpy) == figures(with_set)
    assert set(with_numpy.keys) == with_set.keys and len(with_numpy.keys) == len(with_set.keys)
    assert all(key in with_numpy.keys for key in with_set.keys) and 12345 not in with_numpy.keys
    val = Dataset(format="alpaca", path=tmp_path / "val.jsonl")
    val.path.write_text("\n".join(rows(seed + 1, 300)), encoding="utf-8")
    assert datacheck.leaks([with_numpy], datacheck._scan(val, None)) == datacheck.leaks([with_set],
                                                                                         datacheck._scan(val, None))


def test_the_bulk_keys_know_every_whitespace_character():
    """The bulk path takes a block as normal when it holds no whitespace but single spaces: _SPACES must be every
    character str.split() splits at (but the space), and lower-casing must make none."""
    every = [chr(c) for c in range(sys.maxunicode + 1)]
    assert {c for c in every if c.isspace()} == set(datacheck._SPACES) | {" "}
    assert not [c for c in every if not c.isspace() and any(map(str.isspace, c.lower()))]
