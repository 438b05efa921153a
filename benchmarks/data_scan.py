"""The row, leakage and duplicate checks of ``ftr data`` / ``ftr lint`` (ft_recipes.backends.datacheck: every row of a
training JSONL and a validation JSONL, and the validation rows found in training) against
``datasets.load_dataset("json")`` of the same files in LLaMA-Factory's environment (pyarrow's reader plus the arrow
cache it writes; a fresh cache folder each run), at several sizes, in the same run. Each side runs in its own
process, one after the other; the figures are the wall time of the work (not the interpreter's start-up or
imports) and the process's peak RSS. ftr reads a file over 64 MB in parts with one process per CPU (forked): the
largest of their peak RSS is "worker MB" (they share the parent's pages until written). ``--floor`` adds what
reading the training file alone costs, no checks: orjson line by line in one process (ftr's parser),
pyarrow.json.read_json and polars.read_ndjson where an environment has them (``--floor-python``): the least any
reader needs on this machine.

    python benchmarks/data_scan.py [--rows 250000,500000,1000000] [--python LF_PYTHON] [--repeat 1] [--near]
                                   [--floor [--floor-python PYTHON]]

The rows are alpaca rows of about 600 bytes (1,000,000 rows ~ 600 MB), 1% repeated, with a validation file of
1% of the rows of which a tenth repeat training rows. Issue #28's target: ftr at least 3x faster, peak RSS under
500 MB at 1,000,000 rows and flat as the file grows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("river stone light paper garden window music number silver market planet kitchen winter morning "
         "letter forest engine bridge yellow circle").split()


def write(path: Path, rows: int, start: int = 0, repeat_every: int = 100) -> None:
    """``rows`` alpaca rows of about 600 bytes; every ``repeat_every``-th row repeats an earlier one."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(start, start + rows):
            n = i - 7 if repeat_every and i % repeat_every == 0 and i >= 7 else i
            words = " ".join(WORDS[(n * 7 + k) % len(WORDS)] for k in range(12))
            handle.write(json.dumps({
                "instruction": f"Explain item {n} and how it relates to the {words} in a few sentences.",
                "input": f"Context {n % 97}: the {words}.",
                "output": f"Item {n} is described here. " + " ".join(
                    WORDS[(n * 3 + k) % len(WORDS)] for k in range(50)) + f" That is all about item {n}."}) + "\n")


FTR_CHILD = """
import resource, sys, time
def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
from pathlib import Path
sys.path.insert(0, {root!r})
from ft_recipes.backends import datacheck
from ft_recipes.recipe.model import Dataset
start, used = time.perf_counter(), cpu()
train = datacheck._scan(Dataset(format="alpaca", path=Path({train!r})), None)
val = datacheck._scan(Dataset(format="alpaca", path=Path({val!r})), None)
leaks = datacheck.leaks([train], val)
took, used = time.perf_counter() - start, cpu() - used
near = -1.0
if {near!r}:
    start = time.perf_counter()
    datacheck.near_leaks([(Dataset(format="alpaca", path=Path({train!r})), train)],
                         (Dataset(format="alpaca", path=Path({val!r})), val), 0.7)
    near = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(used, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, near, took, peak, train.rows,
      train.duplicates.count, leaks.count)
"""

HF_CHILD = """
import resource, sys, time
def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
import datasets
datasets.disable_progress_bars()
start, used = time.perf_counter(), cpu()
ds = datasets.load_dataset("json", data_files={{"train": {train!r}, "validation": {val!r}}}, cache_dir={cache!r})
took, used = time.perf_counter() - start, cpu() - used
print(used, 0, -1, took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(ds["train"]), 0, 0)
"""

# The floor: reading the training file alone, no checks (what any reader costs on this machine)
FLOOR_CHILD = """
import resource, sys, time
def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
start, used = time.perf_counter(), cpu()
if {reader!r} == "pyarrow":
    import pyarrow.json
    rows = pyarrow.json.read_json({train!r}).num_rows
elif {reader!r} == "polars":
    import polars
    rows = polars.read_ndjson({train!r}).height
else:  # orjson, line by line in blocks, one process: what ftr's checks cost beyond parsing
    sys.path.insert(0, {root!r})
    import orjson
    from pathlib import Path
    from ft_recipes.backends.datacheck import line_blocks
    rows = sum(len(list(map(orjson.loads, block))) for _, block in line_blocks(Path({train!r})))
took, used = time.perf_counter() - start, cpu() - used
print(used, 0, -1, took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rows, 0, 0)
"""


def child(python: str, code: str, env: dict | None = None) -> tuple[float, float, list[int], float, float, float]:
    """(seconds of the exact checks, peak RSS in MB, counts, seconds of the near-duplicate pass or -1, peak RSS of
    the largest of its own child processes in MB, CPU seconds of the exact checks, its own and its children's)."""
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    used, children, near, took, rss, *counts = proc.stdout.split()[-8:]
    return float(took), int(rss) / 1024, [int(c) for c in counts], float(near), int(children) / 1024, float(used)


def importable(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def floors(train: Path, pythons: list[str]) -> list[str]:
    """Seconds and peak MB of each reader alone, where importable: orjson (ftr's environment, one process),
    pyarrow.json.read_json and polars.read_ndjson (the first of ``pythons`` that has them)."""
    found = []
    for reader, module, where in (("orjson", "orjson", [sys.executable]), ("pyarrow", "pyarrow.json", pythons),
                                  ("polars", "polars", pythons)):
        python = next((p for p in where if importable(p, module)), None)
        if python:
            took, mb, _, _, _, used = child(python, FLOOR_CHILD.format(reader=reader, train=str(train),
                                                                       root=str(ROOT)))
            found.append(f"{reader} {took:.2f} s (cpu {used:.2f}) {mb:.0f} MB")
    return found


def lf_python(given: str | None) -> str:
    if given:
        return given
    sys.path.insert(0, str(ROOT))
    from ft_recipes.backends import backend_python

    return str(backend_python("llamafactory"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="250000,500000,1000000")
    parser.add_argument("--python", help="the python of an environment with `datasets` (default: LLaMA-Factory's)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side per size (the best is kept)")
    parser.add_argument("--dir", help="where the generated files go (default: a temporary folder)")
    parser.add_argument("--near", action="store_true", help="also time FTR213's near-duplicate pass (after the "
                        "exact checks, in the same process: the peak RSS then includes it)")
    parser.add_argument("--floor", action="store_true", help="also time reading the training file alone (no checks): "
                        "orjson line by line, pyarrow.json.read_json, polars.read_ndjson where importable")
    parser.add_argument("--floor-python", action="append", default=[], help="another python to look for pyarrow "
                        "and polars in (after LF_PYTHON's)")
    args = parser.parse_args()
    python = lf_python(args.python)
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; datasets from {python}")
    print("ftr s: the exact checks of both files (rows, duplicates, leakage); cpu: CPU seconds of all its processes "
          "and threads (less affected by other load than the wall time); ratio: load_dataset s / ftr s")
    print(f"{'rows':>9} {'MB':>5} | {'ftr s':>6} {'cpu':>5} {'ftr MB':>7} {'worker MB':>9} | {'load_dataset s':>14} "
          f"{'cpu':>5} {'MB':>6} | {'ratio':>5} | dup  leaks" + (" | near-duplicate pass s" if args.near else ""))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for rows in [int(r) for r in args.rows.split(",")]:
            train, val = Path(tmp) / f"train-{rows}.jsonl", Path(tmp) / f"val-{rows}.jsonl"
            write(train, rows)
            write(val, rows // 100, start=rows - rows // 1000, repeat_every=0)  # a tenth of it repeats training
            ours, theirs = [], []
            for k in range(args.repeat):
                ours.append(child(sys.executable, FTR_CHILD.format(root=str(ROOT), train=str(train), val=str(val),
                                                                  near=args.near)))
                cache = Path(tmp) / f"hf-cache-{rows}-{k}"
                theirs.append(child(python, HF_CHILD.format(train=str(train), val=str(val), cache=str(cache)), env))
                subprocess.run(["rm", "-rf", str(cache)], check=False)
            (f_s, f_mb, counts, near, w_mb, f_cpu), (h_s, h_mb, _, _, _, h_cpu) = min(ours), min(theirs)
            print(f"{rows:>9} {train.stat().st_size >> 20:>5} | {f_s:>6.2f} {f_cpu:>5.2f} {f_mb:>7.0f} {w_mb:>9.0f} | "
                  f"{h_s:>14.2f} {h_cpu:>5.2f} {h_mb:>6.0f} | {h_s / f_s:>4.2f}x | {counts[1]} {counts[2]}"
                  + (f" | {near:.2f}" if args.near else ""), flush=True)
            if args.floor:
                print(f"{'':>9} floor, reading alone: " + "; ".join(floors(train, [python, *args.floor_python])),
                      flush=True)
            train.unlink()
            val.unlink()


if __name__ == "__main__":
    main()
