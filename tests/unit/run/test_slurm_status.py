"""`ftr status` and `--attach` of a SLURM job across a requeue, against fake `squeue` and `scontrol` that print
what SLURM 22.05 prints (watched on the single-node cluster of tests/backends: `scontrol requeue` of a running
job shows COMPLETING, then PENDING with Reason=BeginTime for about 2 minutes, then RUNNING again; a job
past MinJobAge makes both tools exit 1 with "Invalid job id specified"). The run's manifest meanwhile holds the
first attempt's end and exit status: only SLURM's own final states end the job."""

import json
import os
import stat

import pytest
from click.testing import CliRunner

from ft_recipes.cli.main import main
from ft_recipes.run.launchers import jobs, slurm
from ft_recipes.run.launchers.base import State

JOB = "7"
INVALID = "slurm_load_jobs error: Invalid job id specified"

# squeue -h -j ID -o "%T %r" lines of jobs SLURM still holds, as printed by SLURM 22.05.8
HELD = ["PENDING None", "PENDING BeginTime", "PENDING Resources", "RUNNING None", "CONFIGURING None",
        "COMPLETING None", "COMPLETING job requeued in held state", "PENDING job requeued in held state",
        "SPECIAL_EXIT job requeued in held state", "REQUEUED None", "REQUEUE_HOLD JobHeldAdmin",
        "REQUEUE_FED None", "SUSPENDED None"]


def fake_slurm(tmp_path, monkeypatch, steps: list[tuple[str, str]], run_dir=None, manifests=None):
    """squeue and scontrol on PATH playing ``steps`` (squeue's output, scontrol's output; "!" + text: the tool
    fails with that text), one step per squeue call, the last one repeated; ``manifests[i]`` (a dict), when
    given, becomes the run's manifest.json at step i, as the job's rank 0 would write it."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    data = tmp_path / "fake-slurm"
    data.mkdir()
    (data / "calls").write_text("0")
    for i, (squeue, scontrol) in enumerate(steps):
        (data / f"squeue-{i}").write_text(squeue)
        (data / f"scontrol-{i}").write_text(scontrol)
        if manifests and manifests[i] is not None:
            (data / f"manifest-{i}").write_text(json.dumps(manifests[i]))
    last = len(steps) - 1
    tool = """#!/bin/bash
d=%(data)s
n=$(cat "$d/calls")
%(advance)s
out=$(cat "$d/%(name)s-$n")
if [ "${out:0:1}" = "!" ]; then echo "${out:1}" >&2; exit 1; fi
[ -n "$out" ] && echo "$out"
exit 0
"""
    advance = f"""[ -e "$d/manifest-$n" ] && cp "$d/manifest-$n" {run_dir / "manifest.json" if run_dir else "/dev/null"}
echo $(( n < {last} ? n + 1 : {last} )) > "$d/calls"
"""
    for name, step in (("squeue", advance), ("scontrol", "")):
        path = bin_dir / name
        path.write_text(tool % {"data": data, "advance": step, "name": name})
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return data


def slurm_run(tmp_path, **manifest):
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"backend": "llamafactory", **manifest}))
    (run_dir / "job.json").write_text(json.dumps({"launcher": "slurm", "job_id": JOB, "script": "job.sbatch"}))
    return run_dir


def shown(state: str) -> str:
    return f"JobId={JOB} JobName=ftr-run UserId=root(0) JobState={state} Reason=None Dependency=(null) Requeue=1"


@pytest.mark.parametrize("line", HELD)
def test_a_job_slurm_still_holds_is_not_over(line, tmp_path, monkeypatch):
    """Whatever the manifest says of the last attempt (here: it ended, exit 143, as a requeue leaves it)."""
    fake_slurm(tmp_path, monkeypatch, [(line, "!should not be asked")])
    now = slurm.status({"job_id": JOB, "end": "t1", "exit_status": 143})
    word, _, reason = line.partition(" ")
    assert now == State(word if reason == "None" else f"{word} ({reason})", done=False)


@pytest.mark.parametrize("word", ["PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SPECIAL_EXIT",
                                  "COMPLETING", "RUNNING", "A_STATE_OF_A_NEWER_SLURM"])
def test_scontrols_word_for_a_job_slurm_holds_is_not_final(word, tmp_path, monkeypatch):
    """squeue lists every job SLURM holds, but is asked a moment before scontrol: a job requeued in between."""
    fake_slurm(tmp_path, monkeypatch, [("", shown(word))])
    assert slurm.status({"job_id": JOB, "end": "t1", "exit_status": 143}) == State(word, done=False)


@pytest.mark.parametrize("word", sorted(slurm.FINISHED))
def test_slurms_final_states_end_the_job(word, tmp_path, monkeypatch):
    fake_slurm(tmp_path, monkeypatch, [("", shown(word))])
    assert slurm.status({"job_id": JOB, "exit_status": None}) == State(word, done=True, ok=word == "COMPLETED")


@pytest.mark.parametrize("code, word", [(0, "COMPLETED"), (143, "FINISHED")])
def test_a_job_slurm_has_forgotten_ends_as_its_manifest_says(code, word, tmp_path, monkeypatch):
    """After MinJobAge squeue -j and scontrol both exit 1: the manifest decides (ftr status no longer fails)."""
    fake_slurm(tmp_path, monkeypatch, [("!" + INVALID, "!" + INVALID)])
    assert slurm.status({"job_id": JOB, "exit_status": code}) == State(word, done=True, ok=code == 0)


def test_squeue_failing_otherwise_is_an_error(tmp_path, monkeypatch):
    from ft_recipes.core.findings import FtrError

    fake_slurm(tmp_path, monkeypatch, [("!squeue: error: Socket timed out on send/recv operation", "")])
    with pytest.raises(FtrError, match="Socket timed out"):
        slurm.status({"job_id": JOB, "exit_status": 0})


def attempt(end, code, restarts=None):
    return {"backend": "llamafactory", "start": "t0", "end": end, "exit_status": code, "job_id": JOB,
            "restarts": restarts}


def test_attach_follows_a_requeued_job_through_its_first_attempts_end(tmp_path, monkeypatch, capsys):
    """The timeline watched on the real cluster: the first attempt ends (exit 143, its end in the manifest)
    while SLURM requeues the job; --attach goes on until the second attempt's job is COMPLETED."""
    run_dir = slurm_run(tmp_path, **attempt(None, None))
    steps = [("RUNNING None", ""), ("COMPLETING None", ""), ("PENDING BeginTime", ""), ("PENDING None", ""),
             ("RUNNING None", ""), ("RUNNING None", ""), ("COMPLETING None", ""), ("", shown("COMPLETED"))]
    manifests = [None, attempt("t1", 143), None, None, attempt("t1", 143, 1), attempt(None, None, 1),
                 attempt("t2", 0, 1), None]
    data = fake_slurm(tmp_path, monkeypatch, steps, run_dir, manifests)
    assert jobs.follow(run_dir, interval=0) == 0
    assert (data / "calls").read_text().strip() == str(len(steps) - 1)  # every step was seen: no early end
    assert f"ftr: job {JOB} completed" in capsys.readouterr().err


def test_status_between_attempts_says_the_job_goes_on(tmp_path, monkeypatch):
    run_dir = slurm_run(tmp_path, **attempt("t1", 143, 1), owner={"pid": 1, "host": "h", "start": "t0"})
    fake_slurm(tmp_path, monkeypatch, [("PENDING BeginTime", "")])
    result = CliRunner().invoke(main, ["status", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "state:    PENDING (BeginTime)" in result.output
    assert "exit:     143 (an attempt that ended at t1; the job goes on)" in result.output
    assert "owner:" not in result.output  # the first attempt's rank 0 is gone; the next one has not started


@pytest.mark.parametrize("word", ["CANCELLED", "FAILED"])
def test_attach_ends_promptly_when_a_held_job_really_ends(word, tmp_path, monkeypatch, capsys):
    """scancel of a requeued job while it waits (or SLURM killing a start it refused: "Job credential
    revoked"): the next poll ends --attach, with the last attempt's exit status."""
    run_dir = slurm_run(tmp_path, **attempt("t1", 143, 1))
    data = fake_slurm(tmp_path, monkeypatch, [("PENDING BeginTime", ""), ("", shown(word))])
    assert jobs.follow(run_dir, interval=0) == 143
    assert (data / "calls").read_text().strip() == "1"
    assert f"ftr: job {JOB} {word.lower()}" in capsys.readouterr().err


def test_attach_asks_again_when_slurm_does_not_answer_a_poll(tmp_path, monkeypatch, capsys):
    run_dir = slurm_run(tmp_path, **attempt(None, None))
    timeout = "!squeue: error: slurm_load_jobs error: Socket timed out on send/recv operation"
    data = fake_slurm(tmp_path, monkeypatch, [("RUNNING None", ""), (timeout, ""), ("RUNNING None", ""),
                                              ("", shown("COMPLETED"))], run_dir, [None, None, attempt("t2", 0), None])
    assert jobs.follow(run_dir, interval=0) == 0
    assert (data / "calls").read_text().strip() == "3"
    err = capsys.readouterr().err
    assert "Socket timed out" in err and "asking again" in err and f"ftr: job {JOB} completed" in err


def test_attach_gives_up_when_slurm_never_answers(tmp_path, monkeypatch):
    from ft_recipes.core.findings import FtrError

    run_dir = slurm_run(tmp_path, **attempt(None, None))
    fake_slurm(tmp_path, monkeypatch, [("RUNNING None", ""), ("!squeue: error: Unable to contact slurm controller",
                                                              "")])
    with pytest.raises(FtrError, match="Unable to contact"):
        jobs.follow(run_dir, interval=0)
