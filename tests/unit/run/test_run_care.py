"""Care with folders ftr did not make (issue 34, item 8): `--force` moves aside only an earlier run, never a
model or data folder, and a run folder that is the local base model is refused."""

from __future__ import annotations

import sys

import pytest
from test_run_faults import manifest, run, setup  # noqa: F401 (setup: fixture)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fake backend's launch")


def with_output(recipe, folder) -> None:
    text = recipe.read_text()
    start = text.index("output: {dir: ")
    end = text.index("}\n", start)
    recipe.write_text(text[:start] + f"output: {{dir: {folder}" + text[end:])


def test_force_refuses_a_folder_that_is_not_a_run(setup, tmp_path):
    recipe, _, env = setup
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}")
    (other / "model.safetensors").write_text("weights")
    with_output(recipe, other)
    proc = run("run", recipe, "-b", "llamafactory", "--no-lint", "--force", env=env)
    assert proc.returncode == 1 and "FTR501" in proc.stderr and "no earlier run" in proc.stderr, proc.stderr
    assert sorted(p.name for p in other.iterdir()) == [".ftr.lock", "config.json", "model.safetensors"]
    assert not list(tmp_path.glob("other-model.old-*"))


def test_force_moves_an_earlier_run_aside(setup):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "2"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--force", env=env, check=0)
    (old,) = run_dir.parent.glob("r.old-*")
    assert manifest(old)["exit_status"] == 0 and manifest(run_dir)["exit_status"] == 0


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_the_base_model_folder_is_not_a_run_folder(setup, tmp_path, force):
    recipe, _, env = setup
    with_output(recipe, tmp_path / "model")
    proc = run("run", recipe, "-b", "llamafactory", "--no-lint", *force, env=env)
    assert proc.returncode != 0 and "contains the run's input" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json"]
