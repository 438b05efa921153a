"""Environment installs that survive faults (issue 34, item 6): uv copies files instead of hardlinking them to
its cache, a failed install keeps the log its message names, a SIGTERM'd install leaves no build folder.
Offline: the environments hold no package (an empty lock, or one pip cannot find with no index)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ft_recipes.backends import envs

ROOT = Path(__file__).resolve().parents[3]


def spec(tmp_path, lock_text: str):
    lock = tmp_path / "lock.txt"
    lock.write_text(lock_text)
    version = "%d.%d" % sys.version_info[:2]
    return envs.EnvSpec(name="demo", version="1", python=version, lock=lock, import_name="json", cli="demo")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "envs"))
    monkeypatch.setenv("FTR_NO_UV", "1")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return tmp_path / "envs"


def test_uv_copies_files_instead_of_hardlinking_them(monkeypatch):
    monkeypatch.delenv("FTR_NO_UV", raising=False)
    monkeypatch.setattr(envs.shutil, "which", lambda name: "/opt/bin/uv" if name == "uv" else None)
    argv = envs._uv(Path(sys.executable))
    assert argv[argv.index("--link-mode") + 1] == "copy"


def test_a_failed_install_keeps_its_log(tmp_path, offline):
    with pytest.raises(RuntimeError) as failed:
        envs.install(spec(tmp_path, "no-such-package-for-ftr==0.0.1\n"), log=lambda _: None)
    logfile = Path(str(failed.value).split("last lines of ")[1].split(":\n")[0])
    assert logfile.is_file() and "no-such-package-for-ftr" in logfile.read_text()
    assert [p.name for p in offline.iterdir()] == [logfile.name]  # the build folder is gone, the log stays


def test_a_finished_install_keeps_its_log_inside(tmp_path, offline):
    python = envs.install(spec(tmp_path, ""), log=lambda _: None)
    root = python.parents[1]
    assert (root / "install.log").is_file() and (root / envs.COMPLETE).is_file()
    assert [p.name for p in offline.iterdir()] == [root.name]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_install_leaves_no_build_folder(tmp_path, offline, how):
    lock = tmp_path / "lock.txt"
    lock.write_text("")
    code = (f"import sys, time\nfrom ft_recipes import envs\n"
            f"envs._install_reqs = lambda *a, **k: time.sleep(60)\n"
            f"envs.install(envs.EnvSpec(name='demo', version='1', python='%d.%d' % sys.version_info[:2], "
            f"lock={str(lock)!r}, import_name='json', cli='demo'))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(offline.glob(".demo-*/bin/python")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # past the venv step, into the (sleeping) install
    proc.send_signal(how)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert not list(offline.glob(".demo-*")), err


def test_a_backend_that_cannot_import_suggests_a_reinstall(tmp_path):
    from test_run_faults import FTR

    bin_dir = tmp_path / "env" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    (bin_dir / "llamafactory-cli").write_text(
        "#!/bin/sh\necho 'Traceback (most recent call last):'\n"
        "echo \"ModuleNotFoundError: No module named 'transformers'\"\nexit 1\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "a.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"ftr: 1\nextends: [lora-sft]\nmodel: {{base: {tmp_path}/model, template: chatml, "
                      f"pad_token: eos}}\ndata:\n  train:\n    - {{path: {tmp_path}/a.jsonl, format: alpaca}}\n"
                      f"output: {{dir: {tmp_path}/runs/r}}\nhardware: {{gpus: 0}}\n")
    env = {**os.environ, "FTR_LLAMAFACTORY_PYTHON": str(bin_dir / "python"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([*FTR, "run", str(recipe), "-b", "llamafactory", "--no-lint"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "ftr backend install llamafactory --force" in proc.stderr, proc.stderr


def test_a_killed_install_is_cleaned_up_by_the_next_one(tmp_path, offline):
    """SIGKILL runs no cleanup: the next install removes the build folder of a process that is gone, and leaves
    alone one whose process still runs (another install in progress)."""
    demo = spec(tmp_path, "")
    target = envs.env_dir(demo)
    target.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = target.parent / f".{target.name}-{dead.pid}-abc123"
    running = target.parent / f".{target.name}-{os.getpid()}-def456"
    for folder in (killed, running):
        (folder / "bin").mkdir(parents=True)
    envs.install(demo, log=lambda _: None)
    assert not killed.exists() and running.exists()
