"""``output.save_total_limit: all`` (issue 26): each backend's own parser holds the value ftr writes for it, and
that value makes the environment's transformers keep every checkpoint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ft_recipes import backends
from ft_recipes.backends.emitted import write_outputs
from ft_recipes.recipe.loaded import load_recipe

pytestmark = pytest.mark.xdist_group("keep-all-checkpoints")

# backend -> (python fixture, where its effective helper puts save_total_limit, what ftr writes for "all")
TARGETS = {"llamafactory": ("lf_python", ("training", "save_total_limit"), None),
           "axolotl": ("ax_python", ("save_total_limit",), -1),
           "trl": ("trl_python", ("args", "save_total_limit"), None)}


def _axolotl_builder(limit):
    """Axolotl's trainer builder (core/builders/base.py): an empty or 0 limit becomes 4, any other value goes to
    transformers as written (test_axolotl_builder_is_the_one_this_test_assumes)."""
    return limit if limit else 4


ROTATE = """
import json, os, sys, tempfile
from transformers.trainer_utils import rotate_checkpoints
out = {}
for limit in json.loads(sys.argv[1]):
    root = tempfile.mkdtemp()
    for step in range(1, 6):
        os.makedirs(os.path.join(root, f"checkpoint-{step}"))
    rotate_checkpoints(root, save_total_limit=limit)
    out[str(limit)] = len(os.listdir(root))
print(json.dumps(out))
"""


def _recipe(tmp_path: Path, tiny_assets, limit) -> Path:
    path = tmp_path / f"r{limit}.yaml"
    path.write_text(json.dumps({
        "ftr": 1, "model": {"base": str(tiny_assets.model), "template": "chatml"}, "stage": "sft",
        "method": {"type": "lora"}, "train": {"lr": 1.0e-4, "max_steps": 2, "precision": "fp32"},
        "data": {"train": [{"path": str(tiny_assets.data / "alpaca.jsonl"), "format": "alpaca"}]},
        "output": {"dir": str(tmp_path / "run"), "save": "steps", "save_steps": 1, "save_total_limit": limit},
        "hardware": {"gpus": 0}}))
    return path


def _effective(backend, python: Path, configs: list[Path], env: dict) -> list[dict]:
    args = [str(python), str(backend.folder / "effective_helper.py")]
    if backend.name == "trl":
        args.append(str(backend.folder / "train_script.py"))
    proc = subprocess.run(args + [str(c) for c in configs], capture_output=True, text=True, env=env, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(configs), proc.stderr[-3000:]
    return lines


@pytest.mark.parametrize("name", TARGETS)
def test_keep_all_is_what_each_backend_parses(name, tmp_path, tiny_assets, backend_env, request):
    fixture, where, keep_all = TARGETS[name]
    backend, python = backends.get(name), request.getfixturevalue(fixture)
    configs = []
    for limit in ("all", 3):
        loaded = load_recipe(_recipe(tmp_path, tiny_assets, limit))
        out = tmp_path / f"{name}-{limit}"
        emitted = backend.emit(loaded.recipe, out)
        write_outputs(emitted, loaded.recipe, out, force=True)
        configs.append(out / emitted.main)
    parsed = []
    for result in _effective(backend, python, configs, backend_env):
        assert result["ok"], result.get("error")
        value = result["effective"]
        for part in where:
            value = value[part]
        parsed.append(value)
    assert parsed == [keep_all, 3]
    if name == "axolotl":
        parsed = [_axolotl_builder(v) for v in parsed]  # what reaches transformers
    proc = subprocess.run([str(python), "-c", ROTATE, json.dumps(parsed)], capture_output=True, text=True,
                          env=backend_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {str(parsed[0]): 5, "3": 3}


def test_axolotl_builder_is_the_one_this_test_assumes(ax_python, backend_env):
    code = ("import inspect, axolotl.core.builders.base as b; "
            "print('self.cfg.save_total_limit if self.cfg.save_total_limit else 4' in inspect.getsource(b))")
    proc = subprocess.run([str(ax_python), "-c", code], capture_output=True, text=True, env=backend_env, timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == "True", proc.stderr[-2000:]
