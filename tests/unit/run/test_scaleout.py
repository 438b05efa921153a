"""`ftr run --launcher slurm|skypilot|ray --dry-run`: the job files ftr writes (sbatch script, SkyPilot task, Ray
entrypoint) from the command line, the recipe's hardware: section and a team's cluster preset; the refusals;
`ftr status` of a local run; a requeued job's resume step. The real engines run in tests/backends/test_scaleout_*."""

import json
import re
import shlex
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner
from paths import ROOT

from ft_recipes import backends
from ft_recipes.cli.main import main

DATA = ROOT / "recipes" / "examples" / "data" / "alpaca.jsonl"


@pytest.fixture
def fake_envs(tmp_path, monkeypatch):
    for name in ("LLAMAFACTORY", "AXOLOTL", "TRL"):
        python = tmp_path / "envs" / name.lower() / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text("#!/bin/sh\n")
        monkeypatch.setenv(f"FTR_{name}_PYTHON", str(python))
    return tmp_path / "envs"


def recipe(tmp_path, hardware: str = "{}", extends: str = "lora-sft"):
    path = tmp_path / "r.yaml"
    path.write_text(f"ftr: 1\nextends: [{extends}]\nmodel: {{base: Qwen/Qwen2.5-7B-Instruct, template: chatml, "
                    f"pad_token: eos}}\ndata:\n  train:\n    - {{path: {DATA}, format: alpaca}}\n"
                    f"output: {{dir: runs/job}}\nhardware: {hardware}\n")
    return path


def dry(path, *args, backend="llamafactory"):
    return CliRunner().invoke(main, ["run", str(path), "-b", backend, "--dry-run", *args])


def job_file(output: str) -> str:
    return output.split("\n\n", 1)[1]


def test_slurm_script_from_the_command_line_and_the_hardware_section(tmp_path, fake_envs):
    path = recipe(tmp_path, '{partition: gpu, account: team-a, time: "1-04:00:00", cpus_per_node: 32, '
                            'setup: ["module load cuda/12.4"], sbatch: ["--qos=high", "--exclusive"]}')
    result = dry(path, "--launcher", "slurm", "--nodes", "4", "--gpus-per-node", "8")
    assert result.exit_code == 0, result.output
    script = job_file(result.stdout)
    for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=gpu", "#SBATCH --account=team-a", "#SBATCH --time=1-04:00:00",
                 "#SBATCH --cpus-per-task=32", "#SBATCH --qos=high", "#SBATCH --exclusive", "#SBATCH --requeue",
                 "module load cuda/12.4", 'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'):
        assert line in script.splitlines(), (line, script)
    srun = script.splitlines()[-1]
    words = shlex.split(srun)
    assert words[:3] == ["srun", "--export=ALL", "--kill-on-bad-exit=1"]
    assert words[3:5] == ["bash", "-c"] and "ft_recipes.run.launchers.node" in words[5]
    assert words[5].endswith('--rank "$SLURM_PROCID" --master-addr "$1" --master-port "$2"')
    assert "--prepare" in script  # requeue: resume from the last checkpoint
    assert not (tmp_path / "runs").exists(), "a dry run writes nothing"
    check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def test_sbatch_option_replaces_ftrs_own_and_bad_ones_are_refused(tmp_path, fake_envs):
    path = recipe(tmp_path, '{gpus: 0, sbatch: ["--nodes=1", "--ntasks-per-node=2"]}')
    script = job_file(dry(path, "--launcher", "slurm", "--nodes", "2").stdout)
    assert "#SBATCH --nodes=1" in script and "#SBATCH --nodes=2" not in script
    assert "#SBATCH --ntasks-per-node=2" in script and "#SBATCH --ntasks-per-node=1" not in script
    bad = dry(recipe(tmp_path, '{sbatch: ["-p gpu"]}'), "--launcher", "slurm")
    assert bad.exit_code == 2 and "--name=value" in bad.output and "Traceback" not in bad.output


def test_a_cluster_preset_shapes_the_job(tmp_path, fake_envs):
    (tmp_path / "cluster-a.yaml").write_text(
        "ftr: 1\nhardware:\n  launcher: slurm\n  nodes: 2\n  gpus: 4\n  partition: a100\n  time: '12:00:00'\n"
        "  container: nvcr.io/nvidia/pytorch:24.05-py3\n  setup: [source /shared/venvs/ftr/bin/activate]\n")
    path = recipe(tmp_path, "{}", extends="lora-sft, ./cluster-a.yaml")
    result = dry(path)
    assert result.exit_code == 0, result.output
    script = job_file(result.stdout)
    assert "#SBATCH --nodes=2" in script and "#SBATCH --gpus-per-node=4" in script and "#SBATCH --partition=a100" in script  # noqa: E501
    assert "--container-image=nvcr.io/nvidia/pytorch:24.05-py3" in script
    assert "source /shared/venvs/ftr/bin/activate" in script


@pytest.mark.parametrize("backend", list(backends.NAMES))
def test_every_backend_submits_the_same_way(backend, tmp_path, fake_envs):
    result = dry(recipe(tmp_path), "--launcher", "slurm", "--nodes", "2", "--gpus", "8", backend=backend)
    assert result.exit_code == 0, result.output
    assert "srun" in job_file(result.stdout)


def test_skypilot_task(tmp_path, fake_envs):
    path = recipe(tmp_path, "{accelerator: H100, cloud: aws, setup: [nvidia-smi]}")
    result = dry(path, "--launcher", "skypilot", "--nodes", "2", "--gpus", "8", "--deepspeed", "zero3")
    assert result.exit_code == 0, result.output
    task = yaml.safe_load(job_file(result.stdout))
    assert task["num_nodes"] == 2 and task["resources"] == {"accelerators": "H100:8", "cloud": "aws"}
    assert task["file_mounts"]["~/ftr/data/0-alpaca.jsonl"] == str(DATA)
    run = task["run"]
    assert '--node-rank "$SKYPILOT_NODE_RANK"' in run and '--master-addr "$head"' in run
    assert "--deepspeed zero3" in run and "--launcher local" in run and "nvidia-smi" in task["setup"]
    assert "ftr backend install llamafactory" in task["setup"]
    missing = dry(recipe(tmp_path), "--launcher", "skypilot", "--gpus", "8")
    assert missing.exit_code == 2 and "hardware.accelerator" in missing.output


def test_ray_entrypoint(tmp_path, fake_envs):
    result = dry(recipe(tmp_path, "{gpus: 2, ray_address: 'http://head:8265'}"), "--launcher", "ray", "--nodes", "3")
    assert result.exit_code == 0, result.output
    last = shlex.split(job_file(result.stdout).splitlines()[-1])
    assert last[:3] == ["exec", "python", str(ROOT / "ft_recipes" / "run" / "launchers" / "ray_driver.py")]
    assert "--nodes=3" in last and "--gpus=2" in last and "ft_recipes.run.launchers.node" in last


def test_launcher_options_are_checked(tmp_path, fake_envs):
    path = recipe(tmp_path)
    assert "--launcher slurm" in dry(path, "--attach").output
    assert dry(path, "--launcher", "slurm", "--ray-address", "http://x:8265").exit_code == 2
    bad = dry(path, "--launcher", "slurm", "--nodes", "0")
    assert bad.exit_code == 2 and "--nnodes 0" in bad.output
    bad_time = dry(recipe(tmp_path, "{time: soon}"), "--launcher", "slurm")
    assert bad_time.exit_code == 1 and "FTR00" in bad_time.output


def test_cpu_multi_node_commands(tmp_path, fake_envs):
    """Two CPU "nodes" (what the SLURM/Ray tests run): one process per node, the backend's own launcher."""
    path = recipe(tmp_path, "{gpus: 0}")
    common = ["--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1", "--master-port", "29555"]
    lf = dry(path, *common).stdout
    assert "NPROC_PER_NODE=1" in lf and "NNODES=2" in lf and "FORCE_TORCHRUN=1" in lf
    ax = dry(path, *common, backend="axolotl")  # Axolotl 0.19 cannot: refused with the reason
    assert ax.exit_code == 2 and "cannot train across nodes on the CPU" in ax.output and "--gpus 1" in ax.output
    trl = dry(path, *common, backend="trl").stdout
    assert "--num_processes=2 --num_machines=2 --machine_rank=1 --cpu" in trl


def test_status_of_a_local_run(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"backend": "trl", "start": "t0", "end": "t1", "exit_status": 0}))
    (run_dir / "logs" / "train.log").write_text(" 50%|#| 2/4 [00:01<00:01, 1.0it/s]\n{'loss': 6.25, 'epoch': 0.1}\n")
    result = CliRunner().invoke(main, ["status", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "launcher: local" in result.output and "state:    COMPLETED" in result.output
    assert "progress: step 2/4  loss 6.25" in result.output and "exit:     0" in result.output
    not_a_run = CliRunner().invoke(main, ["status", str(tmp_path)])
    assert not_a_run.exit_code == 2 and "manifest.json" in not_a_run.output


def test_prepare_resumes_a_requeued_job(tmp_path, fake_envs):
    """What the sbatch script runs before srun: with a checkpoint in the run directory (a requeued job), the
    backend's resume key goes into the compiled config and the manifest records it."""
    from ft_recipes.run.launchers.node import main as node

    path = recipe(tmp_path, "{gpus: 0}")
    assert CliRunner().invoke(main, ["compile", str(path), "-b", "llamafactory", "-o",
        str(tmp_path / "runs" / "job")]).exit_code == 0
    run_dir = tmp_path / "runs" / "job"
    config = run_dir / "llamafactory.yaml"
    spec = {"backend": "llamafactory", "python": str(fake_envs / "llamafactory" / "bin" / "python"),
            "config": str(config), "offline": False, "checkpoint": None,
            "opts": {"gpus": 0, "nnodes": 2, "node_rank": 0, "master_addr": None, "master_port": None,
                     "deepspeed": None, "fsdp": False, "extra": []}}
    (run_dir / "node.json").write_text(json.dumps(spec))
    (run_dir / "manifest.json").write_text(json.dumps({"backend": "llamafactory", "start": None}))
    assert node([str(run_dir), "--prepare"]) == 0
    assert "resume_from_checkpoint" not in yaml.safe_load(config.read_text())  # nothing to resume yet
    for step in (2, 10, 12):
        (run_dir / f"checkpoint-{step}").mkdir()
    for step in (2, 10):  # checkpoint-12 was cut short by the preemption: the trainer writes its state last
        (run_dir / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert node([str(run_dir), "--prepare"]) == 0
    assert yaml.safe_load(config.read_text())["resume_from_checkpoint"] == str(run_dir / "checkpoint-10")
    assert json.loads((run_dir / "manifest.json").read_text())["resumed_from"] == str(run_dir / "checkpoint-10")


def test_launchers_package_names_no_backend():
    """The engines only run launchers.node; the backend's own launch module decides the multi-node command."""
    from ft_recipes import backends

    for path in (ROOT / "ft_recipes" / "run" / "launchers").glob("*.py"):
        text = path.read_text()
        assert not [name for name in backends.NAMES if re.search(rf"\b{name}\b", text)], path
    proc = subprocess.run([sys.executable, "-c", "import ft_recipes.run.launchers.slurm, ft_recipes.run.launchers.ray, "
                           "ft_recipes.run.launchers.skypilot, ft_recipes.run.launchers.local"], cwd=ROOT)
    assert proc.returncode == 0


def test_an_engine_that_is_not_there_stops_before_anything_is_written(tmp_path, fake_envs, monkeypatch):
    path = recipe(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    no_slurm = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory", "--launcher", "slurm"])
    assert no_slurm.exit_code == 2 and "`sbatch` is not on PATH" in no_slurm.output and "--dry-run" in no_slurm.output
    no_ray = CliRunner().invoke(main, ["run", str(path), "-b", "llamafactory", "--launcher", "ray",
                                       "--ray-address", "http://127.0.0.1:9"])
    assert no_ray.exit_code == 2 and "cannot reach the Ray dashboard at http://127.0.0.1:9" in no_ray.output
    assert "ray start --head" in no_ray.output and "Traceback" not in no_ray.output
    assert not (tmp_path / "runs").exists()
