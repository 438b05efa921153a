"""Hypothesis fuzzing extended to the command line and the file system (issue 20): launcher options,
hostile output paths and init values, and output folders full of special files. Zero internal errors,
nothing clobbered, every printed command reads back as the argv ftr would run."""

import os
import re
import shutil
import stat
import subprocess

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hardening import recipe

from ft_recipes import backends
from ft_recipes.cli.main import main

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=bool(os.environ.get("CI")))
ints = st.one_of(st.integers(-3, 70000), st.sampled_from([-(2 ** 63), 2 ** 63, 0, 1, 65535, 65536]))
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


def invoke(args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, result.exception)
    assert "internal error" not in result.output and "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code:
        assert result.output.strip(), "a failure must say why"
    return result


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    root = tmp_path_factory.mktemp("envs")
    for name in backends.NAMES:
        (root / name / "bin").mkdir(parents=True)
        (root / name / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")
    return root


@pytest.fixture
def env_vars(envs, monkeypatch):
    for name in backends.NAMES:
        monkeypatch.setenv(f"FTR_{name.upper()}_PYTHON", str(envs / name / "bin" / "python"))


def bash_words(line: str) -> list[str]:
    out = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True, check=True,
                         cwd="/").stdout.decode("utf-8", "surrogateescape")
    return out.split("\0")[:-1]


@FAST
@given(gpus=ints, nnodes=ints, rank=ints, port=ints, addr=st.one_of(st.none(), texts),
       deepspeed=st.one_of(st.none(), st.sampled_from(["zero2", "zero3_offload", "zero9", "", "x.json"]), texts),
       backend=st.sampled_from(list(backends.NAMES)))
def test_launcher_options(tmp_path, env_vars, gpus, nnodes, rank, port, addr, deepspeed, backend):
    args = ["run", recipe(tmp_path), "-b", backend, "--dry-run", "--gpus", gpus, "--nnodes", nnodes,
            "--node-rank", rank, "--master-port", port]
    args += ["--master-addr", addr] if addr is not None else []
    args += ["--deepspeed", deepspeed] if deepspeed is not None else []
    result = invoke(args)
    if result.exit_code == 0:
        assert gpus >= 0 and nnodes >= 1 and 0 <= rank < nnodes and 1 <= port <= 65535
        assert nnodes == 1 or addr
        if shutil.which("bash"):
            words = bash_words(result.stdout.splitlines()[0])  # the command line: NAME=value ... then argv
            program = next(w for w in words if not re.fullmatch(r"[A-Z_]+=.*", w, re.S))
            assert program.endswith(("llamafactory-cli", "axolotl", "python"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to read the printed command back")
@FAST
@given(out=texts.filter(lambda s: s.strip() and not s.startswith(("/", "~")) and "\\" not in s),
       extra=st.lists(texts, max_size=3), backend=st.sampled_from(list(backends.NAMES)))
def test_printed_commands_read_back(tmp_path, env_vars, out, extra, backend):
    import json

    path = tmp_path / "r.yaml"
    recipe(tmp_path)
    path.write_text(path.read_text().replace('dir: "runs/x"', f"dir: {json.dumps(out)}"))
    result = invoke(["run", path, "-b", backend, "--dry-run", "--", *extra])
    if result.exit_code:
        return
    command, note = result.stdout.splitlines()  # the command on one line, then a comment
    argv = bash_words(command)
    assert argv[len(argv) - len(extra):] == list(extra)
    assert any(word.startswith(str(tmp_path)) for word in argv) and note.startswith("# ")


@FAST
@given(model=texts)
def test_init_values(tmp_path, model):
    from ft_recipes.recipe.load import load_text

    out = tmp_path / "r.yaml"
    out.unlink(missing_ok=True)
    result = invoke(["init", "--model", model, "-o", out])
    if result.exit_code == 0:
        data = load_text(out.read_text()).data
        assert data["model"]["base"] == model and "trust_remote_code" not in data["model"]
    else:
        assert result.exit_code == 2 and not out.exists()


KINDS = ["absent", "file", "dir", "fifo", "symlink", "dangling", "loop"]


def _make(path, kind, tmp_path):
    if kind == "file":
        path.write_text("user's\n")
    elif kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "victim.txt").write_text("keep\n")
        path.symlink_to(tmp_path / "victim.txt")
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "loop":
        path.symlink_to(path)


def _snapshot(path):
    try:
        st_ = os.lstat(path)
    except FileNotFoundError:
        return None
    content = path.read_bytes() if stat.S_ISREG(st_.st_mode) else None
    return stat.S_IFMT(st_.st_mode), st_.st_ino, content


@FAST
@given(main_kind=st.sampled_from(KINDS), info_kind=st.sampled_from(KINDS), manifest_kind=st.sampled_from(KINDS),
       force=st.booleans())
def test_output_folders_full_of_special_files(tmp_path_factory, main_kind, info_kind, manifest_kind, force):
    tmp_path = tmp_path_factory.mktemp("fs")
    out = tmp_path / "out"
    out.mkdir()
    names = {"llamafactory.yaml": main_kind, "dataset_info.json": info_kind, ".ftr-outputs.json": manifest_kind}
    for name, kind in names.items():
        _make(out / name, kind, tmp_path)
    before = {name: _snapshot(out / name) for name in names}
    result = invoke(["compile", recipe(tmp_path), "-b", "llamafactory", "-o", out, *(["--force"] if force else [])])
    special = [n for n, k in names.items() if k not in ("absent", "file")]
    if special:
        assert result.exit_code == 2, result.output
    for name, kind in names.items():
        if kind not in ("absent", "file") or result.exit_code:
            assert _snapshot(out / name) == before[name], name
    if (tmp_path / "victim.txt").exists():
        assert (tmp_path / "victim.txt").read_text() == "keep\n"
    assert not (tmp_path / "nowhere").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name not in names]
