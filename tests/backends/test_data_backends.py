"""Issue 28: the rows ftr's data check says each backend reads (`ftr data --format json`, FTR204/FTR207) against
the backend's own loader on the same rows: LLaMA-Factory's get_dataset, Axolotl's load_datasets and the trl
backend's train.py data path with trl's SFT preprocessing (the `ftr tokens` helpers, one process per backend for
every case). Every turn of row N carries the marker ``mkNx``, so the rows a backend kept are read back from its
tokens. And FTR212 through each backend's own preprocessing where only one backend leaves the end of turn
untrained."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ft_recipes.backends.datacheck import scan
from ft_recipes.cli.commands.data import load_any
from ft_recipes.lint.rules.data import local_datasets

ROOT = Path(__file__).resolve().parents[2]
HELPERS = ROOT / "ft_recipes" / "backends"
MARK = re.compile(r"mk(\d+)x")
NO_SAMPLES = "Cannot find valid samples"  # LLaMA-Factory, when it skipped every row


def sharegpt(*turns) -> dict:
    return {"conversations": [{"from": role, "value": text} for role, text in turns]}


def messages(*turns) -> dict:
    return {"messages": [{"role": role, "content": text} for role, text in turns]}


Q, A = "q", "a"
# case -> (dataset_info.json entry beside file_name, rows); a native LLaMA-Factory config each
LF_CASES = {
    "user_assistant_default_tags": ({"formatting": "sharegpt"}, [sharegpt(("user", Q), ("assistant", A))] * 3),
    "human_gpt": ({"formatting": "sharegpt"}, [sharegpt(("human", Q), ("gpt", A)),
                                               sharegpt(("system", "s"), ("human", Q), ("gpt", A)),
                                               sharegpt(("human", Q), ("gpt", A), ("human", Q), ("gpt", A))]),
    "messages_declared_tags": (
        {"formatting": "sharegpt", "columns": {"messages": "messages"},
         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                  "system_tag": "system"}},
        [messages(("user", Q), ("assistant", A)), messages(("system", "s"), ("user", Q), ("assistant", A)),
         messages(("human", Q), ("gpt", A))]),
    "turn_order": ({"formatting": "sharegpt"}, [sharegpt(("human", Q), ("gpt", A)),
                                                sharegpt(("human", Q), ("human", Q), ("gpt", A)),   # two users
                                                sharegpt(("gpt", A), ("human", Q)),                 # reply first
                                                sharegpt(("human", Q), ("gpt", A), ("human", Q))]),  # ends on user
    "system_turns": ({"formatting": "sharegpt"}, [sharegpt(("human", Q), ("system", "s"), ("gpt", A)),
                                                  sharegpt(("system", "s"), ("human", Q), ("gpt", A)),
                                                  sharegpt(("human", Q), ("gpt", A), ("system", "s"), ("human", Q),
                                                           ("gpt", A))]),
    "empty_turns": ({"formatting": "sharegpt"}, [sharegpt(("human", Q), ("gpt", A)),
                                                 sharegpt(("human", ""), ("gpt", A)),
                                                 sharegpt(("human", Q), ("gpt", "")),
                                                 sharegpt(("human", Q), ("gpt", "  "))]),
    "turn_without_role": ({"formatting": "sharegpt"}, [sharegpt(("human", Q), ("gpt", A)),
                                                       {"conversations": [{"from": "human", "value": Q},
                                                                          {"value": A}]}]),
    "null_turn": ({"formatting": "sharegpt"}, [sharegpt(("human", Q), ("gpt", A)),
                                               sharegpt(("human", Q), ("gpt", None))]),
    "number_turn": ({"formatting": "sharegpt"}, [sharegpt(("human", Q), ("gpt", A)),
                                                 sharegpt(("human", Q), ("gpt", 5))]),
}
# ftr reports these rows as FTR204 errors (not rows of the format); the backend fails on the whole file
LOAD_FAILS = {"null_turn": "Expected a string, got None", "number_turn": "DatasetGenerationError"}

# one file for a recipe compiled for every backend: what each one keeps, drops or fails on
MIXED = [sharegpt(("human", Q), ("gpt", A)),                              # 1 read by all
         sharegpt(("user", Q), ("assistant", A)),                         # 2 LF: the minority spelling
         sharegpt(("human", Q), ("human", Q), ("gpt", A)),                # 3 LF: order
         sharegpt(("gpt", A), ("human", Q)),                              # 4 LF: order
         sharegpt(("human", Q), ("system", "s"), ("gpt", A)),             # 5 LF: order
         sharegpt(("system", "s"), ("human", Q), ("gpt", A)),             # 6 read by all
         sharegpt(("human", Q)),                                          # 7 LF: count; trl: no assistant turn
         sharegpt(("human", Q), ("gpt", "")),                             # 8 empty answer, read by all
         sharegpt(("human", Q), ("bot", A)),                              # 9 LF: order; trl: no assistant turn
         sharegpt(("gpt", A))]                                            # 10 LF: order


def marked(rows: list[dict]) -> list[dict]:
    """Each non-empty string turn of row N with `` mkNx`` appended."""
    out = []
    for number, row in enumerate(rows, 1):
        row = json.loads(json.dumps(row))
        for turn in next(iter(row.values())):
            for key in ("value", "content"):
                if isinstance(turn.get(key), str) and turn[key].strip():
                    turn[key] += f" mk{number}x"
        out.append(row)
    return out


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in marked(rows)), encoding="utf-8")
    return path


def ftr(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ft_recipes", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)


def ftr_data(path: Path, env: dict, *args: str) -> dict:
    proc = ftr("data", str(path), "--format", "json", *args, env=env)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return json.loads(proc.stdout)


def ftr_drop_lines(path: Path, backend: str, every: bool = True) -> set[int]:
    """The lines ftr's scan says ``backend`` skips (each reason names its first 3; ``every``: the case keeps within
    that, so these are all of them)."""
    ((ds, _),) = local_datasets(load_any(str(path)).recipe)
    drops = scan(ds).drops.get(backend, {})
    assert not every or all(issue.count == len(issue.examples) for issue in drops.values()), drops
    return {line for issue in drops.values() for line, _ in issue.examples}


def backend_rows(python: Path, helper: str, configs: list[Path], env: dict, cwd: Path) -> list[list[int] | str]:
    """Per config: the rows (their markers) the backend's own loader kept, or its error."""
    proc = subprocess.run([str(python), str(HELPERS / helper / "tokens_helper.py"), *map(str, configs), "1000"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=cwd)
    out: dict[int, list] = {job: [] for job in range(len(configs))}
    for line in proc.stdout.splitlines():
        if line.startswith("FTR-TOKENS "):
            row = json.loads(line[len("FTR-TOKENS "):])
            if "error" in row:
                out[row["job"]] = row["error"]
                continue
            text = "".join(row["tokens"]).replace("\u0120", " ")
            out[row["job"]].append(min(int(m) for m in MARK.findall(text)))
    assert any(out.values()), proc.stderr[-3000:]
    return [out[job] for job in range(len(configs))]


@pytest.fixture(scope="module")
def env(backend_env, lf_python, ax_python, trl_python, tmp_path_factory):
    return {**backend_env, "FTR_LLAMAFACTORY_PYTHON": str(lf_python), "FTR_AXOLOTL_PYTHON": str(ax_python),
            "FTR_TRL_PYTHON": str(trl_python), "FTR_ENV_DIR": str(tmp_path_factory.mktemp("cache") / "envs"),
            "DISABLE_VERSION_CHECK": "1"}


def recipe_text(model: Path, data: Path, template: str = "chatml", preset: str = "lora-sft") -> str:
    return f"""ftr: 1
extends: [{preset}]
model: {{base: {model}, template: {template}, pad_token: "<|endoftext|>"}}
data:
  train: [{{path: {data}, format: sharegpt}}]
  val: {{split: 0.2}}
  max_length: 128
hardware: {{gpus: 0}}
lint: {{ignore: [FTR1, FTR206]}}
"""


@pytest.fixture(scope="module")
def native(tiny_assets, tmp_path_factory) -> Path:
    """One folder: a .jsonl file, a dataset_info.json entry and a native LLaMA-Factory config per case."""
    folder = tmp_path_factory.mktemp("native")
    info = {}
    for case, (entry, rows) in LF_CASES.items():
        write_rows(folder / f"{case}.jsonl", rows)
        info[case] = {"file_name": f"{case}.jsonl", **entry}
        (folder / f"{case}.yaml").write_text(
            f"model_name_or_path: {tiny_assets.model}\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
            f"dataset: {case}\ndataset_dir: {folder}\ntemplate: chatml\noutput_dir: {folder / 'out'}\n"
            f"cutoff_len: 128\n", encoding="utf-8")
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def mixed(tiny_assets, tmp_path_factory, env) -> dict:
    """The MIXED rows in a recipe, compiled for each backend; the trl config also once per row (its own file)."""
    folder = tmp_path_factory.mktemp("mixed")
    data = write_rows(folder / "mixed.jsonl", MIXED)
    recipe = folder / "recipe.yaml"
    recipe.write_text(recipe_text(tiny_assets.model, data), encoding="utf-8")
    configs = {}
    for backend, main in (("llamafactory", "llamafactory.yaml"), ("axolotl", "axolotl.yaml"), ("trl", "trl.json")):
        proc = ftr("compile", str(recipe), "-b", backend, "-o", str(folder / backend), env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        configs[backend] = folder / backend / main
    trl = json.loads(configs["trl"].read_text())
    lines = data.read_text().splitlines()
    for number, line in enumerate(lines, 1):  # trl fails a whole file: each row alone tells which rows fail it
        (folder / f"row{number}.jsonl").write_text(line + "\n")
        train = [{**trl["train"][0], "path": str(folder / f"row{number}.jsonl")}]
        single = {**trl, "val_split": 0.0, "val": [], "train": train}
        (folder / "trl" / f"row{number}.json").write_text(json.dumps(single))  # beside its train.py
    return {"recipe": recipe, "data": data, "configs": configs, "rows": len(lines),
            "trl_rows": [folder / "trl" / f"row{n}.json" for n in range(1, len(lines) + 1)]}


@pytest.fixture(scope="module")
def lf_kept(native, mixed, lf_python, env) -> dict:
    """LLaMA-Factory's own loader on every native case and on the compiled recipe, in one process."""
    configs = [native / f"{case}.yaml" for case in LF_CASES] + [mixed["configs"]["llamafactory"]]
    kept = backend_rows(lf_python, "llamafactory", configs, env, native)
    return dict(zip([*LF_CASES, "mixed"], kept))


@pytest.mark.parametrize("case", list(LF_CASES))
def test_llamafactory_reads_the_rows_ftr_says_it_reads(case, native, lf_kept, env):
    path = native / f"{case}.yaml"
    report = ftr_data(path, env, "--no-eos", "-b", "llamafactory")
    (ds,) = report["datasets"]
    reads, kept = ds["backends"]["llamafactory"]["rows"], lf_kept[case]
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    if case in LOAD_FAILS:  # ftr: an error on the row (FTR204); LLaMA-Factory: fails on the file
        assert [f["code"] for f in errors] == ["FTR204"] and isinstance(kept, str) and LOAD_FAILS[case] in kept
        return
    if reads == 0:  # every row skipped: LLaMA-Factory stops, ftr reports an error
        assert isinstance(kept, str) and NO_SAMPLES in kept, kept
        assert [f["code"] for f in errors] == ["FTR207"], report["findings"]
        return
    assert isinstance(kept, list), kept
    rows = range(1, ds["rows"] + 1)
    unread = set(ds["problems"].get("columns", {}).get("lines", []))  # not rows of the format: FTR204
    assert sorted(kept) == sorted(set(rows) - ftr_drop_lines(path, "llamafactory") - unread)
    assert reads == len(kept)


def test_a_recipe_is_read_by_each_backend_as_ftr_says(mixed, lf_kept, ax_python, trl_python, env):
    report = ftr_data(mixed["recipe"], env, "--no-eos")
    (ds,) = report["datasets"]
    reads = {name: ds["backends"][name]["rows"] for name in ("llamafactory", "axolotl", "trl")}
    # LLaMA-Factory, with the tags ftr compiles (the spelling most rows use): rows 1, 6 and 8
    assert sorted(lf_kept["mixed"]) == [1, 6, 8] and reads["llamafactory"] == 3, (lf_kept["mixed"], ds)
    assert ftr_drop_lines(mixed["recipe"], "llamafactory", every=False) <= {2, 3, 4, 5, 7, 9, 10}
    # Axolotl reads every row (those with no reply train nothing)
    (ax_kept,) = backend_rows(ax_python, "axolotl", [mixed["configs"]["axolotl"]], env, mixed["data"].parent)
    assert sorted(ax_kept) == list(range(1, mixed["rows"] + 1)) and reads["axolotl"] == mixed["rows"]
    # trl stops on a row with no assistant turn: exactly the rows ftr's FTR207 names (each row alone)
    (flagged,) = [f for f in report["findings"] if f["code"] == "FTR207" and "stops the run" in f["message"]]
    assert flagged["message"].startswith("the trl backend stops the run"), flagged  # the backend's title
    assert flagged["severity"] == "error" and "(lines 7, 9)" in flagged["hint"], flagged
    alone = backend_rows(trl_python, "trl", mixed["trl_rows"], env, mixed["data"].parent)
    fails = [number for number, rows in enumerate(alone, 1) if isinstance(rows, str)]
    assert fails == [7, 9] and all("no assistant tokens" in alone[n - 1] for n in fails), alone
    assert all(rows == [number] for number, rows in enumerate(alone, 1) if number not in fails)


def test_an_end_of_turn_only_one_backend_leaves_untrained_is_reported_for_it_alone(tiny_assets, env, tmp_path):
    # the tiny ChatML model's tokenizer has no <|eot_id|> token: LLaMA-Factory adds the template's stop word to it
    # and Axolotl the EOS ftr sets (full fine-tuning: LoRA would need the embeddings trained); trl renders the
    # template as it is, "<|eot_id|>" in text pieces that are no end-of-turn token
    recipe = tmp_path / "llama3.yaml"
    recipe.write_text(recipe_text(tiny_assets.model, tiny_assets.data / "sharegpt.jsonl", "llama3", "full-sft"))
    report = ftr_data(recipe, env, "--eos-rows", "4")
    ends = report["end_of_turn"]
    assert ends["trl"]["untrained"] == ends["trl"]["turns"] == 4, ends
    for backend in ("llamafactory", "axolotl"):
        assert ends[backend]["turns"] == 4 and ends[backend]["untrained"] == 0, ends
    findings = [f["message"] for f in report["findings"] if f["code"] == "FTR212"]
    assert len(findings) == 1 and findings[0].startswith("trl does not train the end of turn"), findings
