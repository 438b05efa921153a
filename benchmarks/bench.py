#!/usr/bin/env python
"""ft-recipes benchmarks: whole-process figures, and ratios against the backends' own validators measured in
the same run on the same files.

    python benchmarks/bench.py [--files 100] [--repeat 5] [--skip-backends] [--skip-extras] [--instructions]

1. Cold start: `python -c pass` against `ftr --version`, `ftr lint one.yaml` and `ftr lint recipe.yaml` of a
   team project (a recipe extending a team preset found through `[tool.ftr] preset-paths`, which extends a
   built-in one, with a local dataset: what an editor or pre-commit lints on every save) (runs alternate, so a
   machine that slows down slows both), and the heavy modules `ftr lint` imports (expected: none).
2. `ftr lint` of N recipes (the examples) and N native LLaMA-Factory and N native Axolotl configs (the
   frameworks' own examples, tests/data/realworld, copied round-robin; linted and validated from the corpus
   folder, as the frameworks' users run them), one process per set.
3. Each backend's own validator over the same native files, in one process, in its own environment:
   LLaMA-Factory's parser (get_train_args) and Axolotl's validate_config, through
   ft_recipes/backends/<name>/validate_helper.py. Skipped (and said so) when the environment is not built.
4. Extras: compile time per recipe, and `ftr run` overhead to the backend's start (stub backend).
5. With --instructions: instructions executed (valgrind), whole process, for the cold start and each set.

There is no findings cache: every figure is a cold run (each process lints its files from scratch).

ftr is run as `python -P -m ft_recipes` from this checkout (PYTHONPATH), with its bytecode compiled first,
as a wheel install ships it. Medians of --repeat runs; wall and CPU (user + system) seconds.
Targets: cold lint <= 8x bare python; 100 native configs <= 0.3 s; >= 50x Axolotl's validator; >= 300x
LLaMA-Factory's parser.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "recipes" / "examples").glob("*.yaml"))
REALWORLD = ROOT / "tests" / "data" / "realworld"
NATIVE_KINDS = ("llamafactory", "axolotl")
HEAVY = ("jsonschema", "torch", "transformers", "peft", "trl", "numpy", "datasets", "matplotlib", "hypothesis",
         "importlib.metadata")
FTR = [sys.executable, "-P", "-m", "ft_recipes"]  # -P: the checkout on PYTHONPATH wins over the cwd
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# The backends' validators run offline, as scripts/realworld_verdicts.py runs them for tests/data/realworld's
# verdicts: a hub lookup fails at once instead of waiting on a network this machine does not have.
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": ""}
TARGETS = {"cold": 8.0, "native_s": 0.3, "axolotl": 50.0, "llamafactory": 300.0}


class Timing:
    """Median wall and CPU seconds of runs of one command."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.output = ""

    def run(self, argv: list[str], env: dict | None = None, cwd: Path | None = None, keep: bool = False) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env or ENV, cwd=cwd, check=False, text=True,
                              stdout=subprocess.PIPE if keep else subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        self.output = done.stdout or ""

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    def text(self) -> str:
        return f"{self.median:.3f} s wall, {self.median_cpu:.3f} s cpu (median of {len(self.wall)})"


def alternate(commands: dict[str, tuple[list[str], Path]], repeat: int) -> dict[str, Timing]:
    """Run the commands (argv, working directory) in turn, ``repeat`` rounds after one warm-up round."""
    timings = {name: Timing() for name in commands}
    for _ in range(repeat + 1):
        for name, (argv, cwd) in commands.items():
            timings[name].run(argv, cwd=cwd)
    for timing in timings.values():  # drop the warm-up round
        timing.wall.pop(0)
        timing.cpu.pop(0)
    return timings


def compile_bytecode() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ft_recipes")], env=env,
                   stdout=subprocess.DEVNULL, check=False)


def corpus(n: int, work: Path) -> dict[str, list[Path]]:
    """``n`` files of each kind copied into ``work``: recipes (the examples) and native LLaMA-Factory and Axolotl
    configs (the frameworks' own examples, tests/data/realworld), round-robin; a copy of a native config lies
    beside its original, so that its relative paths (datasets, DeepSpeed files) resolve as the original's."""
    shutil.copytree(ROOT / "recipes" / "examples", work / "examples")
    shutil.copytree(REALWORLD, work / "realworld")
    seeds = {"recipe": sorted((work / "examples").glob("*.yaml"))}
    for backend in NATIVE_KINDS:
        base = work / "realworld" / backend
        seeds[backend] = sorted(p for p in (base / "examples").rglob("*") if p.suffix in (".yaml", ".yml"))
    files: dict[str, list[Path]] = {}
    for kind, paths in seeds.items():
        files[kind] = []
        for i in range(n):
            source = paths[i % len(paths)]
            target = source if i < len(paths) else source.parent / f"bench{i}-{source.name}"
            if target != source:
                shutil.copy(source, target)
            files[kind].append(target)
    return files


def where(kind: str, work: Path) -> Path:
    """The directory a kind of file is linted and validated from: a backend's corpus folder for its native
    configs (they name datasets and DeepSpeed files relative to it, as the frameworks' users run them)."""
    return work / "realworld" / kind if kind in NATIVE_KINDS else work


def backend_python(name: str) -> Path | None:
    from ft_recipes import backends
    from ft_recipes.backends.envs import find_python

    try:
        return find_python(backends.env_spec(name))
    except (OSError, ValueError, LookupError):
        return None


def team_project(work: Path) -> Path:
    """A team's project: pyproject.toml naming its preset library, a preset extending a built-in one, and a recipe
    extending the team preset with a local dataset. Returns the recipe."""
    root = work / "team"
    (root / "team-presets").mkdir(parents=True)
    (root / "recipes" / "data").mkdir(parents=True)
    shutil.copy(ROOT / "recipes" / "examples" / "data" / "alpaca.jsonl", root / "recipes" / "data" / "train.jsonl")
    (root / "pyproject.toml").write_text('[tool.ftr]\npreset-paths = ["team-presets"]\n')
    (root / "team-presets" / "team-base.yaml").write_text(
        "ftr: 1\nextends: [builtin:lora-sft]\ntrain: {epochs: 2, lr: 1.0e-4}\ndata: {val: {split: 0.1}}\n")
    recipe = root / "recipes" / "recipe.yaml"
    recipe.write_text("ftr: 1\nextends: [team-base]\nmodel: {base: Qwen/Qwen2.5-7B-Instruct, template: chatml, "
                      "pad_token: eos}\ndata:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n")
    return recipe


def bench_cold_start(one: Path, repeat: int, work: Path) -> dict:
    team = team_project(work)
    timings = alternate({"bare": ([sys.executable, "-c", "pass"], work), "version": (FTR + ["--version"], work),
                         "lint": (FTR + ["lint", str(one)], work),
                         "team": (FTR + ["lint", "recipes/recipe.yaml"], team.parent.parent)}, repeat)
    bare, lint, team_lint = timings["bare"], timings["lint"], timings["team"]
    print(f"bare `python -c pass`:        {bare.text()}")
    print(f"cold `ftr --version`:         {timings['version'].text()}")
    print(f"cold `ftr lint {one.name}`: {lint.text()}")
    ratio = lint.median / bare.median
    print(f"  cold lint / bare python: {ratio:.1f}x wall, {lint.median_cpu / bare.median_cpu:.1f}x cpu "
          f"(target <= {TARGETS['cold']:.0f}x)")
    print(f"cold `ftr lint recipes/recipe.yaml` (team preset, local data): {team_lint.text()}")
    print(f"  cold team lint / bare python: {team_lint.median / bare.median:.1f}x wall, "
          f"{team_lint.median_cpu / bare.median_cpu:.1f}x cpu (target <= {TARGETS['cold']:.0f}x)")
    code = ("import sys, io, contextlib; from ft_recipes.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            " try:\n  main(['lint', sys.argv[1]], standalone_mode=False)\n except BaseException: pass\n"
            f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code, str(one)], capture_output=True, text=True, env=ENV,
                         cwd=work).stdout
    heavy = next((line[6:] for line in out.splitlines() if line.startswith("HEAVY=")), "?")
    print(f"  heavy modules imported by `ftr lint` ({', '.join(HEAVY)}): {heavy or 'none'}")
    print(f"  largest imports of `ftr lint` (python -X importtime, ms): {import_costs(one, work)}")
    return {"bare": bare.median, "lint_one": lint.median, "ratio": ratio, "lint_team": team_lint.median,
            "team_ratio": team_lint.median / bare.median}


def import_costs(one: Path, work: Path, top: int = 8) -> str:
    """The top-level imports of `ftr lint one.yaml` that cost most (cumulative), site's own excluded."""
    err = subprocess.run(FTR[:2] + ["-X", "importtime"] + FTR[2:] + ["lint", str(one)], capture_output=True,
                         text=True, env=ENV, cwd=work).stderr
    costs = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("  ") and cumulative.strip().isdigit() and name.strip() != "site":
                costs.append((int(cumulative) / 1000, name.strip()))
    return ", ".join(f"{name} {ms:.0f}" for ms, name in sorted(costs, reverse=True)[:top])


def bench_lint(files: dict[str, list[Path]], repeat: int, work: Path) -> dict[str, tuple[Timing, Timing]]:
    """`ftr lint` of each set of files, and of its first file alone (the difference is the per-file cost)."""
    commands = {}
    for kind, paths in files.items():
        cwd = where(kind, work)
        commands[kind] = (FTR + ["lint", *(str(p.relative_to(cwd)) for p in paths)], cwd)
        commands[kind + "-one"] = (FTR + ["lint", str(paths[0].relative_to(cwd))], cwd)
    timings = alternate(commands, repeat)
    out = {}
    for kind, paths in files.items():
        many, one = timings[kind], timings[kind + "-one"]
        target = f" (target <= {TARGETS['native_s']} s)" if kind != "recipe" else ""
        print(f"ftr lint, {len(paths)} {kind} files: {many.text()}{target}; "
              f"{per_file(many, one, len(paths)) * 1000:.2f} ms cpu per further file")
        out[kind] = (many, one)
    return out


def per_file(many: Timing, one: Timing, n: int) -> float:
    """CPU seconds per file after the first (start-up excluded); cpu: steadier than wall on a busy machine."""
    return max(many.median_cpu - one.median_cpu, 0.0) / max(n - 1, 1)


def bench_backends(files: dict[str, list[Path]], ours: dict[str, tuple[Timing, Timing]], repeat: int,
                   work: Path) -> None:
    for name in ("llamafactory", "axolotl"):
        python = backend_python(name)
        helper = ROOT / "ft_recipes" / "backends" / name / "validate_helper.py"
        if python is None or not helper.is_file():
            print(f"{name} own validator: skipped (environment not built: ftr backend install {name})")
            continue
        cwd = where(name, work)
        paths = [str(p.relative_to(cwd)) for p in files[name]]
        own, own_one = Timing(), Timing()
        for _ in range(repeat):
            own.run([str(python), str(helper), "--cpu", *paths], env=OFFLINE, cwd=cwd, keep=True)
            own_one.run([str(python), str(helper), "--cpu", paths[0]], env=OFFLINE, cwd=cwd)
        results = [json.loads(line) for line in own.output.splitlines() if line.startswith("{")]
        accepted = sum(1 for r in results if r.get("ok"))
        many, one = ours[name]
        print(f"{name} own validator, same {len(paths)} files: {own.text()} ({accepted} accepted); first file "
              f"alone {own_one.median:.2f} s; {per_file(own, own_one, len(paths)) * 1000:.1f} ms cpu per further file")
        print(f"  ftr is {own.median / many.median:.0f}x faster wall, {own.median_cpu / many.median_cpu:.0f}x cpu "
              f"(target >= {TARGETS[name]:.0f}x); per further file "
              f"{per_file(own, own_one, len(paths)) / max(per_file(many, one, len(paths)), 1e-9):.0f}x")


def instructions(argv: list[str], cwd: Path) -> int | None:
    """Instructions the whole process executes (valgrind's callgrind), or None without valgrind."""
    if not shutil.which("valgrind"):
        return None
    out = cwd / "callgrind.out"
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv], cwd=cwd, env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    out.unlink(missing_ok=True)
    counts = [line.split()[-1] for line in done.stderr.splitlines() if "Collected" in line]
    return int(counts[-1]) if counts else None


def bench_instructions(files: dict[str, list[Path]], one: Path, work: Path) -> None:
    """Instruction counts: they do not depend on how busy the machine is (about 50x slower to take)."""
    commands = {"bare `python -c pass`": ([sys.executable, "-c", "pass"], work),
                f"`ftr lint {one.name}`": (FTR + ["lint", str(one)], work)}
    for kind, paths in files.items():
        cwd = where(kind, work)
        commands[f"`ftr lint`, {len(paths)} {kind} files"] = (FTR + ["lint", *(str(p.relative_to(cwd)) for p in paths)],
                                                               cwd)
    for name, (argv, cwd) in commands.items():
        count = instructions(argv, cwd)
        print(f"instructions, {name}: " + (f"{count / 1e6:.0f} M" if count else "skipped (no valgrind)"))


def bench_compile(repeat: int) -> None:
    from ft_recipes import backends
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.loaded import load_recipe

    for backend in ("llamafactory", "axolotl", "trl"):
        times = []
        for _ in range(repeat):
            for example in EXAMPLES:
                start = time.perf_counter()
                try:
                    backends.get(backend).emit(load_recipe(example).recipe, Path(tempfile.gettempdir()))
                except FtrError:
                    continue
                times.append(time.perf_counter() - start)
        print(f"compile for {backend}: median {statistics.median(times) * 1000:.1f} ms per recipe (in process)")


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
    env = {**ENV, "FTR_LLAMAFACTORY_PYTHON": str(stub / "python")}
    out_dir = ROOT / ".demo" / "runs" / "tiny-cpu"
    aside = out_dir.with_name("tiny-cpu.bench-aside")
    if out_dir.exists():
        out_dir.rename(aside)
    try:
        start = time.time()
        subprocess.run(FTR + ["run", str(recipe), "-b", "llamafactory", "--no-lint"], env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        started = float(marker.read_text()) if marker.exists() else None
        print(f"ftr run overhead to backend start: {started - start:.2f} s" if started else
              "ftr run overhead: stub backend did not start")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        if aside.exists():
            aside.rename(out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100, help="files of each kind (default 100)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per ftr figure (default 5)")
    parser.add_argument("--backend-repeat", type=int, default=1, help="runs per backend validator (default 1)")
    parser.add_argument("--skip-backends", action="store_true", help="do not run the backends' validators")
    parser.add_argument("--skip-extras", action="store_true", help="skip compile time and run overhead")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions with valgrind (steady on a busy machine; a few minutes)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    compile_bytecode()
    print(f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} cores, "
          f"--files {args.files} --repeat {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = corpus(args.files, work)
        bench_cold_start(work / "examples" / EXAMPLES[0].name, args.repeat, work)
        ours = bench_lint(files, args.repeat, work)
        if args.skip_backends:
            print("backend validators: skipped (--skip-backends)")
        else:
            bench_backends(files, ours, args.backend_repeat, work)
        if args.instructions:
            bench_instructions(files, work / "examples" / EXAMPLES[0].name, work)
        if not args.skip_extras:
            bench_compile(min(args.repeat, 3))
            bench_run_overhead(work)


if __name__ == "__main__":
    main()
