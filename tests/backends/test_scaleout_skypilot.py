"""`ftr run --launcher skypilot`: the task YAML it writes is accepted by SkyPilot's own parser
(``sky.Task.from_yaml``, SkyPilot 0.14.1 in the tools environment; no cloud is contacted), and the recipe the
nodes get loads and compiles once its file mounts are in place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from .scaleout import tools_python
from .test_ftr_backends import ftr, run_env, tiny_recipe  # noqa: F401 (fixture)

pytestmark = pytest.mark.xdist_group("scaleout")  # with pytest -n: every scale-out test on one worker

PARSE = """
import json, sys
import sky
task = sky.Task.from_yaml(sys.argv[1])
(resources,) = task.resources
print(json.dumps({"name": task.name, "num_nodes": task.num_nodes, "accelerators": resources.accelerators,
                  "file_mounts": task.file_mounts, "setup": task.setup, "run": task.run}))
"""


@pytest.fixture(scope="module")
def sky_python():
    return tools_python()


def parse(python, path):
    return subprocess.run([str(python), "-c", PARSE, str(path)], capture_output=True, text=True, timeout=300)


def test_task_yaml_accepted_by_skypilot(sky_python, tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "sky", "extends: [lora-sft]")
    recipe.write_text(recipe.read_text().replace("hardware: {gpus: 0}", "hardware: {gpus: 0, accelerator: A100}"))
    env = {**run_env, "PATH": "/usr/bin:/bin"}  # no `sky` here: ftr writes the task and says how to launch it
    proc = ftr("run", recipe, "-b", "llamafactory", "--launcher", "skypilot", "--nodes", "2", "--gpus", "8", env=env)
    run_dir = tmp_path / "runs" / "sky"
    assert "sky launch --yes --detach-run --cluster ftr-sky" in proc.stderr
    parsed = parse(sky_python, run_dir / "sky-task.yaml")
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    task = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert task["num_nodes"] == 2 and task["accelerators"] == {"A100": 8}
    assert '--node-rank "$SKYPILOT_NODE_RANK"' in task["run"] and "SKYPILOT_NODE_IPS" in task["run"]
    assert "ftr backend install llamafactory" in task["setup"]
    mounts = task["file_mounts"]
    assert mounts["~/ftr/recipe.yaml"] == str(run_dir / "sky-recipe.yaml")
    assert mounts["~/ftr/model"] == str(tiny_assets.model)
    # the nodes' view: the mounts in place under a stand-in home, the recipe compiles there
    home = tmp_path / "home"
    for remote, local in mounts.items():
        target = home / remote.removeprefix("~/")
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if os.path.isdir(local) else shutil.copy)(local, target)
    ftr("compile", home / "ftr" / "recipe.yaml", "-b", "llamafactory", "-o", tmp_path / "remote", env=run_env)
    compiled = yaml.safe_load((tmp_path / "remote" / "llamafactory.yaml").read_text())
    assert compiled["model_name_or_path"] == str(home / "ftr" / "model")


def test_skypilot_parser_rejects_a_broken_task(sky_python, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nnum_nodez: 2\nrun: echo hi\n")
    parsed = parse(sky_python, path)
    assert parsed.returncode != 0 and "num_nodez" in parsed.stderr, parsed.stderr[-2000:]
