"""Run a validator script over files that each need their own working directory, in ONE process; run INSIDE
the backend environment (used by scripts/realworld_verdicts.py for the user-repository corpus).

    python realworld_in_dirs.py SCRIPT.py [--cpu] RUN_DIR::CONFIG...

For each argument the process changes into RUN_DIR (relative to where it started) and calls SCRIPT's
``main([--cpu,] CONFIG)``: CONFIG's own relative paths (dataset_dir, deepspeed, data files) resolve from
RUN_DIR, the directory its user runs the backend in. The backend is imported once, on the first file. Prints
SCRIPT's JSON lines with "path" set to RUN_DIR/CONFIG.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys


def _load(script: str):
    spec = importlib.util.spec_from_file_location("validator", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_one(module, flags: list[str], spec: str, start: str) -> list[dict]:
    run_dir, _, path = spec.partition("::")
    os.chdir(os.path.join(start, run_dir))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        module.main([*flags, path])
    records = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    for record in records:
        record["path"] = os.path.normpath(os.path.join(run_dir, path))
    return records


def main(argv: list[str]) -> int:
    module = _load(argv[0])
    flags = [a for a in argv[1:] if a.startswith("--")]
    start = os.getcwd()
    for spec in (a for a in argv[1:] if not a.startswith("--")):
        for record in run_one(module, flags, spec, start):
            sys.__stdout__.write(json.dumps(record) + "\n")
            sys.__stdout__.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
