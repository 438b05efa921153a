"""FTR213's near-duplicate leakage (datacheck.near_leaks) on generated files with known answers."""

from __future__ import annotations

import json
import random

from ft_recipes.backends import datacheck
from ft_recipes.recipe.model import Dataset


def words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randrange(5000)}" for _ in range(n))


def test_near_duplicates_found_exact_repeats_left_to_ftr208(tmp_path):
    rng = random.Random(0)
    train = [{"instruction": words(rng, 20), "output": words(rng, 20)} for _ in range(5000)]
    val = [{"instruction": words(rng, 20), "output": words(rng, 20)} for _ in range(300)]
    for k in range(12):  # the last word of the answer changed: 2 of 39 3-grams differ (Jaccard 37/41, 90%)
        row = dict(train[k * 400])
        row["output"] = row["output"].rsplit(" ", 1)[0] + " changed"
        val[10 + k * 20] = row
    for k in range(5):  # exact repeats, other case and spacing
        val[k * 50 + 3] = {"instruction": train[k * 7]["instruction"].upper(), "output": "  " + train[k * 7]["output"]}
    val[299] = {"instruction": words(rng, 20), "output": words(rng, 20)}
    paths = {}
    for name, rows in (("train", train), ("val", val)):
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    td, vd = Dataset(format="alpaca", path=paths["train"]), Dataset(format="alpaca", path=paths["val"])
    ts, vs = datacheck.scan(td), datacheck.scan(vd)
    found = datacheck.near_leaks([(td, ts)], (vd, vs), 0.7)
    assert found.count == 12
    assert found.examples[0] == (11, "train.jsonl:1, 90% alike")
    assert [line for line, _ in found.examples] == [11, 31, 51]
    assert datacheck.leaks([ts], vs).count == 5
    assert datacheck.near_leaks([(td, ts)], (vd, vs), 0.95).count == 0  # 90% is below 0.95


def test_unrelated_rows_are_no_near_duplicates(tmp_path):
    rng = random.Random(1)
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"instruction": words(rng, 8), "output": words(rng, 8)}) + "\n"
                            for _ in range(2000)), encoding="utf-8")
    other = tmp_path / "b.jsonl"
    other.write_text("".join(json.dumps({"instruction": words(rng, 8), "output": words(rng, 8)}) + "\n"
                             for _ in range(200)), encoding="utf-8")
    a, b = Dataset(format="alpaca", path=path), Dataset(format="alpaca", path=other)
    assert datacheck.near_leaks([(a, datacheck.scan(a))], (b, datacheck.scan(b)), 0.7).count == 0


def test_shingles_ignore_case_and_spacing():
    assert datacheck.shingles("A b  C d") == datacheck.shingles("a B c\nD")
    assert datacheck.shingles("one two") == {hash(("one", "two"))}
    assert datacheck.shingles("  ") == set()
