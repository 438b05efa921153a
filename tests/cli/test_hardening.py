"""Hostile input (issue 20): the file system, the command line and the run. Every case ends in one line
naming the file and the problem, exit 2 (1 for invalid input), never the "internal error" path, and
nothing is clobbered."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from paths import ROOT

from ft_recipes import backends
from ft_recipes.cli.main import main

DATA = ROOT / "recipes" / "examples" / "data" / "alpaca.jsonl"


def ftr(*args, **kwargs):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True, **kwargs)
    assert "internal error" not in result.output and "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def one_line_error(result, code: int, *needles: str) -> str:
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:") or ": FTR" in line]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def recipe(folder: Path, name: str = "r.yaml", data: str | None = None, out: str = "runs/x", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"ftr: 1\nextends: [lora-sft]\nmodel: {{base: Qwen/Qwen2.5-7B-Instruct, template: chatml, "
                    f"pad_token: eos}}\ndata:\n  train:\n    - {{path: {json.dumps(data or str(DATA))}, "
                    f"format: alpaca}}\noutput: {{dir: {json.dumps(out)}}}\n{extra}")
    return path


# --- symlink loops, special files, folders as inputs -------------------------------------------------------

def test_symlink_loop_as_dataset_path_is_one_line(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    path = recipe(tmp_path, data=str(tmp_path / "a"))
    one_line_error(ftr("compile", path, "-b", "axolotl"), 2, "symlink loop", str(tmp_path / "a"))


def test_symlink_loop_as_recipe_is_one_line(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    one_line_error(ftr("lint", tmp_path / "a.yaml"), 2, "a.yaml", "symlink loop")


@pytest.mark.parametrize("kind, says", [("loop", "symlink loop"), ("folder", "is a directory"),
                                        ("fifo", "is a FIFO"), ("url", "is a URL"), ("missing", "not found")])
def test_extends_target_says_what_it_is(tmp_path, kind, says):
    target = {"loop": "./loop.yaml", "folder": "./folder.yaml", "fifo": "./fifo.yaml",
              "url": "https://example.org/p.yaml", "missing": "./nothere.yaml"}[kind]
    if kind == "loop":
        (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    elif kind == "folder":
        (tmp_path / "folder.yaml").mkdir()
    elif kind == "fifo":
        os.mkfifo(tmp_path / "fifo.yaml")
    path = tmp_path / "r.yaml"
    path.write_text(f"ftr: 1\nextends: [{target}]\n")
    one_line_error(ftr("lint", path), 1, "r.yaml:2:", "FTR004", says)


def test_a_fifo_named_as_recipe_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "r.yaml")
    one_line_error(ftr("lint", tmp_path / "r.yaml"), 2, "r.yaml", "is a FIFO")


@pytest.mark.parametrize("text, says", [("model: !foo bar\n", "YAML tag '!foo' is not allowed"),
                                        ("model: {base: !!int x}\n", "bad value 'x'")])
def test_tags_are_one_finding_without_parser_internals(tmp_path, text, says):
    path = tmp_path / "r.yaml"
    path.write_text("ftr: 1\n" + text)
    line = one_line_error(ftr("lint", path), 1, "r.yaml:2:", says)
    assert "<unicode string>" not in line


# --- full disks, read-only folders, outputs that are folders ------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("command", [["compile", "{r}", "-b", "axolotl"], ["lint", "{r}"], ["schema"], ["rules"],
                                     ["explain", "{r}", "-b", "axolotl"]])
def test_stdout_on_a_full_disk_is_one_line(tmp_path, command):
    path = recipe(tmp_path)
    args = [a.format(r=path) for a in command]
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "ft_recipes", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert proc.returncode == 2 and errors == ["error: cannot write the output: No space left on device"], proc.stderr
    assert "internal error" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_output_path_that_is_a_directory(tmp_path):
    (tmp_path / "out" / "llamafactory.yaml").mkdir(parents=True)
    one_line_error(ftr("compile", recipe(tmp_path), "-b", "llamafactory", "-o", tmp_path / "out", "--force"), 2,
                   "llamafactory.yaml", "is a directory")
    assert (tmp_path / "out" / "llamafactory.yaml").is_dir()


def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("keep\n")
    one_line_error(ftr("compile", recipe(tmp_path), "-b", "llamafactory", "-o", tmp_path / "out" / "sub"), 2,
                   "out", "Not a directory")
    assert (tmp_path / "out").read_text() == "keep\n"


# --- never clobber -----------------------------------------------------------------------------------------

def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "out" / "target.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "elsewhere.txt").write_text("keep\n")
        path.symlink_to(tmp_path / "elsewhere.txt")
    elif kind == "dangling-symlink":
        path.symlink_to(tmp_path / "nowhere.txt")
    elif kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a private copy of /dev/full
        except PermissionError:
            pytest.skip("creating a device node needs root (CAP_MKNOD)")
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["fifo", "symlink", "dangling-symlink", "device", "folder"])
@pytest.mark.parametrize("command", ["init", "lint", "import"])
def test_force_never_replaces_special_files(tmp_path, kind, command):
    target = _special(tmp_path, kind)
    before = os.lstat(target)
    args = {"init": ["init", "-o", target, "--force"],
            "lint": ["lint", recipe(tmp_path), "-o", target, "--force"],
            "import": ["import", ROOT / "tests" / "data" / "native" / "lf_lora.yaml", "-o", target, "--force"]}
    result = ftr(*args[command])
    assert result.exit_code == 2, result.output
    assert "target.yaml" in result.output and ("is a" in result.output or "directory" in result.output)
    after = os.lstat(target)
    assert (stat.S_IFMT(after.st_mode), after.st_ino) == (stat.S_IFMT(before.st_mode), before.st_ino)
    if kind == "symlink":
        assert (tmp_path / "elsewhere.txt").read_text() == "keep\n"
    if kind == "dangling-symlink":
        assert not (tmp_path / "nowhere.txt").exists()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_compile_force_never_replaces_special_files(tmp_path, kind):
    target = _special(tmp_path, kind)
    target.rename(tmp_path / "out" / "llamafactory.yaml")
    result = ftr("compile", recipe(tmp_path), "-b", "llamafactory", "-o", tmp_path / "out", "--force")
    one_line_error(result, 2, "llamafactory.yaml", "is a")
    assert not (tmp_path / "out" / "dataset_info.json").exists(), "nothing of the set is written"


def test_compile_never_overwrites_the_recipe_itself(tmp_path):
    path = recipe(tmp_path, name="llamafactory.yaml")
    text = path.read_text()
    one_line_error(ftr("compile", path, "-b", "llamafactory", "-o", tmp_path, "--force"), 2,
                   "llamafactory.yaml", "never overwrites its inputs")
    assert path.read_text() == text


def test_compile_never_overwrites_the_recipes_data(tmp_path):
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "alpaca.jsonl"
    data.write_bytes(DATA.read_bytes())
    path = recipe(tmp_path, data="data/alpaca.jsonl")
    result = ftr("compile", path, "-b", "axolotl", "-o", tmp_path, "--force")
    one_line_error(result, 2, "alpaca.jsonl", "never overwrites its inputs")
    assert data.read_bytes() == DATA.read_bytes()
    assert not (tmp_path / "axolotl.yaml").exists()


def test_lint_output_obeys_the_ownership_rule(tmp_path):
    path = recipe(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    one_line_error(ftr("lint", path, "-o", notes), 2, "notes.txt", "ftr did not write it", "--force")
    assert notes.read_text() == "mine\n"
    assert ftr("lint", path, "-o", notes, "--force").exit_code == 0 and notes.read_text() != "mine\n"
    report = tmp_path / "report.txt"
    assert ftr("lint", path, "-o", report).exit_code == 0
    assert ftr("lint", path, "-o", report, "--format", "json").exit_code == 0, "ftr may replace its own report"
    assert json.loads(report.read_text()) is not None
    text = path.read_text()
    one_line_error(ftr("lint", path, "-o", path, "--force"), 2, "never overwrites its inputs")
    assert path.read_text() == text


def test_import_never_overwrites_its_input(tmp_path):
    native = tmp_path / "lf.yaml"
    native.write_text((ROOT / "tests" / "data" / "native" / "lf_lora.yaml").read_text())
    text = native.read_text()
    one_line_error(ftr("import", native, "-o", native, "--force"), 2, "never overwrites its inputs")
    assert native.read_text() == text


def _compile_in_child(args):
    from click.testing import CliRunner as Runner

    result = Runner().invoke(main, args, catch_exceptions=True)
    return result.exit_code, result.output


def test_concurrent_compiles_into_one_folder_are_consistent(tmp_path):
    import multiprocessing

    out = tmp_path / "out"
    recipes = []
    for i in range(6):
        data = tmp_path / f"d{i}.jsonl"
        data.write_bytes(DATA.read_bytes())
        recipes.append(recipe(tmp_path, name=f"r{i}.yaml", data=str(data)))
    context = multiprocessing.get_context("fork")
    for _ in range(3):
        with context.Pool(6) as pool:
            results = pool.map(_compile_in_child, [["compile", str(r), "-b", "llamafactory", "-o", str(out)]
                                                   for r in recipes])
        assert all(code == 0 for code, _ in results), results
        config = yaml.safe_load((out / "llamafactory.yaml").read_text())
        registry = json.loads((out / "dataset_info.json").read_text())
        names = config["dataset"].split(",")
        assert all(name in registry for name in names), (names, sorted(registry))
        assert json.loads((out / ".ftr-outputs.json").read_text()) == ["dataset_info.json", "llamafactory.yaml"]
        assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".ftr-outputs.json"] == []


# --- folders, project settings and rule packs ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["dangling-symlink", "fifo", "loop"])
def test_unreadable_recipe_in_a_folder_is_an_error(tmp_path, kind):
    folder = tmp_path / "recipes"
    folder.mkdir()
    bad = folder / "only.yaml"
    if kind == "dangling-symlink":
        bad.symlink_to(folder / "gone.yaml")
    elif kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.symlink_to(bad)
    result = ftr("lint", folder)
    one_line_error(result, 2, "only.yaml")
    assert "All checks passed" not in result.output


@pytest.mark.parametrize("text, says, every_command", [
    ("[tool.ftr.lint\nselect = 1\n", "invalid TOML", True),
    ("[tool.ftr]\nx = 1\n\xff\n", "not UTF-8", True),
    ("[tool.ftr.lint]\nselect = 5\n", "select", False),
    ('[tool.ftr.lint]\nignore = [1, "FTR1"]\n', "ignore", False),
    ('[tool.ftr.lint]\nstrict = "yes"\n', "strict", False),
    ('[tool.ftr]\nlint = 3\n', "[tool.ftr.lint]", True),
    ('tool = {ftr = 3}\n', "[tool.ftr]", True),
    ('[tool.ftr]\npreset-paths = ["/x", 5]\n', "preset-paths", True),
    ('[tool.ftr]\npreset-paths = "team"\n', "preset-paths", True),
    ('[tool.ftr.lint]\nrule-packs = [5]\n', "rule-packs", True),
    ('[tool.ftr.lint]\nbackend-versions = ["axolotl"]\n', "backend-versions", False),
])
def test_malformed_pyproject_is_an_error_naming_the_file(tmp_path, monkeypatch, text, says, every_command):
    from ft_recipes.core.project import _settings_at

    path = recipe(tmp_path)
    (tmp_path / "pyproject.toml").write_bytes(text.encode("latin-1"))
    monkeypatch.chdir(tmp_path)
    _settings_at.cache_clear()
    try:
        one_line_error(ftr("lint", path), 2, str(tmp_path / "pyproject.toml"), says)
        if every_command:  # the settings every command reads (preset paths), not only lint's
            one_line_error(ftr("compile", path, "-b", "axolotl"), 2, str(tmp_path / "pyproject.toml"), says)
    finally:
        _settings_at.cache_clear()


@pytest.mark.parametrize("pack, says", [
    ('rules: {FTR102: {max: "abc"}}', "rules.FTR102.max must be a number"),
    ("rules: {FTR101: {ranges: 5}}", "rules.FTR101.ranges must be a mapping"),
    ("rules: {FTR102: null}", "--ignore FTR102"),
    ("rules: {FTR102: {max: null}}", "rules.FTR102.max: null"),
    ("rules: {FTR102: 7}", "rules.FTR102 must be a mapping"),
    ("rules: {FTR102: {severity: fatal}}", "'fatal' is not one of"),
    ("rules: {FTR101: {ranges: {adapter: {sft: {recommended: [1]}}}}}", "[low, high]"),
])
def test_rule_pack_values_are_checked(tmp_path, pack, says):
    (tmp_path / "pack.yaml").write_text(pack + "\n")
    one_line_error(ftr("lint", recipe(tmp_path), "--rule-pack", tmp_path / "pack.yaml"), 2, "pack.yaml", says)


def test_rule_pack_null_still_deletes_optional_bounds(tmp_path):
    (tmp_path / "pack.yaml").write_text("rules: {FTR101: {ranges: {adapter: {sft: {warn_below: null}}}}}\n")
    assert ftr("lint", recipe(tmp_path), "--rule-pack", tmp_path / "pack.yaml").exit_code == 0


# --- merge and report ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, code, says", [
    ("empty", 2, "no such file"), ("compile-output", 2, "no such file"), ("object", 1, "not an `ftr run` manifest"),
    ("list", 1, "not an `ftr run` manifest"), ("corrupt", 1, "not valid JSON"),
    ("unknown-backend", 1, "not an `ftr run` manifest")])
def test_merge_refuses_what_is_not_a_run_directory(tmp_path, kind, code, says):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if kind == "compile-output":
        assert ftr("compile", recipe(tmp_path), "-b", "llamafactory", "-o", run_dir).exit_code == 0
    manifest = {"object": "{}", "list": "[1]", "corrupt": "{x", "unknown-backend": '{"backend": "nope"}'}.get(kind)
    if manifest is not None:
        (run_dir / "manifest.json").write_text(manifest)
    one_line_error(ftr("merge", run_dir), code, "manifest.json", says)


def test_report_skips_a_truncated_last_line_with_a_note(tmp_path):
    (tmp_path / "trainer_log.jsonl").write_text('{"current_steps": 1, "loss": 2.0}\n{"current_steps": 2, "loss": 1.5}\n'
                                                '{"current_st')
    result = ftr("report", tmp_path)
    assert result.exit_code == 0, result.output
    assert f"note: {tmp_path / 'trainer_log.jsonl'}:3: skipped a truncated last line" in result.output
    assert "final train loss 1.5000" in result.output


@pytest.mark.parametrize("name, text, code, says", [
    ("trainer_state.json", '{"log_history": "abc"}', 1, "log_history is a str"),
    ("trainer_state.json", "[1, 2]", 1, "not a Trainer state"),
    ("trainer_state.json", '{"log_hist', 1, "not valid JSON"),
    ("trainer_state.json", '{"log_history": [{"step": null, "loss": 1}, 5, {"step": 3, "loss": 2}]}', 0,
     "log_history[0]: skipped an entry without a step number"),
    ("trainer_log.jsonl", "[1, 2]\n{\"current_steps\": 1, \"loss\": 1}\n", 0, "trainer_log.jsonl:1: skipped a list"),
    ("trainer_log.jsonl", '{"current_steps": "x", "loss": []}\n', 0, "skipped an entry without a step number"),
])
def test_report_malformed_log_shapes(tmp_path, name, text, code, says):
    (tmp_path / name).write_text(text)
    result = ftr("report", tmp_path)
    assert result.exit_code == code, result.output
    assert says in result.output and str(tmp_path / name) in result.output


# --- ftr run: shell-safe output, launcher options, the machine it is on --------------------------------------

@pytest.fixture
def fake_envs(tmp_path, monkeypatch):
    """Backend environments whose interpreter and launchers are shell scripts that succeed."""
    for name in backends.NAMES:
        bindir = tmp_path / "envs" / name / "bin"
        bindir.mkdir(parents=True)
        for tool in ("python", "llamafactory-cli", "axolotl"):
            (bindir / tool).write_text("#!/bin/sh\nexit 0\n")
            (bindir / tool).chmod(0o755)
        monkeypatch.setenv(f"FTR_{name.upper()}_PYTHON", str(bindir / "python"))
    return tmp_path / "envs"


HOSTILE_DIRS = ["out; touch pwned", "$(touch pwned)", "`touch pwned`", "a\nb", "it's \"q\" & | > <", "-rf *",
                "tab\there", "$HOME ~ !x"]


def shell_words(line: str, cwd: Path) -> list[str]:
    """How bash splits a printed line into words (it reads $'...' as well as '...'), running nothing."""
    out = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True, cwd=cwd,
                         check=True).stdout.decode("utf-8", "surrogateescape")
    return out.split("\0")[:-1]


@pytest.mark.skipif(subprocess.run(["which", "bash"], capture_output=True).returncode, reason="needs bash")
@pytest.mark.parametrize("out", HOSTILE_DIRS)
@pytest.mark.parametrize("backend", list(backends.NAMES))
def test_dry_run_prints_shell_quoted_commands(tmp_path, fake_envs, out, backend):
    path = recipe(tmp_path, out=out)
    result = ftr("run", path, "-b", backend, "--dry-run", "--gpus", "2", "--", "--x=$(touch pwned)", "a b")
    assert result.exit_code == 0, result.output
    command, *notes = result.stdout.splitlines()
    assert len(notes) == 1 and notes[0].startswith("# "), "one command line, even with a newline in a path"
    run_dir = tmp_path / out
    words = shell_words(command, tmp_path)
    env_words = words[:next(i for i, w in enumerate(words) if not re.fullmatch(r"[A-Z_]+=.*", w, re.S))]
    argv = words[len(env_words):]
    assert str(run_dir / {"llamafactory": "llamafactory.yaml", "axolotl": "axolotl.yaml",
                          "trl": "trl.json"}[backend]) in argv
    assert argv[-2:] == ["--x=$(touch pwned)", "a b"]
    assert any(w.startswith("PATH=") and w.endswith(":" + os.environ["PATH"]) for w in env_words), env_words
    pasted = subprocess.run(["bash", "-c", result.stdout], cwd=tmp_path, capture_output=True, text=True)
    assert pasted.returncode == 0, pasted.stderr  # the whole output pasted into a shell: the command, comments
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("args, says", [
    (["--gpus", "-1"], "--gpus -1"), (["--nnodes", "0"], "--nnodes 0"),
    (["--node-rank", "5", "--nnodes", "2", "--master-addr", "h"], "--node-rank 5"),
    (["--node-rank", "-1"], "--node-rank -1"), (["--master-port", "99999"], "--master-port 99999"),
    (["--master-port", "0"], "--master-port 0"), (["--nnodes", "2"], "needs --master-addr"),
    (["--master-addr", "a b"], "--master-addr"), (["--deepspeed", "zero9"], "--deepspeed zero9"),
    (["--deepspeed", "missing.json"], "--deepspeed missing.json"),
])
def test_launcher_options_are_validated(tmp_path, fake_envs, args, says):
    one_line_error(ftr("run", recipe(tmp_path), "-b", "llamafactory", "--dry-run", *args), 2, says)


def test_valid_launcher_options_pass(tmp_path, fake_envs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds.json").write_text("{}")
    result = ftr("run", recipe(tmp_path), "-b", "llamafactory", "--dry-run", "--gpus", "8", "--nnodes", "2",
                 "--node-rank", "1", "--master-addr", "10.0.0.1", "--master-port", "65535", "--deepspeed", "ds.json")
    assert result.exit_code == 0, result.output


def _gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr("ft_recipes.run.plan._driver_gpus", lambda: count)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_run_without_a_gpu_compiles_for_the_cpu_and_says_so(tmp_path, fake_envs, monkeypatch):
    _gpus(monkeypatch, 0)
    path = recipe(tmp_path, out=str(tmp_path / "run"))
    result = ftr("run", path, "-b", "axolotl")
    assert result.exit_code == 0, result.output
    assert "no usable GPU" in result.output and "running on the CPU" in result.output
    cfg = yaml.safe_load((tmp_path / "run" / "axolotl.yaml").read_text())
    assert cfg["bf16"] is False and cfg.get("fp16") in (False, None)
    assert all(cfg[k] is False for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel"))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["env"]["CUDA_VISIBLE_DEVICES"] == "" and manifest["exit_status"] == 0


def test_run_with_gpus_0_on_axolotl_compiles_cpu_safe(tmp_path, fake_envs, monkeypatch):
    _gpus(monkeypatch, 4)
    path = recipe(tmp_path, out=str(tmp_path / "run"))
    assert ftr("run", path, "-b", "axolotl", "--gpus", "0").exit_code == 0
    cfg = yaml.safe_load((tmp_path / "run" / "axolotl.yaml").read_text())
    assert cfg["bf16"] is False and cfg["lora_mlp_kernel"] is False


def test_run_refuses_more_gpus_than_the_machine_has(tmp_path, fake_envs, monkeypatch):
    _gpus(monkeypatch, 1)
    path = recipe(tmp_path, out=str(tmp_path / "run"))
    one_line_error(ftr("run", path, "-b", "llamafactory", "--gpus", "4"), 1, "asks for 4 GPU(s)", "has 1",
                   "--gpus 1")
    assert not (tmp_path / "run").exists(), "refused before anything was written or launched"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    _gpus(monkeypatch, 8)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    one_line_error(ftr("run", path, "-b", "llamafactory", "--gpus", "4"), 1, "has 2")


def test_dry_run_only_notes_the_machine(tmp_path, fake_envs, monkeypatch):
    _gpus(monkeypatch, 0)
    result = ftr("run", recipe(tmp_path), "-b", "axolotl", "--dry-run")
    assert result.exit_code == 0 and "a run here would adapt" in result.stderr
    assert "--launcher python" in result.stdout, "the dry run shows the command asked for"


def test_run_refuses_an_output_dir_holding_its_inputs(tmp_path, fake_envs):
    path = recipe(tmp_path, out=".")
    one_line_error(ftr("run", path, "-b", "llamafactory", "--force"), 1, "FTR501", "contains the run's input")
    assert path.exists()


def test_missing_launcher_is_one_line(tmp_path, fake_envs, monkeypatch):
    _gpus(monkeypatch, 1)
    (fake_envs / "llamafactory" / "bin" / "llamafactory-cli").unlink()
    path = recipe(tmp_path, out=str(tmp_path / "run"))
    one_line_error(ftr("run", path, "-b", "llamafactory"), 2, "llamafactory-cli", "cannot start the backend")


# --- ftr init ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["a: b", "it's #1", "[x]", "x]", "a,b", "{a: 1}", "*ref", "&anchor", "null",
                                   "true", "1e-5", "0x10", "- x", "? x", "a #b", "%TAG", "@at", "`tick`",
                                   "Qwen/Qwen2.5-0.5B", "modèle/é—ü", "'quoted'", '"dq"'])
def test_init_model_round_trips_exactly(tmp_path, model):
    from ft_recipes.recipe.load import load_text

    out = tmp_path / "r.yaml"
    result = ftr("init", "--model", model, "--data", model, "-o", out)
    assert result.exit_code == 0, result.output
    data = load_text(out.read_text()).data
    assert data["model"]["base"] == model and data["data"]["train"][0]["path"] == model
    assert data["model"].get("trust_remote_code") in (None, False)
    assert set(data["model"]) == {"base", "template", "pad_token"}


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-0.5B\n  trust_remote_code: true", "a\rb", "a\x00b", "a\tb",
                                   "a\u2028b", "   "])
def test_init_refuses_values_that_would_change_the_yaml(tmp_path, model):
    out = tmp_path / "r.yaml"
    one_line_error(ftr("init", "--model", model, "-o", out), 2, "--model")
    assert not out.exists()


# --- messages ------------------------------------------------------------------------------------------------

def test_import_of_a_yaml_that_is_neither_format(tmp_path):
    (tmp_path / "x.yaml").write_text("foo: 1\nbar: [2]\n")
    one_line_error(ftr("import", tmp_path / "x.yaml"), 1, "neither a recipe nor a LLaMA-Factory or Axolotl config")
    one_line_error(ftr("import", recipe(tmp_path)), 2, "is already a recipe")


def test_explain_detects_native_files(tmp_path):
    result = ftr("explain", ROOT / "tests" / "data" / "native" / "lf_lora.yaml", "-b", "llamafactory")
    assert result.exit_code == 0, result.output
    assert "is a llamafactory config" in result.stderr and "model_name_or_path" in result.stdout


# --- ftr tokens: timeouts, clean-up, one-line errors ---------------------------------------------------------

def _tokens_env(tmp_path, monkeypatch, script: str):
    python = tmp_path / "fake-python"
    python.write_text("#!/bin/sh\n" + script)
    python.chmod(0o755)
    monkeypatch.setenv("FTR_LLAMAFACTORY_PYTHON", str(python))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    return tmp


def local_model_recipe(tmp_path: Path) -> Path:
    """recipe() with a local model folder (ftr tokens never downloads one)."""
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / "model" / "config.json").write_text('{"model_type": "qwen2"}')
    path = recipe(tmp_path)
    path.write_text(path.read_text().replace("Qwen/Qwen2.5-7B-Instruct", str(tmp_path / "model")))
    return path


def test_tokens_times_out_kills_the_backend_and_cleans_up(tmp_path, monkeypatch):
    tmp = _tokens_env(tmp_path, monkeypatch, f"echo $$ > {tmp_path}/pid\nsleep 60 & wait\n")
    path = local_model_recipe(tmp_path)
    line = one_line_error(ftr("tokens", path, "-b", "llamafactory", "--timeout", "1"), 2,
                          "did not finish tokenizing within 1 s", "log: ")
    (log,) = tmp.iterdir()
    assert log.name.startswith("ftr-tokens.llamafactory.") and log.suffix == ".log"
    assert Path(line.rsplit("log: ", 1)[1]) == log and stat.S_IMODE(log.stat().st_mode) == 0o600
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_tokens_reports_the_backend_error_as_one_line_with_the_log(tmp_path, monkeypatch):
    tmp = _tokens_env(tmp_path, monkeypatch, "echo 'Traceback (most recent call last):' >&2\n"
                                             "echo '  File \"x.py\", line 1' >&2\n"
                                             "echo 'OSError: We could not connect to huggingface.co' >&2\nexit 1\n")
    line = one_line_error(ftr("tokens", local_model_recipe(tmp_path), "-b", "llamafactory"), 1,
                          "OSError: We could not connect to huggingface.co", "log: ")
    assert "Traceback" not in line
    log = Path(line.rsplit("log: ", 1)[1])
    assert "Traceback" in log.read_text() and log.parent == tmp
    assert not [p for p in tmp.iterdir() if p.is_dir()], "no ftr-tokens-* folder left behind"


def test_tokens_with_a_hub_model_not_on_this_machine_says_so_at_once(tmp_path, monkeypatch):
    """Issue 32: no download and no hang: a hub model that is not in the Hugging Face cache is one line, before any
    backend starts; the helpers run with the hub offline."""
    _tokens_env(tmp_path, monkeypatch, f"touch {tmp_path}/started\nsleep 60\n")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    line = one_line_error(ftr("tokens", recipe(tmp_path), "-b", "llamafactory", "--timeout", "30"), 2,
                          "model Qwen/Qwen2.5-7B-Instruct is not on this machine (no download): give a local path")
    assert "log:" not in line and not (tmp_path / "started").exists()
    snapshot = tmp_path / "hf" / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)  # in the cache: the backend runs, offline
    (tmp_path / "fake-python").write_text(f"#!/bin/sh\nenv > {tmp_path}/env\nexit 1\n")
    ftr("tokens", recipe(tmp_path), "-b", "llamafactory")
    env = (tmp_path / "env").read_text().splitlines()
    assert {"HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"} <= set(env)


def test_tokens_diff_checks_both_environments_first(tmp_path, monkeypatch):
    """Issue 32: `ftr tokens --diff A B` with B not installed fails before A starts."""
    _tokens_env(tmp_path, monkeypatch, f"touch {tmp_path}/started\nsleep 60\n")
    monkeypatch.delenv("FTR_AXOLOTL_PYTHON", raising=False)
    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "no-envs"))
    result = ftr("tokens", local_model_recipe(tmp_path), "--diff", "llamafactory", "axolotl")
    assert result.exit_code != 0 and "ftr backend install axolotl" in result.output, result.output
    assert not (tmp_path / "started").exists()


def test_convert_does_not_call_a_carried_value_lost(tmp_path):
    (tmp_path / "ax.yaml").write_text(
        f"base_model: Qwen/Qwen2.5-0.5B\ndatasets:\n  - {{path: {DATA}, type: chat_template}}\neval_strategy: steps\n"
        "eval_steps: 10\nval_set_size: 0.1\noutput_dir: o\nmicro_batch_size: 1\nnum_epochs: 1\n")
    result = ftr("convert", tmp_path / "ax.yaml", "--to", "llamafactory")
    assert result.exit_code == 0, result.output
    assert "eval_strategy: steps" in result.stdout
    assert "lost  eval_strategy" not in result.stderr and "kept  eval_strategy" in result.stderr


def test_report_plot_never_replaces_a_special_file(tmp_path):
    (tmp_path / "trainer_log.jsonl").write_text('{"current_steps": 1, "loss": 2.0}\n')
    os.mkfifo(tmp_path / "plot.png")
    one_line_error(ftr("report", tmp_path, "-o", tmp_path / "plot.png"), 2, "plot.png", "is a FIFO")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "plot.png").st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_presets_list_and_show_never_block_on_a_fifo(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    os.mkfifo(tmp_path / "lib" / "bad.yaml")
    (tmp_path / "lib" / "good.yaml").write_text("# a good preset\nftr: 1\n")
    monkeypatch.setenv("FTR_PRESET_PATH", str(tmp_path / "lib"))
    listed = ftr("presets", "list")
    assert listed.exit_code == 0 and "lib:bad" in listed.output and "is a FIFO" in listed.output
    assert "a good preset" in listed.output
    one_line_error(ftr("presets", "show", "bad"), 2, "bad.yaml", "is a FIFO")


def test_a_fifo_as_dataset_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "rows.jsonl")
    path = recipe(tmp_path, data=str(tmp_path / "rows.jsonl"))
    one_line_error(ftr("compile", path, "-b", "axolotl"), 1, "FTR004", "is a FIFO")
    assert ftr("lint", path).exit_code in (0, 1)


def test_run_refuses_gpus_asked_for_on_a_machine_without_one(tmp_path, fake_envs, monkeypatch):
    _gpus(monkeypatch, 0)
    path = recipe(tmp_path, out=str(tmp_path / "run"))
    one_line_error(ftr("run", path, "-b", "axolotl", "--gpus", "2"), 1, "asks for 2 GPU(s)", "--gpus 0 (the CPU)")
    assert not (tmp_path / "run").exists()


def test_gpu_count_unknown_on_another_vendors_driver(monkeypatch):
    from ft_recipes.run import plan as run

    monkeypatch.setattr(run, "_driver_gpus", lambda: 0)
    monkeypatch.setattr(run.Path, "exists", lambda self: str(self) == "/dev/kfd")
    assert run.visible_gpus() is None
    assert run.fit_machine(run.LaunchOptions(gpus=4), None, asked=True)[0].gpus == 4


@pytest.mark.parametrize("visible, driver, expected", [(None, 2, 2), ("", 2, 0), ("-1", 2, 0), ("0", 2, 1),
                                                       ("0,1,2,3", 2, 2), ("GPU-abc,GPU-def", 4, 2)])
def test_visible_gpus_honours_cuda_visible_devices(monkeypatch, visible, driver, expected):
    from ft_recipes.run import plan as run

    monkeypatch.setattr(run, "_driver_gpus", lambda: driver)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert run.visible_gpus() == expected
