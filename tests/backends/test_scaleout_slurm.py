"""`ftr run --launcher slurm` on a real single-node SLURM cluster (started and stopped here, by PID): the tiny
CPU training completes for LLaMA-Factory and Axolotl; two SLURM tasks on the one node act as two torchrun
nodes (rank from SLURM_PROCID, gloo) and reach the losses of one process with the same global batch; Ctrl-C
while attached cancels the job with scancel."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pytest

from .scaleout import start_slurm, stop_slurm
from .test_ftr_backends import FTR, assert_trained, ftr, read_log, run_env, tiny_recipe  # noqa: F401 (fixture)

# with pytest -n: every scale-out test on one worker (one cluster at a time; torchrun's port 29500)
pytestmark = pytest.mark.xdist_group("scaleout")

# Two "nodes" with micro batch 1 against one process with micro batch 2 (the same global batch of 2, the same
# samples per step): LoRA dropout 0 (its masks are drawn per process), and transformers averages the loss over
# the tokens of all ranks, so the runs agree to float32 reduction-order noise. Measured: within 1e-6.
LOSS_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = start_slurm(tmp_path_factory.mktemp("slurm"))
    yield cluster
    stop_slurm(cluster)


@pytest.fixture
def env(run_env, slurm):
    return {**run_env, **slurm.env, "OMP_NUM_THREADS": "1"}


def job_running(job_id, env):
    state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], env=env, capture_output=True, text=True)
    return state.stdout.strip() in ("PENDING", "RUNNING", "CONFIGURING")


def job_manifest(run_dir):
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.mark.parametrize("backend", ["llamafactory", "axolotl"])
def test_slurm_job_trains(backend, tiny_assets, env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, f"slurm-{backend}", "extends: [lora-sft]")
    started = time.monotonic()
    proc = ftr("run", recipe, "-b", backend, "--launcher", "slurm", "--attach", env=env)
    seconds = time.monotonic() - started
    run_dir = tmp_path / "runs" / f"slurm-{backend}"
    assert_trained(run_dir)
    manifest = job_manifest(run_dir)
    job_id = manifest["job_id"]
    assert manifest["launcher"] == "slurm" and job_id and manifest["nodes"] == 1
    assert f"submitted slurm job {job_id}" in proc.stderr and "ftr: step" in proc.stderr  # the progress line
    assert (run_dir / "job.sbatch").is_file() and (run_dir / "logs" / f"slurm-{job_id}.out").is_file()
    status = ftr("status", run_dir, env=env)
    assert "state:    COMPLETED" in status.stdout and "exit:     0" in status.stdout
    report = ftr("report", run_dir, env=env)
    assert "final train loss" in report.stdout
    print(f"{backend}: SLURM job {job_id} submitted to done in {seconds:.0f} s")


def two_task_recipe(tmp_path, tiny_assets, body):
    two = tiny_recipe(tmp_path, tiny_assets, "two-nodes", body)
    two.write_text(two.read_text().replace("micro_batch_size: 2", "micro_batch_size: 1").replace(
        "hardware: {gpus: 0}",
            'hardware: {gpus: 0, sbatch: ["--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1"]}'))
    return two


def test_two_slurm_tasks_as_two_nodes_match_one_process(tiny_assets, env, tmp_path):
    """LLaMA-Factory through its FORCE_TORCHRUN/NNODES."""
    backend = "llamafactory"
    body = "extends: [lora-sft]\nmethod: {lora: {dropout: 0.0}}"
    one = tiny_recipe(tmp_path, tiny_assets, "one-process", body)
    ftr("run", one, "-b", backend, env=env)
    two = two_task_recipe(tmp_path, tiny_assets, body)
    proc = ftr("run", two, "-b", backend, "--launcher", "slurm", "--nodes", "2", "--attach", env=env)
    run_dir = tmp_path / "runs" / "two-nodes"
    assert_trained(run_dir)
    manifest = job_manifest(run_dir)
    launched = " ".join(manifest["backend_command"]) + json.dumps(manifest["env"])
    assert re.search(r'"NNODES": "2"|--nnodes=2|--num_machines=2', launched), launched  # the backend's own way
    assert (run_dir / "logs" / "node-1.log").stat().st_size > 0  # the second "node" ran
    single, double = read_log(tmp_path / "runs" / "one-process")[0], read_log(run_dir)[0]
    print(f"one process: {single}\ntwo SLURM tasks: {double}")
    assert len(single) == len(double) == 4
    assert max(abs(a - b) for a, b in zip(single, double)) <= LOSS_TOLERANCE, (single, double, proc.stderr[-2000:])


def test_trl_trains_on_two_slurm_tasks(tiny_assets, env, tmp_path):
    """accelerate launch --num_machines 2 --cpu, one process per SLURM task. Its logged losses are not compared
    with one process's: they differ by up to 0.03 (measured), and not because of the LoRA dropout masks: with
    dropout 0 the first logged loss already differs (6.3020 against 6.2926), while the trainer counts the
    tokens across ranks (model_accepts_loss_kwargs and average_tokens_across_devices both hold). See
    docs/scale-out.md."""
    two = two_task_recipe(tmp_path, tiny_assets, "extends: [lora-sft]\nmethod: {lora: {dropout: 0.0}}")
    ftr("run", two, "-b", "trl", "--launcher", "slurm", "--nodes", "2", "--attach", env=env)
    run_dir = tmp_path / "runs" / "two-nodes"
    assert_trained(run_dir)
    assert "--num_machines=2" in job_manifest(run_dir)["backend_command"]
    assert (run_dir / "logs" / "node-1.log").stat().st_size > 0


def test_ctrl_c_while_attached_cancels_the_job(tiny_assets, env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "cancelled", "extends: [lora-sft]")
    recipe.write_text(recipe.read_text().replace("max_steps: 4", "max_steps: 400"))
    proc = subprocess.Popen([*FTR, "run", str(recipe), "-b", "llamafactory", "--launcher", "slurm", "--attach"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    run_dir = tmp_path / "runs" / "cancelled"
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "job.json").exists():
        time.sleep(0.5)
    time.sleep(3)
    proc.stdin.write("y\n")
    proc.stdin.flush()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "cancel job" in err and "cancelled job" in err, err[-2000:]
    job_id = json.loads((run_dir / "job.json").read_text())["job_id"]
    for _ in range(60):
        shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, env=env)
        if "JobState=CANCELLED" in shown.stdout:
            break
        time.sleep(0.5)
    assert "JobState=CANCELLED" in shown.stdout, shown.stdout + shown.stderr


def squeue_state(job_id, env):
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], env=env, capture_output=True,
                          text=True).stdout.strip()


def test_requeued_job_resumes_from_its_last_checkpoint(tiny_assets, env, tmp_path):
    """--attach, started before the requeue, follows the job through its first attempt's end (rank 0 writes an
    end and exit status into the manifest), SLURM's requeue (COMPLETING, then PENDING) and the second attempt,
    to the job's own end."""
    recipe = tiny_recipe(tmp_path, tiny_assets, "requeued", "extends: [lora-sft]")
    recipe.write_text(recipe.read_text().replace("max_steps: 4", "max_steps: 40").replace("save_steps: 2",
        "save_steps: 1"))
    ftr("run", recipe, "-b", "llamafactory", "--launcher", "slurm", env=env)
    run_dir = tmp_path / "runs" / "requeued"
    job_id = json.loads((run_dir / "job.json").read_text())["job_id"]
    deadline = time.time() + 300
    while time.time() < deadline and not list(run_dir.glob("checkpoint-*/trainer_state.json")):
        assert job_running(job_id, env), (run_dir / "logs" / f"slurm-{job_id}.out").read_text(errors="replace")
        time.sleep(0.5)
    assert list(run_dir.glob("checkpoint-*/trainer_state.json")), "no complete checkpoint within 300 s"
    with (tmp_path / "attach.out").open("w") as out, (tmp_path / "attach.err").open("w") as err:
        attach = subprocess.Popen([*FTR, "status", str(run_dir), "--attach", "--interval", "1"], env=env,
                                  stdout=out, stderr=err)
    try:
        time.sleep(2)  # attached to the running first attempt
        subprocess.run(["scontrol", "requeue", job_id], env=env, check=True)  # what a preemption does
        requeued = time.time()
        # SLURM holds a requeued job for about 2 minutes (Reason=BeginTime), a hold it sets when the first
        # attempt has left COMPLETING (a StartTime given earlier is overwritten then). Start it at once, but in
        # a later second than the requeue: slurmd refuses a start whose credential is not newer than the
        # requeue's revocation ("Job N already killed, do not launch batch job") and SLURM ends the job,
        # CANCELLED or FAILED.
        deadline = time.time() + 120
        while time.time() < deadline and squeue_state(job_id, env) != "PENDING":
            time.sleep(0.2)
        assert squeue_state(job_id, env) == "PENDING", "the requeued job did not leave COMPLETING in 120 s"
        assert attach.poll() is None, "--attach took the first attempt's end for the job's: " + \
            (tmp_path / "attach.err").read_text(errors="replace")[-2000:]
        status = ftr("status", run_dir, env=env)
        assert "state:    PENDING" in status.stdout, status.stdout  # the first attempt's exit, if any, is not the job's
        assert "exit:" not in status.stdout or "the job goes on" in status.stdout, status.stdout
        time.sleep(max(0.0, int(requeued) + 2 - time.time()))
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=env, check=True)
        attach.wait(timeout=600)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
    attached = (tmp_path / "attach.err").read_text(errors="replace")
    assert attach.returncode == 0 and f"ftr: job {job_id} completed" in attached, attached[-3000:]
    manifest = job_manifest(run_dir)
    assert manifest["exit_status"] == 0 and manifest["restarts"] >= 1, manifest
    assert [a["exit_status"] for a in manifest["attempts"]][-1] == 0 and len(manifest["attempts"]) >= 2, manifest
    assert manifest["resumed_from"].startswith(str(run_dir / "checkpoint-"))
    out = (run_dir / "logs" / f"slurm-{job_id}.out").read_text(errors="replace")
    assert f"ftr: resuming from {manifest['resumed_from']}" in out
    resumed_at = int(manifest["resumed_from"].rsplit("-", 1)[1])
    steps = [int(s) for s in re.findall(r"(\d+)/40 \[", out.split("ftr: resuming from")[1]) if s != "0"]
    # the second start goes on after the checkpoint; on a slow machine the first attempt may have saved the last
    # step's checkpoint before the requeue, and the second then has nothing left to train
    assert (steps and steps[0] == resumed_at + 1) or (not steps and resumed_at == 40), (resumed_at, steps[:5])
    assert (run_dir / "adapter_model.safetensors").is_file()
