"""Hostile file systems (issue 20): a full disk and a read-only folder (small tmpfs mounts, which need root
and mount rights), and permissions as an unprivileged user (which needs an interpreter that user can run).
Each case skips with the reason when the machine does not allow it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from paths import ROOT
from test_hardening import DATA, ftr, one_line_error, recipe


def _mount(point: Path, options: str) -> None:
    point.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """A 256 KiB tmpfs at tmp_path/fs; unmounted afterwards."""
    point = tmp_path / "fs"
    _mount(point, "size=256k,mode=0755")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
        try:
            handle.close()
        except OSError:
            pass


def test_compile_into_a_full_disk_changes_nothing(tmp_path, tmpfs):
    out = tmpfs / "out"
    path = recipe(tmp_path)
    assert ftr("compile", path, "-b", "llamafactory", "-o", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    path.write_text(path.read_text().replace("lora-sft]", "lora-sft]\ntrain: {epochs: 7}"))
    _fill(tmpfs)
    result = ftr("compile", path, "-b", "llamafactory", "-o", out)
    one_line_error(result, 2, "No space left on device")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "the previous set is intact, no temp files"


@pytest.mark.parametrize("command", ["lint", "init", "import"])
def test_single_outputs_on_a_full_disk(tmp_path, tmpfs, command):
    _fill(tmpfs)
    target = tmpfs / "report.txt"
    args = {"lint": ["lint", recipe(tmp_path), "-o", target], "init": ["init", "-o", target],
            "import": ["import", ROOT / "tests" / "data" / "native" / "lf_lora.yaml", "-o", target]}[command]
    one_line_error(ftr(*args), 2, "report.txt", "No space left on device")
    assert sorted(p.name for p in tmpfs.iterdir()) == ["filler"]


def test_read_only_folder(tmp_path):
    point = tmp_path / "ro"
    _mount(point, "size=64k,ro")
    try:
        for args in (["compile", recipe(tmp_path), "-b", "axolotl", "-o", point],
                     ["compile", recipe(tmp_path), "-b", "axolotl", "-o", point / "sub"],
                     ["lint", recipe(tmp_path), "-o", point / "report.txt"], ["init", "-o", point / "r.yaml"]):
            one_line_error(ftr(*args), 2, str(point), "Read-only file system")
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


# --- as an unprivileged user ------------------------------------------------------------------------------

NOBODY = 65534


def _as_nobody(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("switching to an unprivileged user needs root and setpriv(1)")
    base = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable]
    probe = subprocess.run([*base, "-c", "import click, yaml, jsonschema"], capture_output=True, text=True,
                           env={"PYTHONPATH": str(ROOT)})
    if probe.returncode != 0:
        pytest.skip(f"this interpreter ({sys.executable}) or its packages are not readable by an unprivileged user")
    return subprocess.run([*base, "-m", "ft_recipes", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "HOME": str(cwd), **(env or {})})


@pytest.fixture
def open_tmp():
    """A folder the unprivileged user can reach: pytest's own temp folders sit under a private (0700) one."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ftr-as-user-", dir="/tmp"))
    os.chmod(folder, 0o777)
    yield folder
    for path in folder.rglob("*"):  # make what the tests locked removable again
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def test_read_only_folder_as_a_user(open_tmp):
    path = recipe(open_tmp)
    os.chmod(path, 0o644)
    (open_tmp / "locked").mkdir(mode=0o555)
    proc = _as_nobody(["compile", path, "-b", "axolotl", "-o", open_tmp / "locked"], open_tmp)
    assert proc.returncode == 2 and "Permission denied" in proc.stderr and "internal error" not in proc.stderr


def test_unreadable_recipe_in_a_folder_as_a_user(open_tmp):
    folder = open_tmp / "recipes"
    folder.mkdir(mode=0o755)
    path = recipe(folder)
    os.chmod(path, 0o000)
    proc = _as_nobody(["lint", folder], open_tmp)
    assert proc.returncode == 2 and "r.yaml" in proc.stderr and "Permission denied" in proc.stderr
    assert "All checks passed" not in proc.stdout


def test_unreadable_hf_home_as_a_user(open_tmp):
    snapshots = open_tmp / "hf" / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots"
    snapshots.mkdir(parents=True)
    os.chmod(snapshots, 0o000)
    path = recipe(open_tmp)
    os.chmod(path, 0o644)
    proc = _as_nobody(["compile", path, "-b", "axolotl"], open_tmp, {"HF_HOME": str(open_tmp / "hf")})
    assert proc.returncode == 0, proc.stderr
    assert "base_model: Qwen/Qwen2.5-7B-Instruct" in proc.stdout


def test_unreadable_hf_home_is_no_cache(tmp_path, monkeypatch):
    """The same without switching users: the cache lookup treats an OSError as "not cached"."""
    from ft_recipes.recipe import modelinfo

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    snapshots = tmp_path / "hub" / "models--org--m" / "snapshots"
    snapshots.mkdir(parents=True)

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)
    assert modelinfo._hf_cache_dir("org/m") is None


def test_data_fixture_exists():
    assert DATA.is_file() and json.loads(DATA.read_text().splitlines()[0])


def test_a_folder_the_user_cannot_enter_holds_no_project_settings(tmp_path, monkeypatch):
    """find_pyproject walks up through folders this user may not enter (pytest's and CI's private temp parents):
    one it cannot look into has no pyproject.toml for it, rather than failing every command."""
    from ft_recipes.core import project

    def refuse(self):
        if "locked" in str(self):
            raise PermissionError(13, "Permission denied", str(self))
        return False

    (tmp_path / "locked" / "work").mkdir(parents=True)
    monkeypatch.setattr(Path, "is_file", refuse)
    assert project.find_pyproject(tmp_path / "locked" / "work") is None
