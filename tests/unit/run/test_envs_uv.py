"""Environments install their pins with uv when it is there, with pip's own package sources, and pip otherwise."""

import subprocess
import sys
from pathlib import Path

from ft_recipes.backends import envs


def test_uv_gets_pips_sources(monkeypatch):
    monkeypatch.delenv("FTR_NO_UV", raising=False)
    monkeypatch.setattr(envs.shutil, "which", lambda name: "/opt/bin/uv" if name == "uv" else None)
    argv = envs._uv(Path(sys.executable))
    assert argv[:5] == ["/opt/bin/uv", "pip", "install", "--no-deps", "--python"]
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in config.splitlines():
        if line.partition("=")[0].endswith(".find-links"):
            for item in line.partition("=")[2].strip("'\" ").split():
                assert ["--find-links", item] == argv[argv.index(item) - 1:argv.index(item) + 1]


def test_pip_without_uv_or_when_told(monkeypatch):
    monkeypatch.setenv("FTR_NO_UV", "1")
    assert envs._uv(Path(sys.executable)) is None
    assert envs._pip(Path("/env/bin/python"))[:4] == ["/env/bin/python", "-m", "pip", "install"]


def test_uv_asks_the_package_index_before_pips_extra_indexes(monkeypatch):
    """uv takes a version's wheels from the first index that has it: a local mirror holding only multiprocess's
    py310 wheel put it into 3.11 environments (every process pool failed). pip's index goes first."""
    monkeypatch.delenv("FTR_NO_UV", raising=False)
    monkeypatch.setattr(envs.shutil, "which", lambda name: "/opt/bin/uv" if name == "uv" else None)
    config = "global.extra-index-url='file:///mirror/simple'\nglobal.find-links='/wheels'\n"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, config, ""))
    argv = envs._uv(Path(sys.executable))
    indexes = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--extra-index-url"]
    assert indexes == [envs.PYPI, "file:///mirror/simple"]
    assert "--index-url" not in argv and ["--find-links", "/wheels"] == argv[-2:]


def test_environments_built_the_old_way_are_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path))
    lock = tmp_path / "lock.txt"
    lock.write_text("six==1.16.0\n")
    spec = envs.EnvSpec(name="demo", version="1", python="3.11", lock=lock, import_name="six", cli="six")
    old_key = envs.lock_hash(spec)[:12]
    assert envs.env_dir(spec).name != f"demo-{old_key}"
