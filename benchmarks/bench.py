#!/usr/bin/env python
"""ft-recipes benchmarks, printed as ratios against the backends' own tools measured in the same run.

    python benchmarks/bench.py [--configs 100] [--repeat 3]

1. `ftr lint` over N configs (recipes and native LLaMA-Factory / Axolotl files) vs each backend's own
   validation of its native files (LLaMA-Factory get_train_args, Axolotl validate_config), in one process each.
2. CLI cold start: `ftr --version` and `ftr lint one.yaml`, and the heavy modules that path imports.
3. Compile time per recipe (in process).
4. `ftr run` overhead: from start to the backend process start (measured with a stub backend python).
Backends whose environment is missing are reported as skipped. Targets: lint of 100 configs < 1 s,
cold start < 0.2 s, >= 20x faster than the backend validators.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "recipes" / "examples").glob("*.yaml"))
NATIVE = ROOT / "tests" / "data" / "native"
HEAVY = ("torch", "transformers", "peft", "trl", "numpy", "datasets")


def timed(argv: list[str], repeat: int, env: dict | None = None) -> float:
    """Median wall time of a command over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def corpus(n: int, work: Path) -> dict[str, list[Path]]:
    """n configs copied into ``work`` (round-robin over recipes, native files and compiled examples)."""
    from click.testing import CliRunner

    from ft_recipes.cli import main

    shutil.copytree(NATIVE, work / "native")
    shutil.copytree(ROOT / "recipes" / "examples", work / "examples")
    seeds = {"recipe": sorted((work / "examples").glob("*.yaml")),
             "llamafactory": sorted((work / "native").glob("lf_*.yaml")),
             "axolotl": sorted((work / "native").glob("ax_*.yaml"))}
    for example in list(seeds["recipe"]):
        for backend in ("llamafactory", "axolotl"):
            out = work / f"compiled-{example.stem}-{backend}"
            if CliRunner().invoke(main, ["compile", str(example), "-b", backend, "-o", str(out)]).exit_code == 0:
                seeds[backend].append(out / f"{backend}.yaml")
    files: dict[str, list[Path]] = {k: [] for k in seeds}
    kinds = list(seeds)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        source = seeds[kind][(i // len(kinds)) % len(seeds[kind])]
        target = source.parent / f"bench{i}-{source.name}"
        shutil.copy(source, target)
        files[kind].append(target)
    return files


def backend_python(name: str) -> Path | None:
    try:
        from ft_recipes import backends
        from ft_recipes.envs import find_python

        return find_python(backends.env_spec(name))
    except Exception:
        return None


def bench_lint(files: dict[str, list[Path]], repeat: int) -> None:
    every = [str(p) for paths in files.values() for p in paths]
    ftr = shutil.which("ftr") or "ftr"
    lint_time = timed([ftr, "lint", *every], repeat)
    print(f"ftr lint, {len(every)} configs: {lint_time:.3f} s ({lint_time / len(every) * 1000:.1f} ms per config)")
    for name in ("llamafactory", "axolotl"):
        python = backend_python(name)
        helper = ROOT / "ft_recipes" / "backends" / name / "validate_helper.py"
        if python is None or not helper.is_file():
            print(f"  {name} validator: skipped (environment not installed: ftr backend install {name})")
            continue
        native = [str(p) for p in files[name]]
        own = timed([str(python), str(helper), "--cpu", *native], 1)
        ours = timed([ftr, "lint", *native], repeat)
        print(f"  {name} own validation of its {len(native)} files: {own:.2f} s; ftr lint of the same: "
              f"{ours:.3f} s; ftr is {own / ours:.0f}x faster")


def bench_cold_start(one: Path, repeat: int) -> None:
    ftr = shutil.which("ftr") or "ftr"
    for argv in ([ftr, "--version"], [ftr, "lint", str(one)]):
        print(f"cold start `{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}`: "
              f"{timed(argv, repeat):.3f} s")
    code = ("import sys, io, contextlib; from ft_recipes.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            " try:\n  main(['lint', sys.argv[1]], standalone_mode=False)\n except BaseException: pass\n"
            f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(one)], capture_output=True, text=True).stdout
    heavy = next((line[6:] for line in out.splitlines() if line.startswith("HEAVY=")), "?")
    print(f"heavy modules imported by `ftr lint`: {heavy or 'none'}")


def bench_compile(repeat: int) -> None:
    from ft_recipes import backends
    from ft_recipes.pipeline import load_recipe

    for backend in ("llamafactory", "axolotl", "trl"):
        times = []
        for _ in range(repeat):
            for example in EXAMPLES:
                start = time.perf_counter()
                try:
                    backends.get(backend).emit(load_recipe(example).recipe, Path(tempfile.gettempdir()))
                except Exception:
                    continue
                times.append(time.perf_counter() - start)
        print(f"compile for {backend}: median {statistics.median(times) * 1000:.1f} ms per recipe")


def bench_run_overhead(work: Path) -> None:
    """Time from `ftr run` start to the backend process start, with a stub backend python."""
    stub = work / "stub" / "bin"
    stub.mkdir(parents=True)
    marker = work / "started"
    script = f"#!/bin/sh\npython3 -c 'import time; print(time.time())' > {marker}\n"
    for name in ("python", "llamafactory-cli"):
        (stub / name).write_text(script)
        (stub / name).chmod(0o755)
    recipe = ROOT / "recipes" / "examples" / "tiny-cpu.yaml"
    env = {**os.environ, "FTR_LLAMAFACTORY_PYTHON": str(stub / "python")}
    out_dir = ROOT / ".demo" / "runs" / "tiny-cpu"
    aside = out_dir.with_name("tiny-cpu.bench-aside")
    if out_dir.exists():
        out_dir.rename(aside)
    try:
        start = time.time()
        subprocess.run([shutil.which("ftr") or "ftr", "run", str(recipe), "-b", "llamafactory", "--no-lint"],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = float(marker.read_text()) if marker.exists() else None
        print(f"ftr run overhead to backend start: {started - start:.2f} s" if started else
              "ftr run overhead: stub backend did not start")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        if aside.exists():
            aside.rename(out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = corpus(args.configs, work)
        bench_lint(files, args.repeat)
        bench_cold_start(EXAMPLES[0], args.repeat)
        bench_compile(args.repeat)
        bench_run_overhead(work)


if __name__ == "__main__":
    main()
