"""Issue 32, a newcomer's and a team's first week: preset libraries, project settings by the recipe's folder,
findings attributed to the recipe rather than ftr's own presets."""

import json

from click.testing import CliRunner

from ft_recipes.cli.main import main

ROWS = '{"instruction": "a", "output": "b"}\n'


def lint(*args, env=None):
    return CliRunner().invoke(main, ["lint", *args], env=env)


def test_preset_extends_found_in_its_own_library_first(tmp_path, write, monkeypatch):
    write("team-presets/team-base.yaml", "ftr: 1\ntrain: {epochs: 2}\n")
    write("team-presets/team-chat.yaml", "ftr: 1\nextends: [team-base]\ntrain: {lr: 1.0e-4}\n")
    write("other/team-base.yaml", "ftr: 1\ntrain: {epochs: 9}\n")  # an unrelated library, same name
    write("d.jsonl", ROWS)
    write("r.yaml", "ftr: 1\nextends: [team-presets:team-chat]\nmodel: {base: org/m}\n"
                    "data: {train: [{path: d.jsonl, format: alpaca}]}\n")
    write("plain.yaml", "ftr: 1\nextends: [team-base]\nmodel: {base: org/m}\n"
                        "data: {train: [{path: d.jsonl, format: alpaca}]}\n")
    monkeypatch.chdir(tmp_path)
    env = {"FTR_PRESET_PATH": "team-presets:other"}
    result = CliRunner().invoke(main, ["explain", "r.yaml"], env=env)
    assert result.exit_code == 0, result.output
    assert "FTR004" not in lint("r.yaml", env=env).output
    from ft_recipes.recipe.loaded import load_recipe

    monkeypatch.setenv("FTR_PRESET_PATH", "team-presets:other")
    assert load_recipe(tmp_path / "r.yaml").recipe.train.epochs == 2
    # a recipe's own plain name stays ambiguous: it belongs to no library
    assert "more than one library" in lint("plain.yaml", env=env).output


def _monorepo(write):
    write("proj/pyproject.toml", '[tool.ftr]\npreset-paths = ["presets"]\n[tool.ftr.lint]\nignore = ["FTR301"]\n')
    write("proj/presets/fast.yaml", "ftr: 1\ntrain: {epochs: 2}\n")
    write("proj/recipes/d.jsonl", ROWS)
    return write("proj/recipes/r.yaml", "ftr: 1\nextends: [fast]\nmodel: {base: org/m}\n"
                                        "data: {train: [{path: d.jsonl, format: alpaca}]}\n")


def test_project_settings_come_from_the_recipes_folder(tmp_path, write, monkeypatch):
    recipe = _monorepo(write)
    outputs = []
    for where in (tmp_path / "proj", tmp_path, recipe.parent):
        monkeypatch.chdir(where)
        result = lint(str(recipe), "--format", "json")
        assert result.exit_code == 0, result.output
        outputs.append(sorted((f["code"], f["line"]) for f in json.loads(result.output)))
    assert outputs[0] == outputs[1] == outputs[2]
    assert "FTR301" not in {code for code, _ in outputs[0]}


def test_project_settings_from_the_recipes_folder_in_the_api(tmp_path, write, monkeypatch):
    from ft_recipes.lint import lint_paths, lint_recipe
    from ft_recipes.recipe.loaded import load_recipe

    recipe = _monorepo(write)
    monkeypatch.chdir(tmp_path)
    assert load_recipe(recipe).recipe.train.epochs == 2
    assert "FTR301" not in {f.code for f in lint_recipe(load_recipe(recipe))}
    assert "FTR301" not in {f.code for f in lint_paths([str(recipe)])}


def test_finding_caused_by_the_recipe_is_reported_at_the_recipe(tmp_path, write, monkeypatch):
    write("d.jsonl", ROWS)
    write("r.yaml", "ftr: 1\nextends: [qlora-sft]\nmodel: {base: org/m, template: chatml, pad_token: eos}\n"
                    "data: {train: [{path: d.jsonl, format: alpaca}]}\nmethod:\n  lora: {r: 256}\n")
    monkeypatch.chdir(tmp_path)
    result = lint("r.yaml", "--format", "github")
    alpha = [line for line in result.output.splitlines() if "FTR103" in line]
    assert alpha and alpha[0].startswith("::warning file=r.yaml,line=6,"), result.output
    assert "lora-sft.yaml sets it on line" in alpha[0]
    assert "presets/" not in result.output


def test_finding_only_in_a_builtin_preset_points_at_extends(tmp_path, write, monkeypatch):
    from ft_recipes.lint import Options, lint_recipe
    from ft_recipes.recipe.loaded import load_recipe

    write("d.jsonl", ROWS)
    recipe = write("r.yaml", "ftr: 1\nmodel: {base: org/m, template: chatml, pad_token: eos}\n"
                             "extends: [qlora-sft]\ndata: {train: [{path: d.jsonl, format: alpaca}]}\n"
                             "lint: {ignore: []}\n")
    pack = write("pack.yaml", "rules:\n  FTR103:\n    min_ratio: 4\n")
    monkeypatch.chdir(tmp_path)
    found = lint_recipe(load_recipe(recipe), Options(select=("FTR103",), rule_packs=(str(pack),)))
    assert [(f.code, f.file, f.line) for f in found] == [("FTR103", str(recipe), 3)]


def test_yaml_syntax_errors_in_plain_words(tmp_path, write, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = {
        "indent.yaml": ("ftr: 1\nmodel:\n  base: org/m\n template: chatml\n", "indentation on line 4"),
        "tab.yaml": ("ftr: 1\nmodel:\n\tbase: org/m\n", "YAML does not allow tabs: line 3"),
        "brace.yaml": ("ftr: 1\nmodel: {base: org/m\n", "the '{' opened on line 2 is not closed"),
        "quote.yaml": ('ftr: 1\nmodel: "abc\n', "the quote opened on line 2 is not closed"),
    }
    for name, (text, wording) in cases.items():
        write(name, text)
        result = lint(name)
        assert result.exit_code == 1 and wording in result.output, (name, result.output)
        assert "cannot start any token" not in result.output and "expected key" not in result.output


def test_no_doubled_error_prefix(tmp_path, write, monkeypatch):
    import ft_recipes.backends.envs

    write("pyproject.toml", '[tool.ftr.lint]\nrule-packs = ["missing.yaml"]\n')
    write("d.jsonl", ROWS)
    write("r.yaml", "ftr: 1\nmodel: {base: org/m}\ndata: {train: [{path: d.jsonl, format: alpaca}]}\n")
    write("pack.yaml", "rules: [1\n")
    monkeypatch.chdir(tmp_path)
    missing = lint("r.yaml")
    assert missing.exit_code == 2 and missing.output.count("error:") == 1, missing.output
    (tmp_path / "pyproject.toml").unlink()
    broken = lint("r.yaml", "--rule-pack", "pack.yaml")
    assert broken.exit_code == 2 and "error:" not in broken.output.replace("error: rule pack", "", 1)

    def fail(*args, **kwargs):
        raise RuntimeError("uv failed")

    monkeypatch.setattr(ft_recipes.backends.envs, "install", fail)
    result = CliRunner().invoke(main, ["backend", "install", "trl"])
    assert result.exit_code == 1 and "error: uv failed" in result.output and "error: error:" not in result.output


def test_symlink_loop_in_a_folder_names_every_file(tmp_path, write, monkeypatch):
    write("recipes/d.jsonl", ROWS)
    write("recipes/r.yaml", "ftr: 1\nmodel: {base: org/m}\ndata: {train: [{path: d.jsonl, format: alpaca}]}\n")
    (tmp_path / "recipes/a.yaml").symlink_to("b.yaml")
    (tmp_path / "recipes/b.yaml").symlink_to("a.yaml")
    monkeypatch.chdir(tmp_path)
    result = lint("recipes")
    assert result.exit_code == 2
    assert "recipes/a.yaml -> recipes/b.yaml -> recipes/a.yaml" in result.output
    assert "recipes/b.yaml: is a symlink loop" in result.output


def test_non_finite_number_in_a_native_file_is_an_error(tmp_path, write, monkeypatch):
    write("lf.yaml", "model_name_or_path: org/m\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
                     "dataset: alpaca_en_demo\ntemplate: llama3\noutput_dir: out\nlearning_rate: .nan\n")
    write("ax.yaml", "base_model: org/m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nlora_dropout: -.inf\n")
    monkeypatch.chdir(tmp_path)
    for name, line in (("lf.yaml", 8), ("ax.yaml", 5)):
        result = lint(name, "--format", "json")
        assert result.exit_code == 1, result.output
        errors = [f for f in json.loads(result.output) if f["severity"] == "error"]
        assert ("FTR002", line) in [(f["code"], f["line"]) for f in errors], result.output


def test_run_reads_backend_versions_from_the_recipes_project(tmp_path, write, monkeypatch):
    """`ftr run` from another folder uses the [tool.ftr] backend-versions of the pyproject.toml nearest the
    recipe (the environment of Axolotl 0.21.0 here), as compile and lint do."""
    import os
    import sys

    from ft_recipes import backends
    from ft_recipes.backends import envs

    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "envs"))
    monkeypatch.delenv("FTR_AXOLOTL_PYTHON", raising=False)
    for version in ("0.19.0", "0.21.0"):  # both environments "installed", each its own folder
        root = envs.env_dir(backends.get("axolotl", version).env_spec())
        (root / "bin").mkdir(parents=True)
        os.symlink(sys.executable, root / "bin" / "python")
        (root / envs.COMPLETE).write_text("{}")
    write("proj/pyproject.toml", '[tool.ftr]\nbackend-versions = {axolotl = "0.21.0"}\n')
    write("proj/d.jsonl", ROWS)
    recipe = write("proj/r.yaml", "ftr: 1\nmodel: {base: org/m, template: chatml}\n"
                                  "data: {train: [{path: d.jsonl, format: alpaca}]}\noutput: {dir: run}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", str(recipe), "-b", "axolotl", "--dry-run", "--no-lint"])
    assert result.exit_code == 0, result.output
    wanted = envs.env_dir(backends.get("axolotl", "0.21.0").env_spec()).name
    assert f"{wanted}/bin/axolotl" in result.output


def _team_repo(write):
    """A repository whose recipes extend a shared preset (through another one, for chat.yaml)."""
    write("repo/.git/HEAD", "ref: refs/heads/main\n")
    write("repo/pyproject.toml", '[tool.ftr]\npreset-paths = ["shared"]\n')
    write("repo/shared/team-base.yaml", "ftr: 1\ntrain: {epochs: 2}\n")
    write("repo/shared/team-chat.yaml", "ftr: 1\nextends: [team-base]\nmodel: {template: chatml}\n")
    write("repo/recipes/d.jsonl", ROWS)
    body = "model: {base: org/m, pad_token: eos}\ndata: {train: [{path: d.jsonl, format: alpaca}], val: {split: 0.1}}\n"
    write("repo/recipes/direct.yaml", f"ftr: 1\nextends: [team-base]\n{body}")
    write("repo/recipes/chat.yaml", f"ftr: 1\nextends: [team-chat]\n{body.replace(', pad_token: eos', '')}")
    write("repo/recipes/other.yaml", f"ftr: 1\nextends: [lora-sft]\n{body}")
    return write


def test_precommit_lints_the_recipes_that_extend_a_changed_preset(tmp_path, write, monkeypatch):
    """Issue 32: pre-commit passes only the changed preset (`ftr lint --only-recipes shared/team-base.yaml`): the
    recipes that extend it, directly or through another preset, are linted, and a broken preset fails them."""
    _team_repo(write)
    monkeypatch.chdir(tmp_path / "repo")
    write("repo/shared/team-base.yaml", "ftr: 1\ntrain: {epochs: 2, lr: 1.0e-6}\n")  # FTR101 error in every user
    result = lint("--only-recipes", "shared/team-base.yaml")
    assert result.exit_code == 1 and "FTR101" in result.output, result.output
    assert "recipes/direct.yaml:" in result.output and "recipes/chat.yaml:" in result.output  # FTR302, FTR301
    assert "2 files linted" in result.output and "other.yaml" not in result.output
    write("repo/shared/team-base.yaml", "ftr: 1\ntrain: {epochs: 2\n")  # no longer YAML
    broken = lint("--only-recipes", "shared/team-chat.yaml", "shared/team-base.yaml")
    assert broken.exit_code == 1 and "team-base.yaml" in broken.output, broken.output
    assert "0 files" not in broken.output
    write("repo/shared/team-base.yaml", "ftr: 1\ntrain: {epochs: 2}\n")
    assert lint("--only-recipes", "shared/team-base.yaml").exit_code == 0
    assert lint("--only-recipes", "recipes/other.yaml").exit_code == 0


def test_a_preset_path_that_does_not_exist_is_never_silent(tmp_path, write, monkeypatch):
    write("d.jsonl", ROWS)
    write("r.yaml", "ftr: 1\nmodel: {base: org/m, pad_token: eos}\n"
                    "data: {train: [{path: d.jsonl, format: alpaca}], val: {split: 0.1}}\n")
    monkeypatch.chdir(tmp_path)
    result = lint("r.yaml", env={"FTR_PRESET_PATH": str(tmp_path / "nonexistent")})
    assert "warning: FTR_PRESET_PATH names" in result.stderr and "nonexistent" in result.stderr
    result = lint("--only-recipes", "r.yaml", env={"FTR_PRESET_PATH": "/nonexistent"})
    assert "FTR_PRESET_PATH names /nonexistent" in result.stderr
