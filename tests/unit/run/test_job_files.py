"""Job files (issue 34, item 7): every value ftr writes into an sbatch script, a Ray entrypoint or a SkyPilot
task is quoted or refused, comments included, for every name of the hostile set (test_hardening.HOSTILE_DIRS)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner
from test_hardening import HOSTILE_DIRS, shell_words
from test_scaleout import DATA, fake_envs  # noqa: F401 (fixture)

from ft_recipes.cli.main import main


def recipe(tmp_path, out: str, hardware: str = "{}"):
    path = tmp_path / "r.yaml"
    path.write_text(f"ftr: 1\nextends: [lora-sft]\nmodel: {{base: Qwen/Qwen2.5-7B-Instruct, template: chatml, "
                    f"pad_token: eos}}\ndata:\n  train:\n    - {{path: {DATA}, format: alpaca}}\n"
                    f"output: {{dir: {json.dumps(str(tmp_path / out))}}}\nhardware: {hardware}\n")
    return path


def job_file(tmp_path, out: str, launcher: str, hardware: str = "{}"):
    result = CliRunner().invoke(main, ["run", str(recipe(tmp_path, out, hardware)), "-b", "llamafactory",
                                       "--dry-run", "--launcher", launcher, "--nodes", "2", "--gpus", "0"])
    return result, result.stdout.split("\n\n", 1)[-1]


def sbatch_block(script: str) -> list[str]:
    """The lines sbatch reads options from: those after the shebang up to the first command."""
    block = []
    for line in script.splitlines()[1:]:
        if not line.startswith("#"):
            break
        block.append(line)
    return block


def line_after(script: str, start: str) -> str:
    return next(line for line in script.splitlines() if line.startswith(start))


@pytest.mark.parametrize("out", HOSTILE_DIRS)
def test_sbatch_script_quotes_or_refuses_every_hostile_name(tmp_path, fake_envs, out):
    result, script = job_file(tmp_path, out, "slurm")
    if not out.isprintable():  # sbatch has no escape for a newline or a tab in an #SBATCH line
        assert result.exit_code == 2 and "control character" in result.output, result.output
        assert "Traceback" not in result.output
        return
    assert result.exit_code == 0, result.output
    _, plain = job_file(tmp_path, "plain", "slurm")
    assert len(script.splitlines()) == len(plain.splitlines())
    assert len(sbatch_block(script)) == len(sbatch_block(plain)), script  # the #SBATCH block is whole
    assert re.fullmatch(r"#SBATCH --job-name=ftr-[A-Za-z0-9-]+", line_after(script, "#SBATCH --job-name"))
    prepare = shell_words(line_after(script, "/"), tmp_path)  # this ftr's python ... RUN_DIR --prepare
    assert prepare[-2:] == [str(tmp_path / out), "--prepare"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("out", HOSTILE_DIRS)
def test_ray_entrypoint_quotes_every_hostile_name(tmp_path, fake_envs, out):
    result, script = job_file(tmp_path, out, "ray", "{ray_address: 'http://head:8265'}")
    assert result.exit_code == 0, result.output
    _, plain = job_file(tmp_path, "plain", "ray", "{ray_address: 'http://head:8265'}")
    assert len(script.splitlines()) == len(plain.splitlines()), script
    assert script.splitlines()[1].startswith("# ftr-")
    words = shell_words(line_after(script, "exec ").removeprefix("exec "), tmp_path)
    assert words[-1] == str(tmp_path / out) and "ft_recipes.run.launchers.node" in words
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("out", HOSTILE_DIRS)
def test_skypilot_task_keeps_every_hostile_name_a_value(tmp_path, fake_envs, out):
    result, text = job_file(tmp_path, out, "skypilot")
    assert result.exit_code == 0, result.output
    _, plain = job_file(tmp_path, "plain", "skypilot")
    task = yaml.safe_load(text)
    assert task.keys() == yaml.safe_load(plain).keys()
    assert text.splitlines()[0].startswith("# ftr-")
    assert task["file_mounts"]["~/ftr/recipe.yaml"] == str(tmp_path / out / "sky-recipe.yaml")
    assert re.fullmatch(r"[a-zA-Z]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?", task["name"])  # a valid SkyPilot cluster name


@pytest.mark.parametrize("option", ["--qos\n#SBATCH --x=1", "--a b=1", "--x=1\necho pwned", "--x=a\tb",
                                    "--$(touch pwned)=1"])
def test_hostile_sbatch_options_are_refused(tmp_path, fake_envs, option):
    result, _ = job_file(tmp_path, "plain", "slurm", f"{{sbatch: [{json.dumps(option)}]}}")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "hardware.sbatch" in result.output or "control character" in result.output


def test_a_quoted_sbatch_value_stays_one_directive(tmp_path, fake_envs):
    result, script = job_file(tmp_path, "plain", "slurm", '{sbatch: ["--comment=a b; touch pwned"]}')
    assert result.exit_code == 0, result.output
    assert "#SBATCH --comment='a b; touch pwned'" in sbatch_block(script)
