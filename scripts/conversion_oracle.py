"""The conversion oracle on the real-world corpora: `ftr convert` judged by the backends' own parsers.

    python scripts/conversion_oracle.py [--list]

For every config a backend accepts (verdict "ok") in tests/data/realworld (framework examples) and
tests/data/realworld/users (user configs), `ftr convert FILE --to T -o OUT` runs from the file's run directory
(SOURCE.md), for T its own backend (round trip) and the other one (cross). Each backend's compare_helper.py
parses the sources and the converted files, all in one process per backend, each file from the same run
directory, so relative paths resolve where the backend runs.

- round trip: every training-relevant effective value of the source and of the result is equal;
- cross: every recipe field both backends express holds the same meaning on both sides (the source's parser
  agrees with the recipe's value as the source backend writes it, the target's parser as the target writes it).

A difference is excused when the conversion was refused with a finding (FTR code), when `convert` reported
the key as approximated (Backend.approximations and the importers' notes), or when it is in KNOWN (a short
table with a reason each). tests/backends/test_conversion_oracle.py asserts there is nothing else.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from realworld_report import locate, verdicts, working_dir  # noqa: E402 - a sibling script

BACKENDS = ("llamafactory", "axolotl")
DIRECTIONS = (("llamafactory", "llamafactory"), ("axolotl", "axolotl"), ("llamafactory", "axolotl"),
              ("axolotl", "llamafactory"))
CORPORA = ("examples", "users")
TITLES = {"llamafactory": "LF", "axolotl": "Axolotl"}

# Effective values that do not change what is trained: logging, reporting, run bookkeeping, and values the
# parser derives from the output directory or the process (compared through output_dir itself).
NOT_TRAINING = {
    "llamafactory": {"logging_steps", "logging_dir", "run_name", "report_to", "logging_strategy", "logging_first_step",
                     "logging_nan_inf_filter", "disable_tqdm", "hub_token", "push_to_hub", "hub_model_id",
                     "hub_strategy", "hub_private_repo", "local_rank", "world_size", "n_gpu", "_n_gpu",
                     "process_index", "distributed_state", "print_param_status", "include_num_input_tokens_seen",
                     "ddp_timeout", "dataloader_num_workers", "preprocessing_num_workers", "dataset_dir",
                     "dataset", "eval_dataset", "tokenized_path", "overwrite_cache", "plot_loss",
                     "dataloader_persistent_workers", "dataloader_prefetch_factor", "dataloader_pin_memory"},
    "axolotl": {"logging_steps", "wandb_project", "wandb_entity", "wandb_name", "wandb_run_id", "wandb_watch",
        "wandb_log_model",
                "use_wandb", "use_mlflow", "use_comet", "use_tensorboard", "use_trackio", "mlflow_experiment_name",
                "hub_model_id", "hub_strategy", "push_dataset_to_hub", "strict", "dataset_processes",
                "dataset_num_proc", "world_size", "local_rank", "device", "device_map", "ddp", "is_preprocess",
                "capabilities", "env_capabilities", "dataloader_num_workers", "dataloader_pin_memory",
                "dataloader_prefetch_factor", "dataset_prepared_path", "is_falcon_derived_model",
                "is_llama_derived_model", "is_mistral_derived_model", "is_qwen_derived_model", "tokenizer_config",
                "base_model_config", "torch_dtype"},
}

# What each backend's code reads an absent (None) value as, so that "absent" and "the default written out" compare
# equal. Axolotl's validate_config leaves them None; the values are from its code (0.19.0): save_total_limit
# (core/builders/base.py: `save_total_limit if save_total_limit else 4`), excess_length_strategy
# (utils/data/utils.py: `or "drop"`), max_grad_norm / weight_decay (passed to transformers only when set: its
# defaults), rl_beta / dpo_label_smoothing (trl's DPOConfig defaults), the flags read as truthy, chat_template
# (None: the tokenizer's own template), eval_batch_size (normalize_config: micro_batch_size).
DEFAULTS = {
    "axolotl": {"save_total_limit": 4, "excess_length_strategy": "drop", "max_grad_norm": 1.0, "weight_decay": 0.0,
                "rl_beta": 0.1, "dpo_label_smoothing": 0.0, "fp16": False, "trust_remote_code": False,
                "peft_use_dora": False, "peft_use_rslora": False, "lora_target_linear": False,
                "sample_packing": False, "gradient_checkpointing": False, "chat_template": "tokenizer_default"},
    "llamafactory": {},
}
# The 4-bit quantization settings Axolotl starts from before applying bnb_config_kwargs (loaders/model.py).
BNB_4BIT = {"bnb_4bit_use_double_quant": True, "bnb_4bit_quant_type": "nf4"}
# Axolotl's prompt strategies read these dataset keys' absence so (prompt_strategies/chat_template.py,
# prompt_strategies/completion.py).
DATASET_DEFAULTS = {"chat_template": {"field_messages": "messages", "roles_to_train": ["assistant"],
                                      "train_on_eos": "turn"},
                    "completion": {"field": "text"}}
# The DatasetAttr fields LLaMA-Factory's converter of each formatting reads (data/converter.py); the others are
# never used for that formatting.
LF_DATASET_FIELDS = {
    "alpaca": {"load_from", "dataset_name", "formatting", "ranking", "subset", "split", "folder", "num_samples",
               "prompt", "query", "response", "history", "system", "tools", "images", "videos", "audios",
               "chosen", "rejected", "kto_tag"},
    "sharegpt": {"load_from", "dataset_name", "formatting", "ranking", "subset", "split", "folder", "num_samples",
                 "messages", "system", "tools", "images", "videos", "audios", "chosen", "rejected", "kto_tag",
                 "role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                 "system_tag"},
}
# Evaluation settings, compared only when the source evaluates.
EVAL_KEYS = {"llamafactory": {"eval_strategy", "eval_steps", "per_device_eval_batch_size", "eval_on_each_dataset"},
             "axolotl": {"eval_strategy", "eval_steps", "evals_per_epoch", "eval_batch_size"}}
# Values LLaMA-Factory derives from cutoff_len (a reported approximation of cutoff_len covers them).
DERIVED = {"model_max_length": "cutoff_len", "generation_max_length": "cutoff_len"}

# Known remaining differences, each with its reason: (direction, corpus, effective key) -> reason. Kept small;
# the test fails on any difference not here, not refused and not reported as approximated.
KNOWN: dict[tuple[str, str], str] = {}


# --- the corpora -----------------------------------------------------------------------------------------------

@dataclass
class Case:
    source: str  # source backend
    target: str
    corpus: str
    path: str  # as verdicts.json names it
    run: Path  # where the backend runs the file (and ftr convert runs)
    relative: str  # the file, relative to run
    out: Path
    converted: bool = False
    reason: str = ""  # why the conversion was refused
    report: dict = field(default_factory=dict)
    source_eff: dict | None = None
    result_eff: dict | None = None
    differences: list[tuple[str, object, object]] = field(default_factory=list)  # unexplained
    excused: list[tuple[str, str]] = field(default_factory=list)  # (key, why)

    @property
    def direction(self) -> str:
        return f"{TITLES[self.source]} -> {TITLES[self.target]}" if self.source != self.target \
            else f"round trip {TITLES[self.source]}"

    @property
    def result(self) -> Path:
        from ft_recipes import backends

        return self.out / backends.get(self.target).main


def accepted(backend: str, corpus: str) -> list[tuple[str, dict]]:
    files = verdicts(corpus).get(backend, {}).get("files", {})
    return [(path, entry) for path, entry in sorted(files.items()) if entry["verdict"] == "ok"]


def cases(root: Path) -> list[Case]:
    out = []
    for source, target in DIRECTIONS:
        for corpus in CORPORA:
            for i, (path, entry) in enumerate(accepted(source, corpus)):
                run, relative = locate(source, path, corpus)
                out.append(Case(source, target, corpus, path, run, relative,
                                root / f"{source}-{target}" / corpus / str(i)))
    return out


# --- converting ------------------------------------------------------------------------------------------------

def convert(case: Case) -> None:
    from click.testing import CliRunner

    from ft_recipes.cli.main import main

    args = ["convert", case.relative, "--to", case.target, "-o", str(case.out), "--format", "json"]
    with working_dir(case.run):
        result = CliRunner().invoke(main, args)
    case.report = _report(result.stdout)
    case.converted = result.exit_code == 0 and case.result.is_file()
    if not case.converted:
        case.reason = _reason(result.stdout + result.stderr + (repr(result.exception) if result.exception else ""))


def _report(text: str) -> dict:
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        return {}


def _reason(text: str) -> str:
    """The first finding (FTR code and message) of a refused conversion; '' when it gave none."""
    for line in text.splitlines():
        match = re.search(r"(FTR\d{3})\b.*", line)
        if match:
            return re.sub(r"^\S+:\d+:\d+: ", "", match.group(0))[:200]
    for entry in _report(text).get("lines", []):
        if entry.get("status") == "refused":
            return entry.get("detail", "")[:200]
    return ""


# --- parsing ---------------------------------------------------------------------------------------------------

def parse_all(items: list[tuple[Path, Path]], backend: str, python: Path, env: dict | None) -> list:
    """Effective values of (run dir, config) items, in one process of the backend's environment."""
    from ft_recipes import backends

    helper = backends.get(backend).folder / "compare_helper.py"
    jobs = "".join(json.dumps({"cwd": str(cwd), "path": str(path)}) + "\n" for cwd, path in items)
    proc = subprocess.run([str(python), str(helper)], input=jobs, capture_output=True, text=True, env=env,
                          timeout=1800)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(items), proc.stderr[-3000:]
    return lines


def parse_cases(all_cases: list[Case], pythons: dict[str, Path], env: dict | None = None) -> None:
    """Each backend parses every source it accepts and every result converted to it, in one process."""
    for backend in BACKENDS:
        sources = {(c.run, c.relative): c for c in all_cases if c.source == backend}
        results = [c for c in all_cases if c.target == backend and c.converted]
        items = [(run, Path(rel)) for run, rel in sources] + [(c.run, c.result) for c in results]
        parsed = parse_all(items, backend, pythons[backend], env)
        by_source = dict(zip(sources, parsed[:len(sources)]))
        for c in all_cases:
            if c.source == backend:
                c.source_eff = by_source[(c.run, c.relative)]
        for c, record in zip(results, parsed[len(sources):]):
            c.result_eff = record


# --- comparing -------------------------------------------------------------------------------------------------

def flat(backend: str, effective: dict) -> dict:
    """One mapping of native key -> effective value (LLaMA-Factory's argument sections merged)."""
    if backend != "llamafactory":
        return dict(effective)
    out = {}
    for section in ("model", "data", "finetuning", "training"):
        for key, value in effective[section].items():
            out.setdefault(key, value)
    for key in ("datasets", "eval_datasets", "deepspeed_config"):
        out[key] = effective[key]
    for key, value in (effective.get("without") or {}).items():
        out.setdefault(key, value)
    return out


def normalised(backend: str, effective: dict, evaluates: bool | None = None) -> dict:
    """The flat effective values with the backend's reading of absent values and equivalent spellings applied;
    evaluation settings taken out when the config does not evaluate (``evaluates``: the source's answer)."""
    out = flat(backend, effective)
    for key, value in DEFAULTS[backend].items():
        if out.get(key) is None:
            out[key] = value
    if backend == "axolotl":
        if out.get("eval_batch_size") is None:
            out["eval_batch_size"] = out.get("micro_batch_size")
        out["save_strategy"], out["eval_strategy"] = _axolotl_strategies(out)
        if out.get("load_in_4bit"):  # the 4-bit config bnb_config_kwargs updates (loaders/model.py)
            out["bnb_config_kwargs"] = {**BNB_4BIT, **(out.get("bnb_config_kwargs") or {})}
        for section in ("datasets", "test_datasets"):
            out[section] = [_dataset_defaults(d) for d in out.get(section) or []]
    else:
        out["warmup"] = out.pop("warmup_steps", 0) or out.pop("warmup_ratio", 0.0)
        out.pop("warmup_ratio", None)
        for section in ("datasets", "eval_datasets"):
            out[section] = [_lf_fields(d) for d in out.get(section) or []]
        if not any(d.get(k) for d in out["datasets"] + out["eval_datasets"] for k in ("images", "videos", "audios")):
            out.pop("media_dir", None)  # read only for image, video and audio columns
    if not (evaluates if evaluates is not None else _evaluates(backend, out)):
        for key in EVAL_KEYS[backend]:
            out.pop(key, None)
    return out


def _axolotl_strategies(values: dict) -> tuple[str, str | None]:
    """The save and eval strategies Axolotl passes to transformers (core/builders/base.py,
    _configure_save_and_eval_strategy; normalize_config turns *_per_epoch into a steps ratio when below 1)."""
    epochs = values.get("num_epochs") or 1

    def per_epoch(key: str) -> bool:
        return bool(values.get(key)) and 1.0 / (values[key] * epochs) < 1.0

    save = values.get("save_strategy") or "epoch"  # "default to saving each epoch if not defined"
    if values.get("save_steps") or per_epoch("saves_per_epoch"):
        save = "steps"
    if not _evaluates("axolotl", values):
        return save, "no"
    evals = values.get("eval_strategy") or "no"  # not passed: transformers' own default, no evaluation
    if values.get("eval_steps") or per_epoch("evals_per_epoch"):
        evals = "steps"
    return save, evals


def _evaluates(backend: str, values: dict) -> bool:
    if backend == "axolotl":
        return bool(values.get("val_set_size") or values.get("test_datasets"))
    return values.get("eval_strategy") not in (None, "no")


def _dataset_defaults(entry):
    if not isinstance(entry, dict):
        return entry
    defaults = DATASET_DEFAULTS.get(str(entry.get("type") or "").split(".")[0], {})
    return {**entry, **{k: v for k, v in defaults.items() if entry.get(k) is None}}


def _lf_fields(entry: dict) -> dict:
    keep = LF_DATASET_FIELDS.get(entry.get("formatting"), set(entry))
    return {k: v for k, v in entry.items() if k in keep}


def same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def reported(case: Case) -> dict[str, str]:
    """{native key or recipe path: detail} of every value `convert` reported as approximated."""
    out = {}
    for line in case.report.get("lines", []):
        if line.get("status") == "approximated":
            for key in (line.get("key"), line.get("recipe_key"), line.get("target_key")):
                if key:
                    out[_top(key)] = line.get("detail", "")
                    out[key] = line.get("detail", "")
    return out


def _top(key: str) -> str:
    """The top-level native key of a report key: backends.axolotl.tf32 -> tf32, datasets[0].type -> datasets."""
    key = re.sub(r"^backends\.\w+\.", "", key)
    return re.split(r"[.\[]", key)[0]


def excuse(case: Case, key: str) -> str | None:
    why = reported(case).get(key) or reported(case).get(DERIVED.get(key, ""))
    if why is not None:
        return f"approximated: {why}"
    return KNOWN.get((case.direction, key)) or KNOWN.get((case.direction, f"{key} {case.path}"))


def round_trip(case: Case) -> None:
    a = normalised(case.source, case.source_eff["effective"])
    b = normalised(case.target, case.result_eff["effective"], _evaluates(case.source, a))
    for key in sorted(set(a) | set(b)):
        if key in NOT_TRAINING[case.source] or same(a.get(key), b.get(key)):
            continue
        why = excuse(case, key)
        if why:
            case.excused.append((key, why))
        else:
            case.differences.append((key, a.get(key), b.get(key)))


def cross(case: Case) -> None:
    """Fields both backends express: the source's parser holds what the source backend writes for the recipe
    value, and the target's parser what the target writes for it (the recipe is the common language)."""
    from ft_recipes import backends
    from ft_recipes.backends.base import expectations
    from ft_recipes.recipe.loaded import load_recipe

    recipe = load_recipe(case.out / "recipe.yaml").recipe
    src, dst = backends.get(case.source), backends.get(case.target)
    want_src, want_dst = _by_path(expectations(src, recipe)), _by_path(expectations(dst, recipe))
    excused = src.excused(recipe) | dst.excused(recipe)
    source, result = _readable(case.source, case.source_eff), _readable(case.target, case.result_eff)
    evaluates = _evaluates(case.source, normalised(case.source, case.source_eff["effective"]))
    for path in sorted(set(want_src) & set(want_dst)):
        if path.startswith("eval.") and not evaluates:
            continue
        got_src = [(where, _lookup(source, where), want) for where, want in want_src[path]]
        got_dst = [(where, _lookup(result, where), want) for where, want in want_dst[path]]
        bad = [(where, want, got) for where, got, want in got_src + got_dst if not _same_value(want, got)]
        if not bad:
            continue
        why = excuse(case, path) or (f"approximated: {path}" if path in excused else None)
        if why:
            case.excused.append((path, why))
        else:
            case.differences.append((path, *_pair(bad, want_src, case)))


def _readable(backend: str, record: dict) -> dict:
    """Effective values as the compile oracle's paths name them, with Axolotl's absent values read as it does."""
    if backend == "axolotl":
        return normalised(backend, record["effective"], evaluates=True)
    return record["effective"]


def _pair(bad, want_src, case):
    where, want, got = bad[0]
    return f"{where}: recipe means {want!r}", f"parsed {got!r}"


def _by_path(expected) -> dict[str, list]:
    out: dict[str, list] = {}
    for path, where, value in expected:
        out.setdefault(path, []).append((where, value))
    return out


def _lookup(effective: dict, where: str):
    from ft_recipes.backends.keys import get_native

    if where.endswith(".length"):
        value = get_native(effective, where[: -len(".length")], None)
        return len(value) if isinstance(value, list) else value
    if where.endswith(".times_lr"):
        ratio = get_native(effective, where[: -len(".times_lr")], None)
        return None if ratio is None else ratio * effective["learning_rate"]
    return get_native(effective, where, None)


def _same_value(expected, actual) -> bool:
    if isinstance(expected, list) and isinstance(actual, list):
        return sorted(map(str, expected)) == sorted(map(str, actual))
    return same(expected, actual) or str(expected) == str(actual)


def compare(case: Case) -> None:
    if not (case.converted and case.source_eff and case.source_eff["ok"]):
        return
    if not case.result_eff["ok"]:
        why = excuse(case, "(file)")
        if why:
            case.excused.append(("(file)", why))
        else:
            case.differences.append(("(file)", "accepted", f"refused: {case.result_eff['error'][:300]}"))
        return
    (round_trip if case.source == case.target else cross)(case)


# --- running it all ----------------------------------------------------------------------------------------------

def run(root: Path, pythons: dict[str, Path], env: dict | None = None) -> list[Case]:
    all_cases = cases(root)
    for case in all_cases:
        convert(case)
    parse_cases(all_cases, pythons, env)
    for case in all_cases:
        compare(case)
    return all_cases


def figures(all_cases: list[Case]) -> list[dict]:
    """Per direction and corpus: files checked, identical, refused (top reasons), approximated, unexplained."""
    out = []
    for source, target in DIRECTIONS:
        for corpus in CORPORA:
            group = [c for c in all_cases if (c.source, c.target, c.corpus) == (source, target, corpus)]
            judged = [c for c in group if c.source_eff and c.source_eff["ok"]]
            refused = [c for c in judged if not c.converted]
            reasons = Counter(re.sub(r"'[^']*'", "_", c.reason) or "(no finding)" for c in refused)
            approx = Counter(key for c in judged for key, _ in c.excused)
            out.append({"direction": group[0].direction if group else f"{source}->{target}", "corpus": corpus,
                        "checked": len(judged), "converted": len(judged) - len(refused),
                        "identical": sum(1 for c in judged if c.converted and not c.excused and not c.differences),
                        "approximated": sum(1 for c in judged if c.excused and not c.differences
                                            and all(why.startswith("approximated") for _, why in c.excused)),
                        "known": sum(1 for c in judged if not c.differences
                                     and any(not why.startswith("approximated") for _, why in c.excused)),
                        "unexplained": sum(1 for c in judged if c.differences), "refused": len(refused),
                        "reasons": reasons.most_common(5), "approximated_keys": approx.most_common(8),
                        "not_parsed": len(group) - len(judged)})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| direction | corpus | checked | identical | approximated (reported) | known difference | "
             "refused (finding) | unexplained |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['direction']} | {r['corpus']} | {r['checked']} | {r['identical']} | "
                     f"{r['approximated']} | {r['known']} | {r['refused']} | {r['unexplained']} |")
    return "\n".join(lines)


def details(rows: list[dict]) -> str:
    out = []
    for r in rows:
        if r["reasons"] or r["approximated_keys"]:
            out.append(f"{r['direction']}, {r['corpus']}:")
        for reason, n in r["reasons"]:
            out.append(f"  refused {n:3d}  {reason}")
        for key, n in r["approximated_keys"]:
            out.append(f"  differs {n:3d}  {key}")
    return "\n".join(out)


def unexplained(all_cases: list[Case]) -> list[str]:
    return [f"{c.direction} {c.corpus} {c.path}: {key}: source {a!r} -> result {b!r}"[:400]
            for c in all_cases for key, a, b in c.differences]


def offline_env(home: Path) -> dict[str, str]:
    """No hub access (the corpora name hub models and datasets), no telemetry, no GPU."""
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(home / "hf"), "CUDA_VISIBLE_DEVICES": "", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1",
            "AXOLOTL_DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}


def main(argv: list[str]) -> int:
    from ft_recipes.backends import env_spec
    from ft_recipes.backends.envs import find_python

    pythons = {name: find_python(env_spec(name)) for name in BACKENDS}
    with tempfile.TemporaryDirectory(prefix="ftr-conversion-oracle-") as tmp:
        all_cases = run(Path(tmp), pythons, offline_env(Path(tmp)))
    rows = figures(all_cases)
    print(table(rows))
    print(details(rows))
    problems = unexplained(all_cases)
    print(f"{len(problems)} unexplained differences")
    for line in problems if "--list" in argv else problems[:60]:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
