"""ftr against the real backends: every example and preset compiles into configs the backend's own
validator accepts; recipes train end to end on CPU through `ftr run`; resume, force, interruption and merge;
and the tokenization of one recipe is compared across backends."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "recipes" / "examples").glob("*.yaml"))
PRESETS = sorted((ROOT / "recipes" / "presets").glob("*.yaml"))
FTR = [sys.executable, "-m", "ft_recipes"]


def ftr(*args, env=None, check=True, timeout=900, cwd=None):
    proc = subprocess.run([*FTR, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="session")
def run_env(backend_env, lf_python, ax_python, trl_python):
    """Backend subprocess environment in which ftr finds all three backend environments."""
    return {**backend_env, "FTR_LLAMAFACTORY_PYTHON": str(lf_python), "FTR_AXOLOTL_PYTHON": str(ax_python),
            "FTR_TRL_PYTHON": str(trl_python)}


def validate(python: Path, backend: str, configs: list[Path], env) -> list[dict]:
    helper = ROOT / "ft_recipes" / "backends" / backend / "validate_helper.py"
    proc = subprocess.run([str(python), str(helper), "--cpu", *map(str, configs)], capture_output=True, text=True,
                          env=env, timeout=900)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(configs), proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


def compile_all(recipes: list[Path], backend: str, out: Path, version: str | None = None) -> list[Path]:
    configs = []
    for recipe in recipes:
        target = out / recipe.stem
        proc = ftr("compile", recipe, "-b", backend, "-o", target, *(("--backend-version", version) if version else ()),
                   check=False)
        if proc.returncode == 1 and "FTR005" in proc.stderr:
            continue  # the backend cannot express this recipe: that is its own (golden-tested) answer
        assert proc.returncode == 0, proc.stderr
        if (target / "pipeline.json").is_file():  # a pipeline: one config per training stage
            stages = json.loads((target / "pipeline.json").read_text())["stages"]
            configs += [Path(s["config"]) for s in stages if s["kind"] == "train"]
            continue
        configs.append(target / f"{backend}.yaml")
    return configs


def preset_recipes(tmp_path: Path) -> list[Path]:
    data = ROOT / "recipes" / "examples" / "data"
    out = []
    for preset in PRESETS:
        fmt = {"dpo-lora": "preference", "orpo-lora": "preference", "pretrain-lora": "text"}.get(preset.stem, "alpaca")
        path = tmp_path / f"preset-{preset.stem}.yaml"
        path.write_text(f"ftr: 1\nextends: [{preset.stem}]\nmodel: {{base: Qwen/Qwen2.5-0.5B-Instruct, "
                        f"template: chatml, pad_token: eos}}\ndata:\n  train:\n    - {{path: {data}/{fmt}.jsonl, "
                        f"format: {fmt}}}\noutput: {{dir: {tmp_path}/out-{preset.stem}}}\n")
        out.append(path)
    return out


@pytest.mark.parametrize("backend,python_fixture,version", [("llamafactory", "lf_python", None),
                                                              ("axolotl", "ax_python", None),
                                                              ("axolotl", "ax21_python", "0.21.0")])
def test_examples_and_presets_accepted_by_backend_validator(backend, python_fixture, version, request, tmp_path,
                                                            backend_env):
    python = request.getfixturevalue(python_fixture)
    configs = compile_all(EXAMPLES + preset_recipes(tmp_path), backend, tmp_path / "compiled", version)
    assert len(configs) >= len(EXAMPLES)
    if version:
        assert all(f"target: {backend} {version}." in c.read_text() for c in configs)
    for result in validate(python, backend, configs, backend_env):
        assert result["ok"], result
        assert not result.get("dropped"), result


def test_validator_catches_a_broken_compiled_config(lf_python, ax_python, ax21_python, tmp_path, backend_env):
    for backend, python, key, version in (("llamafactory", lf_python, "lora_rnak", None),
                                          ("axolotl", ax_python, "lora_rnak", None),
                                          ("axolotl", ax21_python, "lora_rnak", "0.21.0")):
        cfg_path = compile_all([EXAMPLES[0]], backend, tmp_path / f"{backend}-{version}", version)[0]
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg[key] = 8
        cfg_path.write_text(yaml.safe_dump(cfg))
        (result,) = validate(python, backend, [cfg_path], backend_env)
        assert not result["ok"] or key in result.get("dropped", []), result


def tiny_recipe(tmp: Path, assets, name: str, body: str, data: str = "alpaca", fmt: str = "alpaca") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(f"""ftr: 1
{body}
model: {{base: {assets.model}, template: chatml, pad_token: "<|endoftext|>"}}
data:
  train:
    - {{path: {assets.data}/{data}.jsonl, format: {fmt}}}
  val: {{split: 0.2}}
  max_length: 128
train: {{max_steps: 4, micro_batch_size: 2, grad_accum: 1, warmup_ratio: 0.0, precision: fp32,
        gradient_checkpointing: false, logging_steps: 1}}
eval: {{steps: 2}}
output: {{dir: {tmp}/runs/{name}, save: steps, save_steps: 2}}
hardware: {{gpus: 0}}
lint: {{ignore: [FTR1, FTR206]}}
""")
    return path


def read_log(run_dir: Path) -> tuple[list[float], list[float]]:
    from ft_recipes.insight.report import read_curves

    curves = read_curves(run_dir)
    return [v for _, v in curves.train], [v for _, v in curves.eval]


def assert_trained(run_dir: Path, adapter: bool = True) -> None:
    train, evals = read_log(run_dir)
    assert train and all(math.isfinite(v) for v in train), train
    assert evals and all(math.isfinite(v) for v in evals), evals
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["exit_status"] == 0 and manifest["interrupted"] is False
    assert manifest["torch"] and manifest["backend_version"]
    assert (run_dir / "logs" / "train.log").stat().st_size > 0
    if adapter:
        assert (run_dir / "adapter_model.safetensors").is_file()


def load_adapter(python: Path, run_dir: Path, env) -> None:
    code = ("import sys; from peft import PeftModel; from transformers import AutoModelForCausalLM; "
            "import json; cfg = json.load(open(sys.argv[1] + '/adapter_config.json')); "
            "base = AutoModelForCausalLM.from_pretrained(cfg['base_model_name_or_path']); "
            "PeftModel.from_pretrained(base, sys.argv[1]); print('loaded')")
    proc = subprocess.run([str(python), "-c", code, str(run_dir)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr[-2000:]




def ftr305(base: Path, template: str, assets, tmp: Path) -> bool:
    """Whether `ftr lint` warns that ``base``'s saved chat template differs from training template ``template``."""
    recipe = tmp / "serve.yaml"
    recipe.write_text(f"ftr: 1\nextends: [lora-sft]\nmodel: {{base: {base}, template: {template}}}\n"
                      f"data: {{train: [{{path: {assets.data}/alpaca.jsonl, format: alpaca}}]}}\n")
    proc = ftr("lint", recipe, check=False)
    return "FTR305" in proc.stdout + proc.stderr


def assert_serves_training_template(run_dir: Path, template: str, assets, tmp: Path) -> None:
    """The run directory's tokenizer carries the template trained (FTR305 quiet there; it fires on the base)."""
    assert json.loads((run_dir / "manifest.json").read_text())["chat_template"]["template"] == template
    assert ftr305(assets.model, template, assets, tmp)
    assert not ftr305(run_dir, template, assets, tmp)


@pytest.mark.parametrize("backend", ["llamafactory", "axolotl", "trl"])
def test_lora_sft_through_ftr_run(backend, tiny_assets, run_env, tmp_path, lf_python):
    """qwen, not the tiny model's ChatML: its default system prompt makes the base's template differ."""
    recipe = tiny_recipe(tmp_path, tiny_assets, f"lora-{backend}", "extends: [lora-sft]")
    recipe.write_text(recipe.read_text().replace("template: chatml", "template: qwen"))
    proc = ftr("run", recipe, "-b", backend, env=run_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / f"lora-{backend}"
    assert_trained(run_dir)
    load_adapter(lf_python, run_dir, run_env)
    assert (run_dir / "recipe.resolved.yaml").is_file()
    assert "ftr: step" in proc.stderr  # the progress line
    assert_serves_training_template(run_dir, "qwen", tiny_assets, tmp_path)


def test_axolotl_021_lora_sft_through_ftr_run_and_merge(tiny_assets, run_env, ax21_python, tmp_path, lf_python):
    """`--backend-version 0.21.0`: compiled for 0.21.0, trained and merged in ftr's cached 0.21.0 environment."""
    env = {k: v for k, v in run_env.items() if k != "FTR_AXOLOTL_PYTHON"}
    recipe = tiny_recipe(tmp_path, tiny_assets, "lora-ax21", "extends: [lora-sft]")
    proc = ftr("run", recipe, "-b", "axolotl", "--backend-version", "0.21.0", env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "lora-ax21"
    assert_trained(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["backend_version"] == "0.21.0" and manifest["python"].startswith("3.12")
    assert manifest["backend_command"][0] == str(ax21_python)
    assert "target: axolotl 0.21.0." in (run_dir / "axolotl.yaml").read_text()
    load_adapter(lf_python, run_dir, env)
    merged = tmp_path / "merged-ax21"
    ftr("merge", run_dir, "-o", merged, env=env)  # the manifest's version picks the 0.21.0 environment again
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))


def test_full_sft_llamafactory(tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "full", "extends: [full-sft]")
    ftr("run", recipe, "-b", "llamafactory", env=run_env)
    run_dir = tmp_path / "runs" / "full"
    assert_trained(run_dir, adapter=False)
    assert (run_dir / "model.safetensors").is_file()


@pytest.mark.parametrize("backend", ["llamafactory", "axolotl", "trl"])
def test_dpo_lora(backend, tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, f"dpo-{backend}", "extends: [dpo-lora]", "preference", "preference")
    proc = ftr("run", recipe, "-b", backend, env=run_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_trained(tmp_path / "runs" / f"dpo-{backend}")


def kto_recipe(tmp_path: Path, assets) -> Path:
    """Messages rows with a KTO label (every third one undesirable), as LLaMA-Factory's kto_en_demo holds them."""
    rows = [json.loads(line) for line in (assets.data / "messages.jsonl").read_text().splitlines()]
    data = tmp_path / "kto.jsonl"
    data.write_text("".join(json.dumps({**row, "label": i % 3 != 2}) + "\n" for i, row in enumerate(rows)))
    recipe = tiny_recipe(tmp_path, assets, "kto", "stage: kto\nextends: [lora-sft]\ntrain: {lr: 5.0e-5}")
    text = recipe.read_text().replace(f"{{path: {assets.data}/alpaca.jsonl, format: alpaca}}",
                                      f"{{path: {data}, format: messages, columns: {{kto_tag: label}}}}")
    recipe.write_text(text.replace("train: {max_steps", "train: {lr: 5.0e-5, max_steps").replace(
        "train: {lr: 5.0e-5}\n", ""))
    return recipe


def test_kto_labels_reach_llamafactory_and_train(tiny_assets, run_env, tmp_path):
    """The recipe's kto_tag column reaches LLaMA-Factory's dataset_info (it was dropped: every row then counted as
    desirable), seen through its own preprocessing; the first KTO loss is 1 - sigmoid(0) = 0.5 (policy == ref)."""
    recipe = kto_recipe(tmp_path, tiny_assets)
    proc = ftr("tokens", recipe, "-b", "llamafactory", "-n", 9, env=run_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("(desirable)") == 6 and proc.stdout.count("(undesirable)") == 3, proc.stdout[-2000:]
    ftr("run", recipe, "-b", "llamafactory", env=run_env)
    train, _ = read_log(tmp_path / "runs" / "kto")
    assert abs(train[0] - 0.5) < 1e-3, train


def test_kto_on_axolotl_starts_where_llamafactory_does(tiny_assets, run_env, tmp_path):
    """The same KTO recipe on Axolotl (unpaired rows rendered by trl with the chat template): it trains, and its
    first loss is 1 - sigmoid(0) = 0.5, as on LLaMA-Factory."""
    recipe = kto_recipe(tmp_path, tiny_assets)
    proc = ftr("run", recipe, "-b", "axolotl", env=run_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "KTO's KL term" in proc.stderr  # the fidelity note
    train, _ = read_log(tmp_path / "runs" / "kto")
    assert abs(train[0] - 0.5) < 1e-3, train


def test_qlora_llamafactory(tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "qlora", "extends: [qlora-sft]\nmethod: {quant: {compute_dtype: fp32}}")
    ftr("run", recipe, "-b", "llamafactory", env=run_env)
    assert_trained(tmp_path / "runs" / "qlora")


def test_prefix_tuning_trl(tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "prefix",
                         "extends: [lora-sft]\nmethod: {type: prefix, prompt: {num_virtual_tokens: 8}}")
    ftr("run", recipe, "-b", "trl", env=run_env)
    run_dir = tmp_path / "runs" / "prefix"
    assert_trained(run_dir)
    assert json.loads((run_dir / "adapter_config.json").read_text())["peft_type"] == "PREFIX_TUNING"


@pytest.mark.parametrize("backend", ["llamafactory", "trl"])
def test_oft_sft(backend, tiny_assets, run_env, tmp_path, lf_python):
    """OFT (imported from LLaMA-Factory's own OFT examples) trains an OFT adapter on both backends that have it."""
    recipe = tiny_recipe(tmp_path, tiny_assets, f"oft-{backend}",
                         "extends: [lora-sft]\nmethod: {type: oft, oft: {block_size: 16}}")
    ftr("run", recipe, "-b", backend, env=run_env)
    run_dir = tmp_path / "runs" / f"oft-{backend}"
    assert_trained(run_dir)
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "OFT" and config["oft_block_size"] == 16 and config["r"] == 0
    load_adapter(lf_python, run_dir, run_env)


def test_reuse_resume_force_and_merge(tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "safety", "extends: [lora-sft]")
    run_dir = tmp_path / "runs" / "safety"
    ftr("run", recipe, "-b", "llamafactory", env=run_env)
    refused = ftr("run", recipe, "-b", "llamafactory", env=run_env, check=False)
    assert refused.returncode == 1 and "FTR501" in refused.stderr
    resumed = ftr("run", recipe, "-b", "llamafactory", "--resume", env=run_env)
    assert "checkpoint-4" in resumed.stderr
    ftr("run", recipe, "-b", "llamafactory", "--force", env=run_env)
    assert list(tmp_path.glob("runs/safety.old-*")), "the previous run must be moved aside, not deleted"
    merged = tmp_path / "merged"
    ftr("merge", run_dir, "-o", merged, env=run_env)
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))
    from ft_recipes.recipe.templates import saved_chat_template

    assert saved_chat_template(str(merged)) == saved_chat_template(str(run_dir)) is not None


def test_interrupted_run_keeps_checkpoints(tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "killed", "extends: [lora-sft]")
    text = recipe.read_text().replace("max_steps: 4", "max_steps: 400").replace("save_steps: 2", "save_steps: 1")
    recipe.write_text(text)
    run_dir = tmp_path / "runs" / "killed"
    proc = subprocess.Popen([*FTR, "run", str(recipe), "-b", "llamafactory"], env=run_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(run_dir.glob("checkpoint-*")):
        time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    assert code != 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["interrupted"] is True and manifest["end"]
    assert list(run_dir.glob("checkpoint-*"))


def test_dry_run_starts_nothing(tiny_assets, run_env, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_assets, "dry", "extends: [lora-sft]")
    proc = ftr("run", recipe, "-b", "axolotl", "--dry-run", "--gpus", "0", env=run_env)
    command = proc.stdout.splitlines()[0]  # one line a shell runs, then # comments
    assert "axolotl.cli.train" in command and not command.startswith("#")
    assert not (tmp_path / "runs" / "dry").exists()


NATIVE = ROOT / "tests" / "data" / "native"


@pytest.mark.parametrize("target,python_fixture", [("llamafactory", "lf_python"), ("axolotl", "ax_python")])
def test_converted_native_corpus_accepted_by_target(target, python_fixture, request, tmp_path, backend_env):
    """Every native config of the other backend that `ftr convert` converts passes the target's validator; one it
    refuses names the key with FTR005 (ax_qlora's `type: alpaca`: Axolotl's fixed Alpaca prompt, not
    LLaMA-Factory's alpaca template)."""
    python = request.getfixturevalue(python_fixture)
    source = "lf_" if target == "axolotl" else "ax_"
    configs = []
    for native in sorted(NATIVE.glob(f"{source}*.yaml")):
        out = tmp_path / native.stem
        proc = ftr("convert", native, "--to", target, "-o", out, check=False)
        if proc.returncode == 1 and "FTR005" in proc.stderr:
            continue
        assert proc.returncode == 0, proc.stderr[-4000:]
        cfg_path = out / f"{target}.yaml"
        cfg = yaml.safe_load(cfg_path.read_text())
        # LLaMA-Factory's parser insists on the deepspeed package (not in the CPU env) when `deepspeed:` is set
        if target == "llamafactory":
            cfg.pop("deepspeed", None)
        cfg_path.write_text(yaml.safe_dump(cfg))
        configs.append(cfg_path)
    assert len(configs) >= 2, "most of the native corpus converts"
    for result in validate(python, target, configs, backend_env):
        assert result["ok"], result
        assert not result.get("dropped"), result


def test_axolotl_plugin_reports_findings(ax_python, tiny_assets, tmp_path, backend_env):
    """`plugins: [ft_recipes.integrations.axolotl.FtrPlugin]` runs the ftr rules inside Axolotl's config load."""
    recipe = tiny_recipe(tmp_path, tiny_assets, "plugin", "extends: [lora-sft]")
    out = tmp_path / "plugin-out"
    ftr("compile", recipe, "-b", "axolotl", "-o", out)
    cfg = yaml.safe_load((out / "axolotl.yaml").read_text())
    cfg.update({"plugins": ["ft_recipes.integrations.axolotl.FtrPlugin"], "learning_rate": 1.0e-6,
                "ftr_fail_on_error": True})
    (out / "axolotl.yaml").write_text(yaml.safe_dump(cfg))
    code = ("import sys; from axolotl.cli.config import load_cfg\n"
            "try:\n    load_cfg(sys.argv[1])\nexcept ValueError as exc:\n    print('STOPPED', exc)\n")
    env = {**backend_env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(ax_python), "-c", code, str(out / "axolotl.yaml")], capture_output=True, text=True,
                          env=env, timeout=600)
    output = proc.stdout + proc.stderr
    assert "FTR101" in output, output[-3000:]
    assert "STOPPED" in output, output[-3000:]
