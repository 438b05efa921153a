"""The conversion oracle's data check: the first rows of a source config and of its conversion, tokenized by each
backend's own preprocessing (the `ftr tokens` helpers), must give the same input ids and labels.

    python scripts/conversion_tokens.py [--all]    (converts the corpora as the oracle does, then compares)

The corpora name hub models that are not on this machine, so every config (source and result alike) is tokenized
with one local tokenizer: the tiny test model (tests/fixtures/tiny.py), written over the model keys of a copy. The
copy's data paths are those the backend opens from the source's run directory. The rows are
the corpora's own stand-in rows (LLaMA-Factory's data/ demo files), whole (the copies' maximum length is raised
above every row: cutting over-long rows differs between the backends and is documented apart); a dataset on the
hub cannot be read offline, so such a config is counted as "hub data" and not compared.

A pair is identical, a difference (the test fails unless `convert` reported a field that shapes the rows as
approximated: ROW_FIELDS), or not checkable for a stated reason (hub data, the source needs what the stand-in
model lacks, or the helper has no view of the stage).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROWS = 3  # the stand-in demo files hold 3 rows each

# Model keys a copy rewrites to the local tokenizer, and keys that would load more than the tokenizer needs.
MODEL_KEYS = {"llamafactory": ("model_name_or_path", "tokenizer_name_or_path"),
              "axolotl": ("base_model", "base_model_config", "tokenizer_config")}
DROPPED = {"llamafactory": ("adapter_name_or_path", "deepspeed", "tokenized_path", "quantization_bit"),
           "axolotl": ("deepspeed", "fsdp", "fsdp_config", "lora_model_dir", "plugins", "dataset_prepared_path",
                       "tokenizer_type")}  # the stand-in's tokenizer is its own class
# Every row whole: each backend cuts an over-long row its own way (documented in docs/accuracy.md and
# docs/commands/tokens.md; `ftr data` counts the rows cut), which is not what this check compares.
LENGTH_KEY = {"llamafactory": "cutoff_len", "axolotl": "sequence_len"}
LONG = 65536
HUB = ("LocalEntryNotFound", "offline", "OfflineMode", "couldn't reach", "Couldn't reach", "not found on the hub",
       "FileNotFoundError: Unable to find", "DatasetNotFoundError", "Couldn't find a dataset script",
       "is not a local folder")

# Why a source config cannot be tokenized on this machine (not a verdict on ftr): the corpora's images are not
# copied (SOURCE.md) and a multimodal template needs the model's processor, which the stand-in model lacks.
NOT_HERE = ("Processor was not found", "images", "videos", "audios",
            "No tokenizer file found")  # a mistral-common tokenizer (tokenizer_use_mistral_common)
# Results the tokens helper has no view of: (stage, why).
NO_VIEW = {"rm": "Axolotl's tokens helper shows no reward-model pairs (`ftr tokens` does not cover rm on Axolotl)"}
# Recipe fields whose approximation `convert` reports changes the rows themselves: a difference in the tokens is
# excused when the conversion reported one of them as approximated (docs/backends/approximations.md).
# (The copies hold every row whole, one by one, without a validation split: max_length, packing and the split do not
# shape what is compared.)
ROW_FIELDS = ("model.template", "data.train", "chat_template", "special_tokens", "eot_tokens", "template")


@dataclass
class Pair:
    direction: str
    corpus: str
    path: str
    run: Path
    source: tuple[str, Path]  # (backend, config)
    result: tuple[str, Path]
    approximated: tuple[str, ...] = ()  # the fields `convert` reported approximated (or lost: native keys)
    sampled: bool = True  # compared on stand-in rows (an Axolotl source: in SAMPLE)
    stage: str = ""
    status: str = ""  # identical | different | hub data | source not tokenized | result not tokenized | no view
    detail: str = ""


def pairs(cases) -> list[Pair]:
    """One pair per converted case of the conversion oracle; of the Axolotl sources, SAMPLE evenly spaced per
    direction are compared on stand-in rows (the Axolotl corpus has no local data)."""
    out = [Pair(c.direction, c.corpus, c.path, c.run, (c.source, c.run / c.relative), (c.target, c.result),
                 approximated=_approximated(c.report), stage=_stage(c.out / "recipe.yaml"))
           for c in cases if c.converted]
    for direction, n in SAMPLE.items():
        group = [p for p in out if p.direction == direction]
        chosen = {round(k * len(group) / n) for k in range(n)} if len(group) > n else set(range(len(group)))
        for i, pair in enumerate(group):
            pair.sampled = i in chosen
    return out


def _approximated(report: dict) -> tuple[str, ...]:
    """The recipe fields (or native keys) `convert` reported approximated, and the native keys it reported lost."""
    lines = report.get("lines", [])
    return tuple([line.get("recipe_key") or line.get("key") for line in lines if line.get("status") == "approximated"]
                 + [line.get("key") for line in lines if line.get("status") == "lost"])


def _stage(recipe: Path) -> str:
    try:
        return (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("stage", "sft")
    except OSError:
        return ""


def local_copy(backend: str, config: Path, run: Path, model: Path, dest: Path,
               standins: dict[str, Path] | None = None) -> Path:
    """``config`` with the model keys naming the local tokenizer (and nothing that loads weights or launchers),
    and its data paths as the backend resolves them from ``run`` (so one process serves every run directory);
    a hub dataset with a stand-in file (``standins``: hub path -> rows) reads that file."""
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    _absolute_data(backend, data, run)
    if standins:
        _read_standins(backend, data, standins, dest.parent)
    for key in MODEL_KEYS[backend]:
        if key in data or key == MODEL_KEYS[backend][0]:
            data[key] = str(model)
    for key in DROPPED[backend]:
        data.pop(key, None)
    if backend == "llamafactory":
        data["plot_loss"] = False  # it needs matplotlib, which plots after training only
    elif data.get("adapter"):  # the stand-in tokenizer lacks the template's tokens: Axolotl adds them, and then
        data["lora_modules_to_save"] = ["embed_tokens", "lm_head"]  # refuses an adapter that does not train them
    data[LENGTH_KEY[backend]] = LONG
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dest


def _absolute_data(backend: str, data: dict, run: Path) -> None:
    if backend == "llamafactory":
        for key, default in (("dataset_dir", "data"), ("media_dir", None)):
            value = data.get(key, default)
            if isinstance(value, str) and not Path(value).is_absolute() and (run / value).exists():
                data[key] = str(run / value)
        return
    for section in ("datasets", "test_datasets", "pretraining_dataset"):
        for entry in data.get(section) or []:
            for key in ("path", "data_files"):
                value = entry.get(key) if isinstance(entry, dict) else None
                if isinstance(value, str) and not Path(value).is_absolute() and (run / value).exists():
                    entry[key] = str(run / value)


# Stand-in rows for the Axolotl corpus's hub datasets (its configs name no local data): the same three rows written in
# the shape each dataset entry reads, so that source and result read the same rows through their own settings
# (type, field and role mappings). (instruction, input, output).
STANDIN_ROWS = (("Name a colour.", "", "Blue."), ("Add the two numbers.", "2 and 3", "5"),
                ("Say hello in French.", "", "Bonjour !"))
# Axolotl sources compared on stand-in rows, evenly spaced, per direction: each is one run of Axolotl's preprocessing
# (10-25 s here), so a sample keeps CI time bounded; `python scripts/conversion_tokens.py --all` takes every one.
SAMPLE = {"round trip Axolotl": 8, "Axolotl -> LF": 16}


def standin_rows(entry: dict) -> list[dict] | None:
    """The stand-in rows in the shape an Axolotl dataset entry reads, or None for a type with no stand-in."""
    kind = str(entry.get("type") or "")
    if kind == "alpaca":
        return [{"instruction": i, "input": x, "output": o} for i, x, o in STANDIN_ROWS]
    if kind == "completion":
        return [{entry.get("field") or "text": f"{i} {x} {o}".replace("  ", " ")} for i, x, o in STANDIN_ROWS]
    if kind == "chat_template":
        mapped = entry.get("message_property_mappings") or {}
        role = mapped.get("role") or entry.get("message_field_role") or "role"
        content = mapped.get("content") or entry.get("message_field_content") or "content"
        roles = entry.get("roles") or {}
        usual = ("human", "gpt") if role == "from" else ("user", "assistant")  # the two usual spellings
        user, assistant = (roles.get("user") or [usual[0]])[0], (roles.get("assistant") or [usual[1]])[0]
        return [{entry.get("field_messages") or "messages": [{role: user, content: f"{i}\n{x}".strip()},
                                                              {role: assistant, content: o}]}
                for i, x, o in STANDIN_ROWS]
    return None


def make_standins(config: Path, run: Path, folder: Path) -> dict[str, Path] | str:
    """hub path -> a stand-in file for every dataset of an Axolotl config; why not, when one has none."""
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    out = {}
    for entry in data.get("datasets") or []:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or (run / path).exists():
            continue
        rows = standin_rows(entry)
        if rows is None:
            return f"no stand-in rows for dataset type {entry.get('type')!r}"
        file = folder / (re.sub(r"\W+", "_", f"{path}_{entry.get('type')}") + ".jsonl")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        out[path] = file
    return out or "no dataset"


def _read_standins(backend: str, data: dict, standins: dict[str, Path], folder: Path) -> None:
    if backend == "axolotl":
        for entry in data.get("datasets") or []:
            if isinstance(entry, dict) and entry.get("path") in standins:
                for key in ("name", "data_files", "revision", "split"):
                    entry.pop(key, None)
                entry.update(path=str(standins[entry["path"]]), ds_type="json")
        return
    source = Path(str(data.get("dataset_dir") or "data")) / "dataset_info.json"
    info = json.loads(source.read_text(encoding="utf-8"))
    for entry in info.values():
        if entry.get("hf_hub_url") in standins:
            file = standins[entry.pop("hf_hub_url")]
            for key in ("subset", "split", "ms_hub_url", "om_hub_url"):
                entry.pop(key, None)
            entry["file_name"] = str(file)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    data["dataset_dir"] = str(folder)


def local_data(backend: str, config: Path, run: Path) -> bool:
    """Whether every dataset the config trains on is a file on this machine (else the hub: not read offline)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    if backend == "llamafactory":
        folder = run / str(data.get("dataset_dir") or "data")
        try:
            info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        names = [n.strip() for n in str(data.get("dataset") or "").split(",") if n.strip()]
        return bool(names) and all("file_name" in info.get(n, {}) and (folder / info[n]["file_name"]).exists()
                                   for n in names)
    entries = [e for key in ("datasets", "pretraining_dataset") for e in (data.get(key) or [])]
    return bool(entries) and all(isinstance(e, dict) and isinstance(e.get("path"), str)
                                 and (run / e["path"]).exists() for e in entries)


def tokenize(pythons: dict[str, Path], env: dict | None, model: Path, work: Path,
             all_pairs: list[Pair]) -> dict[tuple[str, str], list[dict] | str]:
    """(backend, config path) -> its rows, or why it failed; one helper process per backend."""
    from ft_recipes import backends

    jobs: dict[str, dict[str, Path]] = {}  # backend -> {config: its local copy}
    for n, pair in enumerate(all_pairs):
        standins = None
        if not local_data(*pair.source, pair.run):
            if pair.source[0] != "axolotl" or not pair.sampled:
                continue
            standins = make_standins(pair.source[1], pair.run, work / "standins")
            if isinstance(standins, str):
                pair.status, pair.detail = "hub data", standins
                continue
        for side, (backend, config) in (("source", pair.source), ("result", pair.result)):
            if str(config) not in jobs.setdefault(backend, {}):  # a source shared by two directions: once
                copy = local_copy(backend, config, pair.run, model, work / str(n) / side / config.name, standins)
                jobs[backend][str(config)] = copy
    out: dict[tuple[str, str], list[dict] | str] = {}
    for backend, unique in jobs.items():
        helper = backends.get(backend).tokens_helper
        argv = [str(pythons[backend]), str(helper), *map(str, unique.values()), str(ROWS)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, timeout=3600)
        rows: dict[int, list[dict]] = {}
        for line in proc.stdout.splitlines():
            if line.startswith("FTR-TOKENS "):
                row = json.loads(line[len("FTR-TOKENS "):])
                rows.setdefault(row["job"], []).append(row)
        for job, key in enumerate(unique):
            got = rows.get(job, [])
            failed = [r["error"] for r in got if "error" in r]
            out[(backend, key)] = failed[0] if failed else got or (proc.stderr[-500:] or "no rows")
    return out


def _hub(error: str) -> bool:
    return any(marker in error for marker in HUB)


def _view(rows: list[dict]) -> list[tuple]:
    return [(r.get("part", ""), tuple(r["input_ids"]), tuple(r["labels"])) for r in rows]


def judge(pair: Pair, tokens: dict) -> None:
    if pair.status:  # decided before tokenizing (no stand-in rows for a dataset type)
        return
    if not pair.sampled:
        pair.status, pair.detail = "not sampled", "not in the sample compared on stand-in rows (SAMPLE)"
        return
    if (pair.source[0], str(pair.source[1])) not in tokens:
        pair.status, pair.detail = "hub data", "a dataset is not a file on this machine"
        return
    source = tokens[(pair.source[0], str(pair.source[1]))]
    result = tokens[(pair.result[0], str(pair.result[1]))]
    if isinstance(source, str):
        pair.status = "hub data" if _hub(source) else "source not tokenized"
        pair.detail = source[:200]
    elif isinstance(result, str) and pair.stage in NO_VIEW and pair.result[0] == "axolotl":
        pair.status, pair.detail = "no view", NO_VIEW[pair.stage]
    elif isinstance(result, str):
        pair.status, pair.detail = "result not tokenized", result[:200]
    elif _view(source) == _view(result):
        pair.status = "identical"
    else:
        pair.status, pair.detail = "different", first_difference(source, result)


def first_difference(a: list[dict], b: list[dict]) -> str:
    if len(a) != len(b):
        return f"{len(a)} rows -> {len(b)} rows"
    for i, (x, y) in enumerate(zip(a, b)):
        for key in ("input_ids", "labels"):
            if x[key] != y[key]:
                k = next((j for j, (p, q) in enumerate(zip(x[key], y[key])) if p != q), min(len(x[key]), len(y[key])))
                return (f"row {i} {x.get('part', '')} {key} from position {k}: "
                        f"{x['tokens'][k:k + 6]} -> {y['tokens'][k:k + 6]}")
    return "parts differ"


def excused(pair: Pair) -> str | None:
    """The approximated field `convert` reported that accounts for a difference in the rows, else None."""
    return next((key for key in pair.approximated if key.startswith(ROW_FIELDS)), None)


def run(cases, pythons: dict[str, Path], env: dict | None, model: Path, work: Path) -> list[Pair]:
    all_pairs = pairs(cases)
    tokens = tokenize(pythons, env, model, work, all_pairs)
    for pair in all_pairs:
        judge(pair, tokens)
    return all_pairs


def unexplained(all_pairs: list[Pair]) -> list[str]:
    return [f"{p.direction} {p.corpus} {p.path}: {p.status}: {p.detail}"[:400] for p in all_pairs
            if p.status in ("different", "result not tokenized") and not excused(p)]


def table(all_pairs: list[Pair]) -> str:
    statuses = ("identical", "approximated (reported)", "different", "result not tokenized", "no view", "hub data",
                "source not tokenized", "not sampled")
    lines = ["| direction | corpus | converted | " + " | ".join(statuses) + " |",
             "|---|---|---|" + "---|" * len(statuses)]
    groups = Counter((p.direction, p.corpus) for p in all_pairs)
    for (direction, corpus), n in sorted(groups.items()):
        counts = Counter("approximated (reported)" if p.status == "different" and excused(p) else p.status
                         for p in all_pairs if (p.direction, p.corpus) == (direction, corpus))
        lines.append(f"| {direction} | {corpus} | {n} | " + " | ".join(str(counts[s]) for s in statuses) + " |")
    return "\n".join(lines)


def reasons(all_pairs: list[Pair]) -> str:
    """The most common reasons a pair was not compared, per status."""
    out = []
    for status in ("source not tokenized", "hub data", "no view"):
        common = Counter(p.detail[:120] for p in all_pairs if p.status == status).most_common(4)
        out += [f"  {status} {n:3d}  {why}" for why, n in common]
    return "\n".join(out)


def build_model(python: Path, dest: Path, env: dict | None) -> Path:
    """The tiny test model (its tokenizer is what the copies load), built with a backend environment's python."""
    proc = subprocess.run([str(python), str(ROOT / "tests" / "fixtures" / "tiny.py"), str(dest / "model"),
                           str(dest / "data")], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return Path(json.loads(proc.stdout.strip().splitlines()[-1])["model"])


def main(argv: list[str]) -> int:
    import tempfile

    if "--all" in argv:
        SAMPLE.update(dict.fromkeys(SAMPLE, 10**6))

    sys.path.insert(0, str(ROOT / "scripts"))
    import conversion_oracle as oracle

    from ft_recipes.backends import env_spec
    from ft_recipes.backends.envs import find_python

    pythons = {name: find_python(env_spec(name)) for name in oracle.BACKENDS}
    with tempfile.TemporaryDirectory(prefix="ftr-conversion-tokens-") as tmp:
        env = oracle.offline_env(Path(tmp))
        cases = [c for c in oracle.cases(Path(tmp) / "out")]
        for case in cases:
            oracle.convert(case)
        model = build_model(pythons["llamafactory"], Path(tmp) / "tiny", env)
        all_pairs = run(cases, pythons, env, model, Path(tmp) / "tokens")
    print(table(all_pairs))
    print(reasons(all_pairs))
    problems = unexplained(all_pairs)
    print(f"{len(problems)} unexplained token differences")
    for line in problems[:60]:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
