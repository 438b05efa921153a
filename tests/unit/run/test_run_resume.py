"""Safe resume (issue 34, item 4) with the fake LLaMA-Factory CLI of tests/fixtures/fake_backend.py: a
checkpoint whose trainer_state.json was cut mid-write is skipped, a recipe changed since the run started is
refused unless asked for, and the manifest keeps every attempt."""

from __future__ import annotations

import signal
import sys

import pytest
from test_run_faults import manifest, run, setup, start, wait_for_step, writers  # noqa: F401 (setup: fixture)

from ft_recipes.run.manifest import earlier_attempts
from ft_recipes.run.plan import last_checkpoint

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="flock and PR_SET_PDEATHSIG")


def checkpoint(run_dir, step: int, state: str | None) -> None:
    folder = run_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if state is not None:
        (folder / "trainer_state.json").write_text(state)


def test_the_newest_checkpoint_whose_state_parses_is_chosen(tmp_path, capsys):
    checkpoint(tmp_path, 1, '{"global_step": 1}')
    checkpoint(tmp_path, 2, '{"global_step": 2}')
    checkpoint(tmp_path, 3, "[]")  # JSON, but not a trainer state
    checkpoint(tmp_path, 4, '{"global_step": 4, "log_hist')  # cut mid-write
    checkpoint(tmp_path, 5, None)  # cut before it was written
    checkpoint(tmp_path, 10, b"\xff\xfe".decode("latin-1"))  # not UTF-8 JSON
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    err = capsys.readouterr().err
    assert "checkpoint-4: incomplete (trainer_state.json does not parse" in err
    assert "checkpoint-5: incomplete (no trainer_state.json" in err
    assert "checkpoint-3" in err and "checkpoint-10" in err


def test_resume_skips_a_checkpoint_cut_mid_write(setup):
    recipe, run_dir, env = setup
    first = start("run", recipe, "-b", "llamafactory", "--no-lint", env=env)
    wait_for_step(run_dir, 4)
    first.send_signal(signal.SIGINT)
    first.wait(timeout=30)
    newest = max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*"))
    (run_dir / f"checkpoint-{newest}" / "trainer_state.json").write_text('{"global_step": ')
    resumed = run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env, check=0)
    assert f"skipping {run_dir}/checkpoint-{newest}" in resumed.stderr
    assert manifest(run_dir)["resumed_from"] == str(run_dir / f"checkpoint-{newest - 1}")
    second = writers(run_dir)[-1][0]
    assert [step for pid, step in writers(run_dir) if pid == second][0] == newest


def test_resume_of_a_changed_recipe_is_refused(setup):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "3"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    before = (run_dir / "manifest.json").read_text()
    recipe.write_text(recipe.read_text() + "train: {lr: 1.0e-3}\n")
    refused = run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env)
    assert refused.returncode == 1, refused.stderr
    assert "the recipe changed since this run started" in refused.stderr
    assert "--force" in refused.stderr and "--allow-changed" in refused.stderr and "Traceback" not in refused.stderr
    assert (run_dir / "manifest.json").read_text() == before  # the first attempt's record is intact
    assert len({pid for pid, _ in writers(run_dir)}) == 1


def test_resume_of_a_changed_recipe_when_asked_is_recorded(setup):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "3"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    first_hash = manifest(run_dir)["recipe_hash"]
    recipe.write_text(recipe.read_text() + "train: {lr: 1.0e-3}\n")
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", "--allow-changed", env=env, check=0)
    m = manifest(run_dir)
    assert m["recipe_changed"] is True and m["recipe_hash"] != first_hash
    assert [a["recipe_hash"] for a in m["attempts"]] == [first_hash, m["recipe_hash"]]


def test_allow_changed_needs_resume(setup):
    recipe, _, env = setup
    proc = run("run", recipe, "-b", "llamafactory", "--no-lint", "--allow-changed", env=env)
    assert proc.returncode == 2 and "--allow-changed goes with --resume" in proc.stderr


def test_an_unchanged_recipe_resumes_without_a_note(setup):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "3"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env, check=0)
    assert manifest(run_dir)["recipe_changed"] is False


def test_the_manifest_keeps_every_attempt(setup):
    recipe, run_dir, env = setup
    first = start("run", recipe, "-b", "llamafactory", "--no-lint", env=env)
    wait_for_step(run_dir, 2)
    first.send_signal(signal.SIGINT)
    first.wait(timeout=30)
    second = start("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env)
    wait_for_step(run_dir, max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*")) + 2)
    second.kill()  # kill -9: this attempt never gets an end
    second.wait(timeout=30)
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--resume", env=env, check=0)
    m = manifest(run_dir)
    one, two, three = m["attempts"]
    assert one["interrupted"] is True and one["end"] and one["exit_status"] == 130 and one["resumed_from"] is None
    assert two["start"] and two["end"] is None and two["exit_status"] is None
    assert two["resumed_from"].startswith(str(run_dir / "checkpoint-"))
    assert three == {k: m.get(k) for k in three} and three["exit_status"] == 0 and three["interrupted"] is False
    assert int(three["resumed_from"].split("-")[-1]) > int(two["resumed_from"].split("-")[-1])


def test_a_forced_run_starts_a_new_history(setup):
    recipe, run_dir, env = setup
    env = {**env, "FAKE_STEPS": "2"}
    run("run", recipe, "-b", "llamafactory", "--no-lint", env=env, check=0)
    run("run", recipe, "-b", "llamafactory", "--no-lint", "--force", env=env, check=0)
    assert len(manifest(run_dir)["attempts"]) == 1
    (old,) = run_dir.parent.glob("r.old-*")
    assert len(manifest(old)["attempts"]) == 1


def test_a_manifest_of_an_older_ftr_gives_its_one_attempt():
    older = {"start": "2024-01-01T00:00:00+00:00", "end": "2024-01-01T01:00:00+00:00", "exit_status": 0}
    assert [a["start"] for a in earlier_attempts(older)] == [older["start"]]
    assert earlier_attempts({"start": None}) == []
