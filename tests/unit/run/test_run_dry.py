"""`ftr run --dry-run`: the exact command, environment and paths per backend and launch mode (golden files),
and the run-directory safety rules, without starting anything."""

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from paths import ROOT

from ft_recipes.cli.main import main

GOLDEN = ROOT / "tests" / "golden" / "dry-run"
CASES = {
    "lf-single": ("llamafactory", []),
    "lf-cpu": ("llamafactory", ["--gpus", "0"]),
    "lf-multinode": ("llamafactory", ["--gpus", "8", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1",
                                      "--master-port", "29500", "--deepspeed", "zero3"]),
    "ax-single": ("axolotl", []),
    "ax-cpu": ("axolotl", ["--gpus", "0"]),
    "ax-torchrun": ("axolotl", ["--gpus", "4", "--nnodes", "2", "--master-addr", "10.0.0.1", "--", "--max_restarts=1"]),
    "trl-accelerate": ("trl", ["--gpus", "2"]),
}


@pytest.fixture
def fake_envs(tmp_path, monkeypatch):
    for name in ("LLAMAFACTORY", "AXOLOTL", "TRL"):
        python = tmp_path / "envs" / name.lower() / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text("#!/bin/sh\n")
        monkeypatch.setenv(f"FTR_{name}_PYTHON", str(python))
    return tmp_path / "envs"


def recipe(tmp_path: Path) -> Path:
    data = ROOT / "recipes" / "examples" / "data" / "alpaca.jsonl"
    path = tmp_path / "r.yaml"
    path.write_text(f"ftr: 1\nextends: [lora-sft]\nmodel: {{base: Qwen/Qwen2.5-7B-Instruct, template: chatml, "
                    f"pad_token: eos}}\ndata:\n  train:\n    - {{path: {data}, format: alpaca}}\n"
                    f"output: {{dir: runs/dry}}\n")
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_dry_run_golden(case, tmp_path, fake_envs):
    backend, args = CASES[case]
    result = CliRunner().invoke(main, ["run", str(recipe(tmp_path)), "-b", backend, "--dry-run", *args])
    assert result.exit_code == 0, result.output
    text = result.stdout.replace(str(fake_envs), "<ENVS>").replace(str(tmp_path), "<TMP>").replace(str(ROOT), "<ROOT>")
    golden = GOLDEN / f"{case}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()
    assert not (tmp_path / "runs").exists(), "a dry run starts nothing and writes nothing"


def test_refuses_a_used_run_dir_and_missing_env(tmp_path, fake_envs, monkeypatch):
    path = recipe(tmp_path)
    (tmp_path / "runs" / "dry").mkdir(parents=True)
    (tmp_path / "runs" / "dry" / "checkpoint-5").mkdir()
    (tmp_path / "runs" / "dry" / "manifest.json").write_text("{}")  # an earlier ftr run: --force may move it aside
    result = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory"])
    assert result.exit_code == 1 and "FTR501" in result.output and "--resume" in result.output
    monkeypatch.delenv("FTR_AXOLOTL_PYTHON")
    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "no-envs"))
    result = CliRunner().invoke(main, ["run", str(path), "-b", "axolotl", "--force"])
    assert result.exit_code == 1 and "FTR503" in result.output and "ftr backend install axolotl" in result.output
    assert (tmp_path / "runs" / "dry" / "checkpoint-5").exists() or list((tmp_path / "runs").glob("dry.old-*"))


def test_lint_errors_stop_the_run(tmp_path, fake_envs):
    path = recipe(tmp_path)
    path.write_text(path.read_text() + "train: {lr: 1.0e-6}\n")
    result = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory", "--dry-run"])
    assert result.exit_code == 1 and "FTR101" in result.output and "--no-lint" in result.output
    result = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory", "--dry-run", "--no-lint"])
    assert result.exit_code == 0


def test_dry_run_prints_one_command_a_shell_runs(tmp_path, fake_envs):
    """Issue 32: the output pasted into a shell runs the backend's command with ftr's environment on the same line
    (no labels), and says that the config it names is written by the real run."""
    tool = fake_envs / "llamafactory" / "bin" / "llamafactory-cli"
    tool.write_text(f"#!/bin/sh\necho \"$CUDA_VISIBLE_DEVICES|$PATH|$*\" > {tmp_path}/ran\n")
    tool.chmod(0o755)
    result = CliRunner().invoke(main, ["run", str(recipe(tmp_path)), "-b", "llamafactory", "--dry-run", "--gpus", "0"])
    assert result.exit_code == 0, result.output
    command, *notes = result.stdout.splitlines()
    assert all(line.startswith("# ") for line in notes)
    config = tmp_path / "runs" / "dry" / "llamafactory.yaml"
    assert "llamafactory.yaml" in notes[0] and "writes nothing" in notes[0] and str(config.parent) in notes[0]
    pasted = subprocess.run(["bash", "-c", result.stdout], capture_output=True, text=True, cwd=tmp_path)
    assert pasted.returncode == 0, pasted.stderr
    cuda, path, args = (tmp_path / "ran").read_text().strip().split("|")
    assert cuda == "" and path.startswith(f"{tool.parent}:") and args == f"train {config}"


def test_dry_run_says_what_the_real_run_would_refuse(tmp_path, fake_envs, monkeypatch):
    """Issue 32: a dry run prints the command, then what the real run would refuse (lint errors, a used run
    folder, a missing environment), and exits with the code the real run would have."""
    path = recipe(tmp_path)
    path.write_text(path.read_text() + "train: {lr: 1.0e-6}\n")
    dry = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory", "--dry-run"])
    real = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory"])
    assert dry.exit_code == real.exit_code == 1
    assert "llamafactory-cli train" in dry.stdout.splitlines()[0] and "FTR101" in dry.stderr
    assert "# the real run would stop before it (exit 1): lint found 1 error(s)" in dry.stdout
    path.write_text(path.read_text().replace("train: {lr: 1.0e-6}\n", ""))
    (tmp_path / "runs" / "dry").mkdir(parents=True)
    (tmp_path / "runs" / "dry" / "manifest.json").write_text("{}")
    monkeypatch.delenv("FTR_AXOLOTL_PYTHON")
    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "no-envs"))
    dry = CliRunner().invoke(main, ["run", str(path), "-b", "axolotl", "--dry-run"])
    assert dry.exit_code == 1, dry.output
    assert "holds a previous run (pass --resume" in dry.stdout and "ftr backend install axolotl" in dry.stdout
    forced = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory", "--dry-run", "--force"])
    assert forced.exit_code == 0 and "moves the previous run aside" in forced.stdout
    assert (tmp_path / "runs" / "dry" / "manifest.json").exists(), "a dry run moves nothing"


def test_submit_dry_run_says_how_it_submits_and_what_it_would_refuse(tmp_path, fake_envs):
    """Issue 32, `ftr run --launcher slurm --dry-run`: comments (what is written, the submit command, the
    refusals), a blank line, the job file; the real run's exit code."""
    path = recipe(tmp_path)
    path.write_text(path.read_text() + "train: {lr: 1.0e-6}\n")
    result = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory", "--dry-run", "--launcher", "slurm"])
    assert result.exit_code == 1, result.output
    head, script = result.stdout.split("\n\n", 1)
    assert all(line.startswith("# ") for line in head.splitlines())
    assert f"then submits it: sbatch {tmp_path}/runs/dry/job.sbatch" in head
    assert "# the real run would stop before it (exit 1): lint found 1 error(s)" in head
    assert script.startswith("#!/bin/bash") and not (tmp_path / "runs").exists()
