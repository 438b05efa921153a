"""The fault cases of tests/unit/run/test_run_faults.py on the real LLaMA-Factory backend (tiny model, CPU): a run
piped into `head` trains to its end, two merges of it run side by side into their own folders, and a run whose
ftr is killed is reported as interrupted, leaves no trainer behind and resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from .test_ftr_backends import FTR, ftr, run_env, tiny_recipe  # noqa: F401 (run_env: a fixture)


@pytest.fixture(scope="module")
def piped_run(tmp_path_factory, tiny_assets, run_env):
    """A LoRA run whose console is `| head -n 3` (the reader leaves after three lines)."""
    tmp = tmp_path_factory.mktemp("faults")
    recipe = tiny_recipe(tmp, tiny_assets, "piped", "extends: [lora-sft]")
    shell = f"set -o pipefail; {' '.join(FTR)} run {recipe} -b llamafactory | head -n 3; echo rc=${{PIPESTATUS[0]}} >&2"
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=run_env, timeout=600)
    return tmp, tmp / "runs" / "piped", proc


def test_a_closed_pipe_does_not_stop_real_training(piped_run):
    _, run_dir, proc = piped_run
    assert "rc=0" in proc.stderr, proc.stderr[-3000:]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["exit_status"] == 0 and manifest["end"] and not manifest["interrupted"]
    assert any(e.startswith("stdout:") for e in manifest["output_errors"])
    assert (run_dir / "adapter_model.safetensors").is_file()


def test_two_real_merges_write_their_own_outputs(piped_run, run_env):
    tmp, run_dir, _ = piped_run
    procs = [subprocess.Popen([*FTR, "merge", str(run_dir), "-o", str(tmp / name)], env=run_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name in ("A", "B")]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stdout.read()[-3000:]
    for name in ("A", "B"):
        assert (tmp / name / "config.json").is_file() and list((tmp / name).glob("*.safetensors"))
    assert not (run_dir / "merge.yaml").exists() and not list(tmp.glob(".*.merging-*"))


def test_a_real_merge_of_a_relative_run_path(piped_run, run_env):
    """Issue 32: `ftr merge runs/NAME` from the project folder, as after scripts/demo: the merged model lands in
    runs/NAME/merged, the output says so, and nothing else is left in the run folder."""
    tmp, run_dir, _ = piped_run
    before = {p.name for p in run_dir.iterdir()}
    proc = ftr("merge", run_dir.relative_to(tmp), env=run_env, cwd=tmp, timeout=600)
    assert f"merged model in {run_dir / 'merged'}" in proc.stderr, proc.stderr[-3000:]
    assert (run_dir / "merged" / "config.json").is_file() and list((run_dir / "merged").glob("*.safetensors"))
    assert {p.name for p in run_dir.iterdir()} == before | {"merged"}


def test_killed_owner_is_reported_and_the_run_resumes(tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "killed", "extends: [lora-sft]")
    recipe.write_text(recipe.read_text().replace("max_steps: 4", "max_steps: 400").replace("save_steps: 2",
                                                                                          "save_steps: 1"))
    run_dir = tmp_path / "runs" / "killed"
    owner = subprocess.Popen([*FTR, "run", str(recipe), "-b", "llamafactory"], env=run_env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: list(run_dir.glob("checkpoint-*/trainer_state.json")), 300)
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=30)
    wait_for(lambda: "INTERRUPTED" in ftr("status", run_dir, env=run_env).stdout, 60)
    count = len(list(run_dir.glob("checkpoint-*")))
    time.sleep(3)
    assert len(list(run_dir.glob("checkpoint-*"))) == count, "the trainer outlived its owner"
    resumed = subprocess.Popen([*FTR, "run", str(recipe), "-b", "llamafactory", "--resume"], env=run_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(list(run_dir.glob("checkpoint-*"))) > count, 300)
    resumed.send_signal(signal.SIGTERM)
    assert resumed.wait(timeout=120) != 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["resumed_from"] and manifest["interrupted"] is True and manifest["end"]
    assert "FAILED" in ftr("status", run_dir, env=run_env).stdout


def wait_for(condition, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError("timed out")
