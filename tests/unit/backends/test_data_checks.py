"""Issue 28: every row of a local dataset checked (streamed), as each backend reads it; leakage, duplicates,
identical pairs and truncation with known answers on generated files; `ftr data`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.backends.datacheck import lengths, scan
from ft_recipes.cli.main import main
from ft_recipes.lint import Options, lint_file
from ft_recipes.recipe.model import Dataset

RECIPE = {"ftr": 1, "model": {"base": "Qwen/Qwen2.5-0.5B-Instruct", "template": "qwen", "pad_token": "eos"},
          "stage": "sft", "method": {"type": "lora"}, "data": {"train": [{"path": "data.jsonl", "format": "alpaca"}],
                                                                  "val": {"split": 0.1}, "max_length": 1024},
          "train": {"epochs": 1, "lr": 1.0e-4, "micro_batch_size": 4, "grad_accum": 4}, "eval": {"every": "epoch"}}


@pytest.fixture(autouse=True)
def _here(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _write(path: Path, rows, tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail, encoding="utf-8")
    return path


def _recipe(tmp_path: Path, **data) -> Path:
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"].update(data)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def _alpaca(n: int) -> list[dict]:
    return [{"instruction": f"say {i}", "input": "", "output": f"answer {i}"} for i in range(n)]


def test_problems_at_the_end_of_a_large_file_are_found_with_their_lines(tmp_path):
    _write(tmp_path / "data.jsonl", _alpaca(5000) + [{"conversations": [{"from": "human", "value": "hi"}]},
                                                     {"instruction": "x", "output": 5}], '{"instruction": "cut')
    findings = [f for f in lint_file(_recipe(tmp_path), Options()) if f.code == "FTR204"]
    texts = " | ".join(f.message for f in findings)
    assert len(findings) == 3 and all(f.severity == "error" for f in findings)
    assert "data.jsonl:5001: no 'instruction' column (the row looks like format sharegpt)" in texts
    assert "data.jsonl:5002: 'output' is a number, not a string" in texts
    assert "data.jsonl:5003: not JSON" in texts and "truncated line" in texts


@pytest.mark.parametrize("value", [5, ["a"], {"a": 1}, None])
def test_alpaca_fields_of_the_wrong_type_are_errors_and_not_compiled(tmp_path, value):
    _write(tmp_path / "data.jsonl", _alpaca(3) + [{"instruction": "q", "output": value}])
    result = CliRunner().invoke(main, ["compile", str(_recipe(tmp_path)), "-b", "axolotl", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "FTR204" in result.output and "not a string" in result.output
    assert not (tmp_path / "out" / "data").exists()


def test_null_input_is_read_as_empty(tmp_path):
    _write(tmp_path / "data.jsonl", [{"instruction": "q", "input": None, "output": "a"}])
    assert [f.code for f in lint_file(_recipe(tmp_path), Options()) if f.code.startswith("FTR2")] == []


def _sharegpt(user: str, assistant: str, n: int = 3) -> list[dict]:
    return [{"conversations": [{"from": user, "value": f"q{i}"}, {"from": assistant, "value": f"a{i}"}]}
            for i in range(n)]


def test_compile_for_llamafactory_writes_the_role_tags_the_file_uses(tmp_path):
    _write(tmp_path / "data.jsonl", _sharegpt("user", "assistant"))
    recipe = _recipe(tmp_path, train=[{"path": "data.jsonl", "format": "sharegpt"}])
    assert [f.code for f in lint_file(recipe, Options()) if f.code == "FTR207"] == []
    result = CliRunner().invoke(main, ["compile", str(recipe), "-b", "llamafactory", "-o", str(tmp_path / "lf")])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads((tmp_path / "lf" / "dataset_info.json").read_text()).values()
    assert entry["tags"]["user_tag"] == "user" and entry["tags"]["assistant_tag"] == "assistant"


def test_default_tags_keep_human_gpt(tmp_path):
    _write(tmp_path / "data.jsonl", _sharegpt("human", "gpt"))
    recipe = _recipe(tmp_path, train=[{"path": "data.jsonl", "format": "sharegpt"}])
    CliRunner().invoke(main, ["compile", str(recipe), "-b", "llamafactory", "-o", str(tmp_path / "lf")])
    (entry,) = json.loads((tmp_path / "lf" / "dataset_info.json").read_text()).values()
    assert entry["tags"]["user_tag"] == "human" and entry["tags"]["assistant_tag"] == "gpt"


def test_a_native_llamafactory_config_with_default_tags_skips_user_assistant_rows(tmp_path):
    _write(tmp_path / "chat.jsonl", _sharegpt("user", "assistant"))
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"chat": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"messages": "conversations"}}}))
    config = tmp_path / "llamafactory.yaml"
    config.write_text("model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct\nstage: sft\ndo_train: true\n"
                      "finetuning_type: lora\ndataset: chat\ndataset_dir: .\ntemplate: qwen\noutput_dir: out\n"
                      "cutoff_len: 1024\nval_size: 0.1\neval_strategy: epoch\n", encoding="utf-8")
    findings = [f for f in lint_file(config, Options()) if f.code == "FTR207"]
    assert [f.severity for f in findings] == ["error"]
    assert "skips 3 of 3 rows" in findings[0].message and '"user_tag": "user"' in findings[0].hint


def _ds(path: Path, fmt: str = "alpaca") -> Dataset:
    return Dataset(format=fmt, path=path)


def test_duplicates_leakage_and_identical_pairs_have_known_counts(tmp_path):
    rows = _alpaca(100)
    train = _write(tmp_path / "train.jsonl", rows + [{**rows[i], "output": rows[i]["output"].upper() + "  "}
                                                     for i in range(7)])
    assert scan(_ds(train)).duplicates.count == 7
    val = _write(tmp_path / "val.jsonl", rows[:5] + [{"instruction": "new", "output": "row"}])
    from ft_recipes.backends.datacheck import leaks
    assert leaks([scan(_ds(train))], scan(_ds(val))).count == 5
    pairs = _write(tmp_path / "pairs.jsonl", [{"instruction": f"q{i}", "chosen": "same" if i < 4 else "long answer",
                                               "rejected": "Same" if i < 4 else "no"} for i in range(10)])
    scanned = scan(_ds(pairs, "preference"))
    assert (scanned.identical.count, scanned.pairs, scanned.chosen_longer) == (4, 10, 6)


def test_truncation_counts_rows_over_max_length_and_prompts_that_fill_it(tmp_path):
    rows = [{"instruction": "w" * 400, "output": "ok"},          # ~101 estimated tokens, prompt 100
            {"instruction": "q", "output": "w" * 500},           # over, answer kept
            {"instruction": "q", "output": "short"}]
    path = _write(tmp_path / "data.jsonl", rows)
    counted = lengths(_ds(path), scan(_ds(path)), 100)
    assert not counted.exact
    assert counted.over.count == 2 and [line for line, _ in counted.no_answer.examples] == [1]


def test_ftr_data_reports_each_dataset_and_exits_as_lint(tmp_path):
    _write(tmp_path / "data.jsonl", _alpaca(10) + [_alpaca(1)[0]], '{"broken')
    result = CliRunner().invoke(main, ["data", str(_recipe(tmp_path)), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    (ds,) = report["datasets"]
    assert (ds["rows"], ds["readable_rows"], ds["duplicates"]) == (12, 11, 1)
    assert ds["problems"]["not_json"]["lines"] == [12]
    assert {f["code"] for f in report["findings"]} == {"FTR204", "FTR209"}
    text = CliRunner().invoke(main, ["data", str(_recipe(tmp_path)), "-b", "llamafactory"])
    assert "not_json: 1 (lines 12)" in text.output and "llamafactory: reads" in text.output


def test_a_line_longer_than_any_row_is_reported_without_being_held(tmp_path, monkeypatch):
    """A sparse or binary "dataset" (one endless line) is read through in bounded pieces, not into memory."""
    import tracemalloc

    from ft_recipes.backends import datacheck

    monkeypatch.setattr(datacheck, "MAX_LINE", 1 << 20)
    path = tmp_path / "sparse.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"instruction": "a", "output": "b"}\n')
        handle.write(b"\0" * (16 << 20) + b"\n")  # 16 MiB without a newline: no row
        handle.write(b'{"instruction": "c", "output": "d"}\n')
    scan = datacheck.FileScan(path)
    tracemalloc.start()
    rows = list(datacheck.rows_of(path, scan))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [number for number, _ in rows] == [1, 3]
    assert scan.issue("not_json").count == 1 and "more than 1 MiB" in scan.issue("not_json").examples[0][1]
    assert peak < 8 << 20  # the 16 MiB line was never held whole


def test_ftr_data_counts_the_rows_llamafactory_reads_with_the_tags_ftr_writes(tmp_path):
    # a recipe: ftr writes LLaMA-Factory the spelling most rows use, so only the other row is skipped
    _write(tmp_path / "data.jsonl", _sharegpt("user", "assistant", 4) + _sharegpt("human", "gpt", 1))
    recipe = _recipe(tmp_path, train=[{"path": "data.jsonl", "format": "sharegpt"}])
    report = json.loads(CliRunner().invoke(main, ["data", str(recipe), "--format", "json", "--no-eos"]).output)
    assert report["datasets"][0]["backends"]["llamafactory"] == {"rows": 4, "skipped": {"tags": 1}}
    # a native config reads its declared (default) tags: the user/assistant rows are skipped
    (tmp_path / "dataset_info.json").write_text(json.dumps({"chat": {"file_name": "data.jsonl",
                                                                     "formatting": "sharegpt"}}))
    config = tmp_path / "llamafactory.yaml"
    config.write_text("model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct\nstage: sft\ndo_train: true\n"
                      "finetuning_type: lora\ndataset: chat\ndataset_dir: .\ntemplate: qwen\noutput_dir: out\n",
                      encoding="utf-8")
    report = json.loads(CliRunner().invoke(main, ["data", str(config), "--format", "json", "--no-eos"]).output)
    assert report["datasets"][0]["backends"]["llamafactory"] == {"rows": 1, "skipped": {"tags": 4}}


def test_rows_without_an_assistant_turn_stop_a_trl_run(tmp_path):
    rows = _sharegpt("human", "gpt", 3) + [{"conversations": [{"from": "human", "value": "q"}]},
                                            {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt",
                                                                                                 "value": ""}]},
                                            {"conversations": [{"from": "human", "value": "q"}, {"from": "bot",
                                                                                                 "value": "a"}]}]
    _write(tmp_path / "data.jsonl", rows)
    recipe = _recipe(tmp_path, train=[{"path": "data.jsonl", "format": "sharegpt"}])
    (finding,) = [f for f in lint_file(recipe, Options()) if f.code == "FTR207" and "trl" in f.message]
    assert finding.severity == "error" and "2 row(s)" in finding.message and "lines 4, 6" in finding.hint
    # the row's own assistant name counts; trained prompts (completion of the whole text) fail no run
    mapped = _recipe(tmp_path, train=[{"path": "data.jsonl", "format": "sharegpt", "columns": {"assistant": "bot"}}])
    assert "lines 4)" in next(f.hint for f in lint_file(mapped, Options()) if f.code == "FTR207" and "trl" in f.message)
    trained = _recipe(tmp_path, train=[{"path": "data.jsonl", "format": "sharegpt"}], train_on_prompt=True)
    assert [f for f in lint_file(trained, Options()) if f.code == "FTR207" and "trl" in f.message] == []


def test_tokens_kept_and_trained_after_the_cut_have_known_counts(tmp_path):
    rows = [{"instruction": "w" * 400, "output": "ok"},  # prompt 101 tokens (estimate), answer 1: no room
            {"instruction": "q", "output": "w" * 500},   # prompt 1, answer 125: cut to 99
            {"instruction": "q", "output": "short"}]     # prompt 1, answer 2
    path = _write(tmp_path / "data.jsonl", rows)
    counted = lengths(_ds(path), scan(_ds(path)), 100)
    assert [line for line, _ in counted.answer_cut.examples] == [2] and counted.answer_cut.first[1] == "99 of 125"
    assert (counted.kept, counted.trainable) == (100 + 100 + 3, 0 + 99 + 2)
    assert (lambda c: (c.kept, c.trainable))(lengths(_ds(path), scan(_ds(path)), 100, drop_over=True)) == (3, 2)
    assert lengths(_ds(path), scan(_ds(path)), 100, train_on_prompt=True).trainable == 203


def test_ftr_data_gives_steps_per_epoch_for_the_batch_settings(tmp_path):
    _write(tmp_path / "data.jsonl", _alpaca(100))
    report = json.loads(CliRunner().invoke(main, ["data", str(_recipe(tmp_path)), "--format", "json",
                                                  "--no-eos"]).output)
    training = report["training"]
    # 100 rows, 10% held out (val.split 0.1): 90 rows at 4 x 4 x 1 GPU = 16 a step
    assert (training["rows"], training["effective_batch"], training["steps_per_epoch"]) == (90, 16, 6)
    tokens = report["datasets"][0]["tokens"]
    assert sum(tokens["histogram"]["counts"]) == 100 and tokens["histogram"]["over_max_length"] == 0
    packed = json.loads(CliRunner().invoke(main, ["data", str(_recipe(tmp_path, packing=True, max_length=64)),
                                                  "--format", "json", "--no-eos"]).output)["training"]
    assert packed["packed"] and packed["steps_per_epoch"] == -(-(-(-packed["tokens"] // 64)) // 16)
    held = json.loads(CliRunner().invoke(main, ["data", str(_recipe(tmp_path, val={"split": 20})), "--format",
                                                "json", "--no-eos"]).output)["training"]
    assert held["rows"] == 80  # a row count held out


def _training(tmp_path: Path, rows: list[dict], **data) -> dict:
    _write(tmp_path / "data.jsonl", rows)
    recipe = yaml.safe_load(_recipe(tmp_path, **data).read_text())
    recipe["train"].update(micro_batch_size=2, grad_accum=2)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return json.loads(CliRunner().invoke(main, ["data", "recipe.yaml", "--format", "json", "--no-eos"]).output)[
        "training"]


def test_steps_per_epoch_hold_out_val_split_as_the_backends_trainers_do(tmp_path):
    """datasets' train_test_split (all three backends) holds out ceil(0.2 x 26) = 6 rows: 20 train in 5 steps of
    4, as LLaMA-Factory, Axolotl and trl each ran (tests/backends/test_data_steps.py); rounding gave 21 and 6."""
    training = _training(tmp_path, _alpaca(26), val={"split": 0.2})
    assert (training["rows"], training["steps_per_epoch"]) == (20, 5)
    assert training["backend_steps"] == {"llamafactory": 5, "axolotl": 5, "trl": 5}
    # in its float arithmetic 0.07 x 100 is just over 7: 8 rows held out
    assert _training(tmp_path, _alpaca(100), val={"split": 0.07})["rows"] == 92


def test_each_backend_splits_and_counts_steps_of_the_rows_it_reads(tmp_path):
    # LLaMA-Factory skips the human/gpt row: of its 6 rows 2 are held out, 4 make 1 step; the 7 readable rows, 2
    training = _training(tmp_path, _sharegpt("user", "assistant", 6) + _sharegpt("human", "gpt", 1),
                         train=[{"path": "data.jsonl", "format": "sharegpt"}], val={"split": 0.2})
    assert (training["rows"], training["steps_per_epoch"], training["backend_steps"]["llamafactory"]) == (5, 2, 1)


def test_histogram_png_needs_the_report_extra(tmp_path):
    _write(tmp_path / "data.jsonl", _alpaca(10))
    result = CliRunner().invoke(main, ["data", str(_recipe(tmp_path)), "--no-eos", "--histogram",
                                       str(tmp_path / "h.png")])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result.exit_code == 2 and "pip install 'ft-recipes[report]'" in result.output
    else:
        assert result.exit_code == 0 and (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_a_large_file_is_read_once_across_processes(tmp_path, monkeypatch):
    """The scan of a file of 1 MB or more is kept on disk (private), used while the file is unchanged."""
    import os

    from ft_recipes.backends import datacheck

    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "cache" / "envs"))
    path = _write(tmp_path / "big.jsonl", _alpaca(20000))
    assert path.stat().st_size >= datacheck.CACHE_FROM
    reads = []
    real = datacheck._scan
    monkeypatch.setattr(datacheck, "_scan", lambda ds, progress: reads.append(ds) or real(ds, progress))
    first = datacheck._cached_scan(_ds(path), path.stat(), None)  # _cached_scan: what a new process does
    again = datacheck._cached_scan(_ds(path), path.stat(), None)
    assert len(reads) == 1 and vars(again) == vars(first) and again.rows == 20000
    [entry] = (tmp_path / "cache" / "scans").glob("*.pickle")
    assert entry.stat().st_mode & 0o777 == 0o600
    with path.open("a") as handle:  # changed: read again
        handle.write(json.dumps({"instruction": "more", "output": "rows"}) + "\n")
    assert datacheck._cached_scan(_ds(path), path.stat(), None).rows == 20001 and len(reads) == 2
    os.chmod(entry, 0o644)  # an entry others could have written is not trusted
    assert datacheck._read_cache(entry) is None


def test_leakage_through_a_scan_another_process_kept(tmp_path):
    """Row keys are the process's string hashes: a training scan kept on disk by one `ftr lint` is not compared
    with another process's validation keys; the leak is found in both runs."""
    import os
    import subprocess
    import sys

    rows = _alpaca(20000)
    _write(tmp_path / "train.jsonl", rows)
    _write(tmp_path / "val.jsonl", rows[:30] + [{"instruction": "new", "output": "row"}])
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"] = {"train": [{"path": "train.jsonl", "format": "alpaca"}], "max_length": 1024,
                      "val": {"datasets": [{"path": "val.jsonl", "format": "alpaca"}]}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env["FTR_ENV_DIR"] = str(tmp_path / "cache" / "envs")
    outs = [subprocess.run([sys.executable, "-m", "ft_recipes", "lint", "r.yaml", "--select", "FTR208"],
                           capture_output=True, text=True, env=env, cwd=tmp_path) for _ in range(2)]
    outs = [p.stdout + p.stderr for p in outs]
    assert list((tmp_path / "cache" / "scans").glob("*.pickle")), outs  # the second run had the first's scan
    assert all("30 of 31 validation rows" in out for out in outs), outs
    assert outs[0] == outs[1]


def test_ftr_data_checks_each_training_stage_of_a_pipeline():
    from ft_recipes.core.paths import data_dir

    example = data_dir("recipes") / "examples" / "sft-dpo-merge.yaml"
    result = CliRunner().invoke(main, ["data", str(example), "--no-eos", "--format", "json"])
    assert result.exit_code == 0, result.output
    stages = json.loads(result.output)["stages"]
    assert [s["stage"] for s in stages] == ["sft", "dpo"]  # the merge step reads no data
    assert [Path(s["datasets"][0]["path"]).name for s in stages] == ["alpaca.jsonl", "preference.jsonl"]
    assert stages[1]["datasets"][0]["pairs"] == 20
