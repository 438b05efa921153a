"""`ftr run --launcher ray` on a real local Ray cluster (``ray start --head`` on 127.0.0.1, started and stopped
here by PID): two Ray workers each run one torchrun node of the tiny CPU LLaMA-Factory training."""

from __future__ import annotations

import json
import time

import pytest

from .scaleout import start_ray, stop_ray
from .test_ftr_backends import assert_trained, ftr, read_log, run_env, tiny_recipe  # noqa: F401 (fixture)

# with pytest -n: every scale-out test on one worker (one cluster at a time; torchrun's port 29500)
pytestmark = pytest.mark.xdist_group("scaleout")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory, run_env):
    cluster = start_ray(tmp_path_factory.mktemp("ray"), {**run_env, "OMP_NUM_THREADS": "1"})
    yield cluster
    stop_ray(cluster)


def test_two_ray_workers_train(ray_cluster, tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "ray-lf", "extends: [lora-sft]")
    recipe.write_text(recipe.read_text().replace("micro_batch_size: 2", "micro_batch_size: 1"))
    started = time.monotonic()
    proc = ftr("run", recipe, "-b", "llamafactory", "--launcher", "ray", "--nodes", "2", "--ray-address",
               ray_cluster.address, "--attach", env=run_env)
    seconds = time.monotonic() - started
    run_dir = tmp_path / "runs" / "ray-lf"
    assert_trained(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["launcher"] == "ray" and manifest["job_id"].startswith("ftr-ray-lf-")
    assert manifest["env"]["NNODES"] == "2" and manifest["env"]["MASTER_ADDR"] == "127.0.0.1"
    assert "world size: 2" in (run_dir / "logs" / "train.log").read_text()
    assert (run_dir / "logs" / "node-1.log").stat().st_size > 0  # the second worker
    assert "succeeded" in proc.stderr and "ftr: step" in proc.stderr
    status = ftr("status", run_dir, env=run_env)
    assert "state:    SUCCEEDED" in status.stdout
    assert len(read_log(run_dir)[0]) == 4
    print(f"Ray job {manifest['job_id']}: two workers, submitted to done in {seconds:.0f} s")

