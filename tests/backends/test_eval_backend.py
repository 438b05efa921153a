"""`ftr eval --base` on a real run: the tiny model trained briefly with LoRA on trl, then lm-eval (its own pinned
environment) on a local multiple-choice task over local JSONL and the recipe's held-out rows, offline on CPU.
The tuned model must differ from the base one: equal scores and perplexities mean the adapter was not applied."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from .test_ftr_backends import ftr, run_env, tiny_recipe  # noqa: F401 (run_env: a fixture)


def mc_task(folder: Path, preference: Path) -> Path:
    """A local multiple-choice task: the training prompt, the trained answer and the rejected one."""
    folder.mkdir(parents=True)
    rows = [json.loads(line) for line in preference.read_text().splitlines()]
    (folder / "mc.jsonl").write_text("".join(json.dumps({"question": r["instruction"], "label": 0,
                                                         "choices": [r["chosen"], r["rejected"]]}) + "\n"
                                             for r in rows))
    path = folder / "tiny_mc.yaml"
    path.write_text("task: tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: mc.jsonl\n"
                    "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{question}}\\n\"\n"
                    "doc_to_choice: \"{{choices}}\"\ndoc_to_target: label\nmetric_list:\n"
                    "  - {metric: acc, aggregation: mean, higher_is_better: true}\n"
                    "  - {metric: acc_norm, aggregation: mean, higher_is_better: true}\n")
    return path


def ppl_task(folder: Path, alpaca: Path) -> Path:
    """A local perplexity task (lm-eval's loglikelihood_rolling) on the trained answers: it moves with any
    training, where a 10-row accuracy may not."""
    rows = [json.loads(line) for line in alpaca.read_text().splitlines()]
    (folder / "ppl.jsonl").write_text("".join(json.dumps({"text": r["output"]}) + "\n" for r in rows))
    path = folder / "tiny_ppl.yaml"
    path.write_text("task: tiny_ppl\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: ppl.jsonl\n"
                    "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: \"\"\n"
                    "doc_to_target: \"{{text}}\"\nmetric_list:\n  - metric: word_perplexity\n"
                    "  - metric: byte_perplexity\n  - metric: bits_per_byte\n")
    return path


def local_tasks(folder: Path, data: Path) -> Path:
    """A folder with both local tasks (tiny_mc, tiny_ppl): `--tasks FOLDER` runs them all."""
    mc_task(folder, data / "preference.jsonl")
    ppl_task(folder, data / "alpaca.jsonl")
    return folder


def run_eval(target: Path, env: dict, *args) -> dict:
    """`ftr eval TARGET ARGS --format json` (10 rows a task): its record, with the seconds the command took."""
    started = time.perf_counter()
    proc = ftr("eval", target, "--limit", 10, "--format", "json", *args, env=env, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    return record


def assert_base_and_tuned_differ(record: dict) -> dict:
    """Both models scored on both tasks, and the tuned perplexity is not the base one (the adapter applied)."""
    base, tuned = record["results"]["base"]["tasks"], record["results"]["tuned"]["tasks"]
    for tasks in (base, tuned):
        assert 0 <= tasks["tiny_mc"]["acc"] <= 1 and tasks["tiny_ppl"]["word_perplexity"] > 1, tasks
    assert tuned["tiny_ppl"]["word_perplexity"] != base["tiny_ppl"]["word_perplexity"], (base, tuned)
    return {"base": base, "tuned": tuned, "seconds": record["wall_seconds"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_assets, run_env):
    """A LoRA SFT run of the tiny model on trl, long enough to move its answers (20 steps at 2e-3)."""
    tmp = tmp_path_factory.mktemp("eval")
    recipe = tiny_recipe(tmp, tiny_assets, "lora-eval", "extends: [lora-sft]")
    recipe.write_text(recipe.read_text().replace("max_steps: 4", "lr: 2.0e-3, max_steps: 20"))
    proc = ftr("run", recipe, "-b", "trl", env=run_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, tmp / "runs" / "lora-eval"


def test_eval_base_against_tuned_on_a_local_task_and_the_held_out_rows(trained, tiny_assets, run_env, eval_python):
    tmp, run_dir = trained
    task = mc_task(tmp / "tasks", tiny_assets.data / "preference.jsonl")
    env = {**run_env, "FTR_LM_EVAL_PYTHON": str(eval_python)}
    proc = ftr("eval", run_dir, "--base", "--tasks", task, "--limit", 10, "--max-new-tokens", 16, env=env,
               check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ftr eval: tuned: lm-eval on tiny_mc" in proc.stderr  # the progress lines
    record = json.loads((run_dir / "eval.json").read_text())
    base, tuned = record["results"]["base"], record["results"]["tuned"]
    for model in (base, tuned):
        assert 0 <= model["tasks"]["tiny_mc"]["acc"] <= 1 and 0 <= model["tasks"]["tiny_mc"]["acc_norm"] <= 1
        held = model["held_out"]
        assert held["rows"] == 10 and held["generated"] == 10 and held["samples"]
        assert held["perplexity"] > 1 and 0 <= held["bleu"] <= 100 and 0 <= held["rouge_l"] <= 1
    assert tuned["held_out"]["perplexity"] < 0.9 * base["held_out"]["perplexity"], (base, tuned)
    assert tuned["held_out"]["rouge_l"] > base["held_out"]["rouge_l"]
    assert record["target"]["tuned"]["peft"] == str(run_dir) and record["target"]["kind"] == "adapter"
    assert record["settings"]["lm_eval_version"] == "0.4.13" and record["settings"]["task_hashes"]["tiny_mc"]
    assert record["settings"]["template_sha256"]  # the run's saved chat template rendered the prompts
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["eval"]["results"]["tuned"]["held_out"]["perplexity"] == tuned["held_out"]["perplexity"]
    print(json.dumps({label: {"tasks": m["tasks"], **{k: v for k, v in m["held_out"].items() if k != "samples"}}
                      for label, m in record["results"].items()}), f"{record['seconds']} s", file=sys.stderr)
