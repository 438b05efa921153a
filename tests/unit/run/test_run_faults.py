"""Fault injection for `ftr run`, `ftr status` and `ftr merge` with real processes and a fake LLaMA-Factory CLI
(tests/fixtures/fake_backend.py: exact timing, no torch): output trouble never stops the training, one owner
per run folder, a truthful status after the owner dies, and merges that take the right adapter atomically.
The same cases against the real backend are in tests/backends/test_run_faults_real.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FAKE = ROOT / "tests" / "fixtures" / "fake_backend.py"
FTR = [sys.executable, "-m", "ft_recipes"]
STEPS = 30

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="flock, /dev/full and PR_SET_PDEATHSIG")


@pytest.fixture
def setup(tmp_path):
    """A fake backend environment, a recipe for it and the environment ftr runs in."""
    bin_dir = tmp_path / "env" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    (bin_dir / "llamafactory-cli").write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "a.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""ftr: 1
extends: [lora-sft]
model: {{base: {tmp_path}/model, template: chatml, pad_token: eos}}
data:
  train:
    - {{path: {tmp_path}/a.jsonl, format: alpaca}}
output: {{dir: {tmp_path}/runs/r}}
hardware: {{gpus: 0}}
""")
    env = {**os.environ, "FTR_LLAMAFACTORY_PYTHON": str(bin_dir / "python"), "FAKE_STEPS": str(STEPS),
           "FAKE_PAUSE": "0.1", "PYTHONPATH": str(ROOT)}
    return recipe, tmp_path / "runs" / "r", env


def run(*args, env, check=None, timeout=60, **kw):
    proc = subprocess.run([*FTR, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout, **kw)
    if check is not None:
        assert proc.returncode == check, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def start(*args, env, **kw) -> subprocess.Popen:
    return subprocess.Popen([*FTR, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def writers(run_dir: Path) -> list[tuple[int, int]]:
    """(pid, step) for every step a trainer wrote into the folder."""
    lines = (run_dir / "writers.log").read_text().split()
    return [(int(lines[i]), int(lines[i + 1])) for i in range(0, len(lines), 2)]


def wait_for_step(run_dir: Path, step: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (run_dir / f"checkpoint-{step}" / "trainer_state.json").is_file():
            return
        time.sleep(0.05)
    raise AssertionError(f"the fake trainer never reached step {step}")


def assert_trained_to_end(run_dir: Path) -> dict:
    steps = [step for _, step in writers(run_dir)]
    assert steps[-1] == STEPS and len({pid for pid, _ in writers(run_dir)}) == 1
    m = manifest(run_dir)
    assert m["exit_status"] == 0 and m["end"] and m["interrupted"] is False
    return m


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


# --- output trouble never stops the training ---------------------------------------------------------------------

@pytest.mark.parametrize("redirect", ["| head -n 3", "> /dev/full", ">&-"])
def test_console_trouble_never_stops_the_training(setup, redirect):
    recipe, run_dir, env = setup
    shell = f"set -o pipefail; {' '.join(FTR)} run {recipe} -b llamafactory --no-lint {redirect}; echo rc=$? >&2"
    if redirect.startswith("|"):
        shell = (f"set -o pipefail; {' '.join(FTR)} run {recipe} -b llamafactory --no-lint {redirect}; "
                 f"echo rc=${{PIPESTATUS[0]}} >&2")
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=60)
    assert "rc=0" in proc.stderr, proc.stderr[-3000:]
    m = assert_trained_to_end(run_dir)
    if redirect != ">&-":
        assert any(e.startswith("stdout:") for e in m["output_errors"]), m
    assert (run_dir / "logs" / "train.log").read_text().count("loss") == STEPS


def test_a_full_disk_under_the_log_never_stops_the_training(setup):
    recipe, run_dir, env = setup
    run("run", recipe, "-b", "llamafactory", "--no-lint", env={**env, "FAKE_STEPS": "2"}, check=0)
    log = run_dir / "logs" / "train.log"
    log.unlink()
    log.symlink_to("/dev/full")
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env, check=0)
    m = manifest(run_dir)
    assert m["exit_status"] == 0 and [s for _, s in writers(run_dir)][-1] == STEPS
    assert any("train.log" in e and "space" in e.lower() for e in m["output_errors"]), m


# --- one owner per run folder ----------------------------------------------------------------------------------

LONG = str(5 * STEPS)  # a first run that is surely still training when the second ftr has started, under load


@pytest.mark.parametrize("second", [[], ["--resume"], ["--force"]])
def test_a_live_run_folder_is_refused(setup, second):
    recipe, run_dir, env = setup
    first = start("run", recipe, "-b", "llamafactory", "--no-lint", env={**env, "FAKE_STEPS": LONG})
    wait_for_step(run_dir, 2)
    refused = run("run", recipe, "-b", "llamafactory", "--no-lint", *second, env=env)
    assert refused.returncode == 1, refused.stderr
    assert f"ftr pid {first.pid}" in refused.stderr and "in use" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert first.wait(timeout=120) == 0
    steps = [step for _, step in writers(run_dir)]
    assert steps[-1] == int(LONG) and len({pid for pid, _ in writers(run_dir)}) == 1
    assert not list(run_dir.parent.glob("r.old-*"))


def test_two_runs_started_together_train_once(setup):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "8"}
    procs = [start("run", recipe, "-b", "llamafactory", "--no-lint", env=env) for _ in range(2)]
    codes = sorted(p.wait(timeout=60) for p in procs)
    assert codes == [0, 1]
    assert len({pid for pid, _ in writers(run_dir)}) == 1


def test_a_pipeline_started_twice_is_refused(setup):
    recipe, run_dir, env = setup
    text = recipe.read_text().replace("extends: [lora-sft]\n", "")
    pipeline = recipe.with_name("p.yaml")
    pipeline.write_text(text + "stages:\n  - name: sft\n    extends: [lora-sft]\n")
    first = start("run", pipeline, "-b", "llamafactory", "--no-lint", env={**env, "FAKE_STEPS": LONG})
    wait_for_step(run_dir / "sft", 2)
    refused = run("run", pipeline, "-b", "llamafactory", "--no-lint", "--force", env=env)
    assert refused.returncode == 1 and f"ftr pid {first.pid}" in refused.stderr, refused.stderr
    assert first.wait(timeout=120) == 0
    assert len({pid for pid, _ in writers(run_dir / "sft")}) == 1


# --- truthful status, every exit path ends the run ---------------------------------------------------------------

@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGHUP])
def test_a_dead_owner_is_reported_and_frees_the_folder(setup, how):
    recipe, run_dir, env = setup
    pidfile = run_dir.parent / "backend.pid"
    owner = start("run", recipe, "-b", "llamafactory", "--no-lint", env={**env, "FAKE_PIDFILE": str(pidfile)})
    wait_for_step(run_dir, 2)
    owner.send_signal(how)
    owner.wait(timeout=30)
    backend = int(pidfile.read_text())
    deadline = time.time() + 10
    while alive(backend) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(backend), "the trainer outlived its owner"
    status = run("status", run_dir, env=env, check=0)
    if how == signal.SIGKILL:
        assert "INTERRUPTED" in status.stdout and f"ftr pid {owner.pid}" in status.stdout, status.stdout
    else:  # SIGHUP is handled as SIGTERM: the manifest itself says so
        assert manifest(run_dir)["interrupted"] is True and manifest(run_dir)["end"]
        assert "FAILED" in status.stdout, status.stdout
    attached = run("status", "--attach", "--interval", "0.1", run_dir, env=env, timeout=20)
    assert attached.returncode != 0
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env, check=0)
    assert manifest(run_dir)["exit_status"] == 0


def test_a_backend_ignoring_stop_signals_is_killed_after_the_grace(setup):
    recipe, run_dir, env = setup
    owner = start("run", recipe, "-b", "llamafactory", "--no-lint",
                  env={**env, "FAKE_IGNORE_STOP": "1", "FTR_STOP_GRACE": "1", "FAKE_STEPS": "300"})
    wait_for_step(run_dir, 2)
    owner.send_signal(signal.SIGTERM)
    assert owner.wait(timeout=20) == 128 + signal.SIGKILL
    m = manifest(run_dir)
    assert m["interrupted"] is True and m["end"] and m["exit_status"] == 128 + signal.SIGKILL


def test_a_backend_that_cannot_start_ends_the_run(setup):
    recipe, run_dir, env = setup
    cli = Path(env["FTR_LLAMAFACTORY_PYTHON"]).parent / "llamafactory-cli"
    cli.chmod(0o644)
    proc = run("run", recipe, "-b", "llamafactory", "--no-lint", env=env)
    assert proc.returncode == 2 and "cannot start the backend" in proc.stderr
    m = manifest(run_dir)
    assert m["end"] and m["exit_status"] == 2 and "cannot start" in m["error"]
    assert "FAILED" in run("status", run_dir, env=env, check=0).stdout


def test_an_error_after_training_ends_the_run(setup, monkeypatch):
    recipe, run_dir, env = setup
    run_dir.mkdir(parents=True)
    tokenizer = run_dir / "tokenizer_config.json"  # a damaged tokenizer: carrying the template fails
    env = {**env, "FAKE_STEPS": "3"}
    first = start("run", recipe, "-b", "llamafactory", "--no-lint", "--force", env=env)
    wait_for_step(run_dir, 1)
    tokenizer.write_text("{not json")
    first.wait(timeout=60)
    m = manifest(run_dir)
    assert m["end"] and m["exit_status"] is not None
    assert "RUNNING" not in run("status", run_dir, env=env, check=0).stdout


# --- merge -------------------------------------------------------------------------------------------------------

def merged_from(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def test_merge_takes_the_adapter_of_the_folder_given(setup, tmp_path):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "2"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--force", env=env, check=0)
    (old,) = run_dir.parent.glob("r.old-*")
    run("merge", old, "-o", tmp_path / "m-old", env=env, check=0)
    run("merge", run_dir, "-o", tmp_path / "m-new", env=env, check=0)
    assert merged_from(tmp_path / "m-old")["adapter"] == str(old)
    assert merged_from(tmp_path / "m-old")["adapter_pid"] == (old / "adapter_model.safetensors").read_text()
    assert merged_from(tmp_path / "m-new")["adapter"] == str(run_dir)


def test_two_merges_of_one_run_write_both_outputs(setup, tmp_path):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "2", "FAKE_PARTS": "5"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    procs = [start("merge", run_dir, "-o", tmp_path / name, env=env) for name in ("A", "B")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    for name in ("A", "B"):
        assert merged_from(tmp_path / name)["adapter"] == str(run_dir)
        assert len(list((tmp_path / name).glob("model-*.safetensors"))) == 5
    assert not (run_dir / "merge.yaml").exists()


def test_a_run_is_refused_while_its_folder_is_merged(setup, tmp_path):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "2"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    merging = start("merge", run_dir, "-o", tmp_path / "m", env={**env, "FAKE_PARTS": "30"})
    deadline = time.time() + 30
    while not list(tmp_path.glob(".m.merging-*/out/model-1.safetensors")) and time.time() < deadline:
        time.sleep(0.05)
    refused = run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env)
    assert refused.returncode == 1 and "in use" in refused.stderr, refused.stderr
    assert merging.wait(timeout=60) == 0


def test_merge_refuses_a_live_run(setup, tmp_path):
    recipe, run_dir, env = setup
    first = start("run", recipe, "-b", "llamafactory", "--no-lint", env=env)
    wait_for_step(run_dir, 2)
    refused = run("merge", run_dir, "-o", tmp_path / "m", env=env)
    assert refused.returncode == 1 and f"ftr pid {first.pid}" in refused.stderr, refused.stderr
    assert not (tmp_path / "m").exists()
    first.wait(timeout=60)


def test_merging_an_interrupted_run_is_an_ftr_error(setup, tmp_path):
    recipe, run_dir, env = setup
    first = start("run", recipe, "-b", "llamafactory", "--no-lint", env=env)
    wait_for_step(run_dir, 2)
    first.send_signal(signal.SIGINT)
    first.wait(timeout=30)
    proc = run("merge", run_dir, "-o", tmp_path / "m", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "interrupted" in proc.stderr and "--resume" in proc.stderr


def test_ctrl_c_during_merge_leaves_nothing_at_the_output(setup, tmp_path):
    recipe, run_dir, env = setup
    run("run", recipe, "-b", "llamafactory", "--no-lint", env={**env, "FAKE_STEPS": "2"}, check=0)
    out = tmp_path / "m"
    proc = start("merge", run_dir, "-o", out, env={**env, "FAKE_PARTS": "100"}, start_new_session=True)
    deadline = time.time() + 30
    while not list(tmp_path.glob(".m.merging-*/out/model-3.safetensors")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
    assert proc.wait(timeout=30) != 0
    assert not out.exists() and not list(tmp_path.glob(".m.merging-*"))


def test_merge_writes_nothing_into_the_run_folder(setup, tmp_path):
    recipe, run_dir, env = setup
    run("run", recipe, "-b", "llamafactory", "--no-lint", env={**env, "FAKE_STEPS": "2"}, check=0)
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    mode = run_dir.stat().st_mode
    run_dir.chmod(0o555)  # read-only (for a user other than root)
    try:
        run("merge", run_dir, "-o", tmp_path / "m", env=env, check=0)
    finally:
        run_dir.chmod(mode)
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before
    assert merged_from(tmp_path / "m")["adapter"] == str(run_dir)


def test_merge_of_a_relative_run_path_says_where_the_model_went(setup, tmp_path):
    """Issue 32: `ftr merge runs/r` from the project folder (the backend runs elsewhere) merges into
    runs/r/merged and says so; a failed merge leaves nothing behind (no merge.yaml, no scratch folder)."""
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "2"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    adapter = run_dir / "adapter_model.safetensors"
    weights = adapter.read_text()
    adapter.unlink()  # the fake export fails reading it
    before = sorted(p.name for p in run_dir.iterdir())
    failed = run("merge", "runs/r", env=env, cwd=tmp_path)
    assert failed.returncode != 0 and "nothing was written" in failed.stderr, failed.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == before
    assert not list(tmp_path.rglob("merge.yaml")) and not list(tmp_path.rglob("*.merging-*"))
    adapter.write_text(weights)
    proc = run("merge", "runs/r", env=env, cwd=tmp_path, check=0)
    assert f"merged model in {run_dir / 'merged'}" in proc.stderr, proc.stderr
    assert merged_from(run_dir / "merged")["adapter"] == str(run_dir)
    assert not list(tmp_path.rglob("merge.yaml")) and not list(tmp_path.rglob("*.merging-*"))
