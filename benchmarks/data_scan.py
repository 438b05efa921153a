"""Timing of ftr's full-file data scan (ft_recipes.datacheck.scan) against reading the same JSONL with the json
module and, when installed, pyarrow's JSON reader (what datasets.load_dataset("json") uses). Run:
python benchmarks/data_scan.py [ROWS]; ratios are from the same run."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ft_recipes import datacheck  # noqa: E402
from ft_recipes.recipe import Dataset  # noqa: E402


def write(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps({"instruction": f"Explain item {i} in detail please", "input": f"context {i % 7}",
                                     "output": f"Item {i} is a thing with properties " * 5}) + "\n")


def timed(label: str, func) -> float:
    start = time.perf_counter()
    func()
    took = time.perf_counter() - start
    print(f"{label:<34} {took:6.2f} s")
    return took


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        write(path, rows)
        print(f"{rows} rows, {path.stat().st_size >> 20} MB")
        ds = Dataset(format="alpaca", path=path)
        ours = timed("ftr scan (every check)", lambda: datacheck._scan(ds, None))
        plain = timed("json.loads of every line", lambda: [json.loads(line) for line in path.open("rb")])
        try:
            import pyarrow.json as pj
        except ImportError:
            print("pyarrow not installed here: run in a backend environment for its figure")
            return
        arrow = timed("pyarrow.json.read_json", lambda: pj.read_json(path))
        print(f"ftr scan / json.loads: {ours / plain:.2f}x; ftr scan / pyarrow: {ours / arrow:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
