#!/usr/bin/env python
"""GPU benchmark (run on a machine with an NVIDIA GPU; never in CI).

    python benchmarks/gpu_bench.py RECIPE [--backend llamafactory axolotl] [--steps 50] [--native B=CONFIG ...]

For each backend: `ftr run` of the recipe for --steps steps (a copy of the recipe with max_steps set), and, when
given, the backend's own example config for the same model and method run directly with the backend CLI.
Reports tokens/s (from the Trainer's logs: train_tokens_per_second when logged, else samples x sequence length
/ runtime), peak GPU memory (nvidia-smi polled every 0.5 s), and the ftr VRAM estimate's error vs that peak.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml


class PeakMemory(threading.Thread):
    """Polls nvidia-smi for the highest memory.used (MiB) over all GPUs while running."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mib = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout
            values = [int(v) for v in out.split() if v.strip().isdigit()]
            self.peak_mib = max([self.peak_mib, *values])
            time.sleep(0.5)


def measure(argv: list[str], cwd: Path, env: dict | None = None) -> tuple[float, int]:
    watcher = PeakMemory()
    watcher.start()
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=False)
    seconds = time.perf_counter() - start
    watcher.running = False
    watcher.join()
    return seconds, watcher.peak_mib


def tokens_per_second(run_dir: Path, seq_len: int) -> float | None:
    for state in sorted(run_dir.rglob("trainer_state.json")) + sorted(run_dir.rglob("all_results.json")):
        data = json.loads(state.read_text())
        entries = data.get("log_history", [data])
        for entry in reversed(entries):
            if "train_tokens_per_second" in entry:
                return float(entry["train_tokens_per_second"])
            if "train_samples_per_second" in entry:
                return float(entry["train_samples_per_second"]) * seq_len
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--backend", nargs="+", default=["llamafactory", "axolotl"])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--native", nargs="*", default=[], help="BACKEND=CONFIG of the backend's own example")
    args = parser.parse_args()
    from ft_recipes.insight.vram import estimate
    from ft_recipes.recipe.loaded import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = yaml.safe_load(args.recipe.read_text())
        data.setdefault("train", {})["max_steps"] = args.steps
        data["train"].pop("epochs", None)
        data["extends"] = [str((args.recipe.parent / e).resolve()) if e.endswith((".yaml", ".yml")) else e
                           for e in ([data["extends"]] if isinstance(data.get("extends"), str) else data.get("extends",
                               []))]
        recipe_path = args.recipe.parent / f".gpu-bench-{args.recipe.name}"
        try:
            for backend in args.backend:
                data["output"] = {**data.get("output", {}), "dir": str(work / f"ftr-{backend}")}
                recipe_path.write_text(yaml.safe_dump(data))
                recipe = load_recipe(recipe_path).recipe
                seconds, peak = measure(["ftr", "run", str(recipe_path), "-b", backend, "--force"], work)
                est = estimate(recipe)
                tps = tokens_per_second(work / f"ftr-{backend}", recipe.data.max_length)
                error = f"{(est.total_gb * 1000 / 1.048576 - peak) / peak:+.0%}" if est and peak else "n/a"
                print(f"ftr {backend}: {seconds:.0f} s, {tps or 0:.0f} tokens/s, peak {peak} MiB, "
                      f"estimate {est.total_gb if est else 0:.1f} GB ({error})")
            for spec in args.native:
                backend, config = spec.split("=", 1)
                cli = {"llamafactory": ["llamafactory-cli", "train"], "axolotl": ["axolotl", "train"]}[backend]
                seconds, peak = measure([*cli, str(Path(config).resolve()), f"max_steps={args.steps}"], work)
                print(f"{backend} own example: {seconds:.0f} s, peak {peak} MiB")
        finally:
            recipe_path.unlink(missing_ok=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
