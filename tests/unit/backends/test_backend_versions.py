"""Backend versions (issue 16): a backend that ftr targets in several versions (Axolotl 0.19.0, the default, and
0.21.0) compiles, runs and lints for the version chosen on the command line, in [tool.ftr], or by the
environment that FTR_<NAME>_PYTHON points at."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner
from paths import ROOT

from ft_recipes import backends
from ft_recipes.cli.main import main
from ft_recipes.core.findings import FtrError, UsageError

EXAMPLE = ROOT / "recipes" / "examples" / "lora-sft-alpaca.yaml"


def _fake_python(tmp_path, version: str):
    """An executable that answers installed_version's question with ``version``."""
    path = tmp_path / f"python-{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_default_and_other_version_of_a_backend():
    default, newer = backends.get("axolotl"), backends.get("axolotl", "0.21.0")
    assert default.version == "0.19.0" and newer.version == "0.21.0"
    assert default.env_spec().python == "3.11" and newer.env_spec().python == "3.12"
    assert default.env_spec().lock != newer.env_spec().lock  # a cache directory each
    with pytest.raises(UsageError, match="targets 0.19.0, 0.21.0"):
        backends.get("axolotl", "0.20.0")
    with pytest.raises(UsageError, match="targets 0.9.5"):
        backends.get("llamafactory", "0.21.0")


def test_targeting_is_scoped_to_the_block():
    with backends.targeting({"axolotl": "0.21.0"}):
        assert backends.get("axolotl").version == "0.21.0"
        assert backends.env_spec("axolotl").version == "0.21.0"
    assert backends.get("axolotl").version == "0.19.0"


def test_version_values_bare_or_named():
    assert backends.parse_versions(["0.21.0"], "--backend-version", "axolotl") == {"axolotl": "0.21.0"}
    assert backends.parse_versions(["axolotl=0.21.0"], "--backend-version", "llamafactory") == {"axolotl": "0.21.0"}
    with pytest.raises(UsageError, match="BACKEND=VERSION"):
        backends.parse_versions(["nope=1.0"], "--backend-version", "axolotl")


@pytest.mark.parametrize("flag", ["0.21.0", "axolotl=0.21.0"])
def test_compile_header_names_the_targeted_version(flag):
    new = CliRunner().invoke(main, ["compile", str(EXAMPLE), "-b", "axolotl", "--backend-version", flag])
    old = CliRunner().invoke(main, ["compile", str(EXAMPLE), "-b", "axolotl"])
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert "target: axolotl 0.21.0." in new.stdout and "target: axolotl 0.19.0." in old.stdout
    body = lambda text: text.split("\n", 2)[2]  # noqa: E731 - the keys below the header
    assert body(new.stdout) == body(old.stdout)  # the keys ftr writes mean the same in both versions


def test_compile_refuses_a_version_it_cannot_target():
    result = CliRunner().invoke(main, ["compile", str(EXAMPLE), "-b", "axolotl", "--backend-version", "0.20.0"])
    assert result.exit_code == 2 and "cannot target Axolotl 0.20.0" in result.output


def test_project_setting_and_environment_choose_the_version(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTR_AXOLOTL_PYTHON", str(_fake_python(tmp_path, "0.21.0")))
    assert backends.chosen_versions({}) == {"axolotl": "0.21.0"}  # the environment ftr would run
    assert backends.chosen_versions({"axolotl": "0.19.0"}) == {"axolotl": "0.19.0"}  # the command line wins
    (tmp_path / "pyproject.toml").write_text('[tool.ftr]\nbackend-versions = {axolotl = "0.19.0"}\n')
    assert backends.chosen_versions({}) == {"axolotl": "0.19.0"}  # the project over the environment
    monkeypatch.setenv("FTR_AXOLOTL_PYTHON", str(_fake_python(tmp_path, "0.18.0")))
    (tmp_path / "pyproject.toml").unlink()
    assert backends.chosen_versions({}) == {}  # a version ftr cannot target: the default


def test_run_refuses_an_environment_of_another_version(tmp_path, monkeypatch):
    from ft_recipes.backends import backend_python

    monkeypatch.setenv("FTR_AXOLOTL_PYTHON", str(_fake_python(tmp_path, "0.19.0")))
    with backends.targeting({"axolotl": "0.21.0"}):
        with pytest.raises(FtrError) as caught:
            backend_python("axolotl")
    assert caught.value.findings[0].code == "FTR503" and "--backend-version 0.19.0" in caught.value.findings[0].hint
    assert backend_python("axolotl") == _fake_python(tmp_path, "0.19.0")
    monkeypatch.setenv("FTR_AXOLOTL_PYTHON", str(_fake_python(tmp_path, "0.19.1")))  # the user's own build
    with backends.targeting({"axolotl": "0.21.0"}):
        assert backend_python("axolotl") == _fake_python(tmp_path, "0.19.1")


def test_missing_environment_names_the_version_to_install(tmp_path, monkeypatch):
    from ft_recipes.backends import backend_python

    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "envs"))
    monkeypatch.delenv("FTR_AXOLOTL_PYTHON", raising=False)
    with backends.targeting({"axolotl": "0.21.0"}), pytest.raises(FtrError) as caught:
        backend_python("axolotl")
    assert "ftr backend install axolotl --version 0.21.0" in caught.value.findings[0].hint
    result = CliRunner().invoke(main, ["backend", "path", "axolotl", "--version", "0.21.0"])
    assert result.exit_code == 1 and "--version 0.21.0" in result.output
    info = CliRunner().invoke(main, ["backend", "info"])
    assert "axolotl 0.19.0:" in info.output and "axolotl 0.21.0:" in info.output


def test_run_dry_run_compiles_for_the_version(tmp_path, monkeypatch):
    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "envs"))
    monkeypatch.delenv("FTR_AXOLOTL_PYTHON", raising=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"ftr: 1\nextends: [{ROOT / 'recipes' / 'examples' / 'tiny-cpu.yaml'}]\n"
                      f"output: {{dir: {tmp_path / 'run'}}}\n")
    result = CliRunner().invoke(main, ["run", str(recipe), "-b", "axolotl", "--backend-version", "0.21.0",
                                       "--dry-run", "--no-lint"])
    assert result.exit_code == 1, result.output  # the real run's: the 0.21.0 environment is not installed
    assert "<axolotl-env>" in result.output and "axolotl.cli.train" in result.output
    assert "axolotl 0.21.0 environment is not installed" in result.stdout


def test_lint_says_which_version_has_a_key(tmp_path):
    path = tmp_path / "axolotl.yaml"
    path.write_text("base_model: org/m\nfsdp: [full_shard]\neval_on_start: false\nlearning_rate: 1.0e-4\n"
                    "datasets: [{path: d.jsonl, type: chat_template}]\n")
    old = CliRunner().invoke(main, ["lint", str(path), "--select", "FTR001,FTR006", "--format", "json"])
    new = CliRunner().invoke(main, ["lint", str(path), "--select", "FTR001,FTR006", "--format", "json",
                                    "--backend-version", "axolotl=0.21.0"])
    hints = lambda out: {f["line"]: f["hint"] for f in json.loads(out) if f["code"] == "FTR001"}  # noqa: E731
    assert hints(old.output) == {3: "'eval_on_start' was added in axolotl 0.21.0 (linted against 0.19.0; "
                                    "--backend-version axolotl=0.21.0 if you run that)"}
    # a key the rename table names: FTR006 with the version that removed it and the upgrade that moves it
    [finding] = json.loads(new.output)
    assert (finding["line"], finding["code"]) == (2, "FTR006")
    assert "'fsdp' was removed in axolotl 0.21.0" in finding["message"]
    assert f"ftr upgrade {path} --to axolotl=0.21.0" in finding["hint"]


def test_lint_follows_the_environment_version(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTR_AXOLOTL_PYTHON", str(_fake_python(tmp_path, "0.21.0")))
    path = tmp_path / "axolotl.yaml"
    path.write_text("base_model: org/m\neval_on_start: false\nlearning_rate: 1.0e-4\n"
                    "datasets: [{path: d.jsonl, type: chat_template}]\n")
    assert "FTR001" not in CliRunner().invoke(main, ["lint", str(path), "--select", "FTR001"]).output
    pinned = CliRunner().invoke(main, ["lint", str(path), "--select", "FTR001", "--backend-version", "axolotl=0.19.0"])
    assert "added in axolotl 0.21.0" in pinned.output


def test_axolotl_021_has_the_019_chat_templates():
    """The template code (backends/axolotl/templates.py) reads the 0.19.0 catalogues for both versions: valid
    only while 0.21.0's templates, Jinja texts and strategy defaults are the same (regenerated with
    scripts/gen_template_catalogue.py and scripts/gen_templates.py in the 0.21.0 environment)."""
    folder = ROOT / "schemas" / "backends"
    for old, new in (("templates-axolotl-0.19.0.json", "templates-axolotl-0.21.0.json"),
                     ("templates/axolotl-0.19.0.json", "templates/axolotl-0.21.0.json")):
        a, b = (json.loads((folder / name).read_text()) for name in (old, new))
        assert (a.pop("version"), b.pop("version")) == ("0.19.0", "0.21.0")
        assert a == b, new


def test_project_setting_must_name_backends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.ftr]\nbackend-versions = {axolotol = "0.21.0"}\n')
    with pytest.raises(UsageError, match="backends: llamafactory, axolotl, trl"):
        backends.chosen_versions({})


def test_merge_targets_the_version_that_trained():
    from ft_recipes.run.manifest import run_target

    assert run_target({"backend": "axolotl", "backend_version": "0.21.0"}) == {"axolotl": "0.21.0"}
    assert run_target({"backend": "axolotl", "backend_version": "0.19.0"}) == {"axolotl": "0.19.0"}
    assert run_target({"backend": "axolotl", "backend_version": None}) == {}  # an old manifest: the default


@pytest.mark.parametrize("name", backends.NAMES)
def test_every_targeted_version_has_a_lock_and_a_catalogue(name):
    backend = backends.get(name)
    for version in backend.versions or (backend.version,):
        spec = backends.get(name, version).env_spec()
        assert spec.version == version and spec.lock.is_file(), (name, version)
        if (ROOT / "schemas" / "backends" / f"{name}-{backend.version}.json").is_file():
            assert (ROOT / "schemas" / "backends" / f"{name}-{version}.json").is_file(), (name, version)
    assert not backend.versions or backend.versions[0] == backend.version  # the default first
