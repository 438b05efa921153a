"""Run each backend's own validator over the real-world corpus and store its verdicts.

    python scripts/realworld_verdicts.py [llamafactory] [axolotl] [--corpus examples|users]

Writes tests/data/realworld/verdicts.json (the frameworks' own examples) and
tests/data/realworld/users/verdicts.json (configs from user repositories, tests/data/realworld/users/SOURCE.md).
Needs the backend environments (`ftr backend install NAME`); a backend whose environment is missing keeps its
old verdicts. Each backend validates every file in ONE process, from a copy of its corpus folder as working
directory, the way its users run it (LLaMA-Factory finds `data/dataset_info.json` there; both resolve DeepSpeed
paths there). A user-repository file is validated from its own repository's run directory (the manifest's
"run_dir"), still in one process per backend (scripts/realworld_in_dirs.py). The network is off
(HF_HUB_OFFLINE=1): a verdict that needs the hub is recorded as "offline", not as a refusal.

For LLaMA-Factory, whose parser does not look at the data, the files it accepts also go through its own dataset
resolution (scripts/realworld_lf_data.py): a name dataset_info.json does not define, or a local file it names
that does not exist, is a refusal ("data: ..."). For both, a `deepspeed` path goes through the DeepSpeed config
load their trainers do at start-up (scripts/realworld_ds_check.py): a missing file is a refusal ("deepspeed: ...").

Verdicts: "ok" (accepted, nothing dropped), "dropped" (accepted, but keys silently dropped: Axolotl),
"refused" (the validator raised), "offline" (it raised because it could not reach the hub), "env" (it raised
because its environment lacks an optional package the file asks for: not a verdict on the file).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "realworld"
VERDICTS = CORPUS / "verdicts.json"
USERS = CORPUS / "users"
VERDICT_FILES = {"examples": VERDICTS, "users": USERS / "verdicts.json"}
IN_DIRS = ROOT / "scripts" / "realworld_in_dirs.py"
HELPERS = {name: ROOT / "ft_recipes" / "backends" / name / "validate_helper.py"
           for name in ("llamafactory", "axolotl")}
OFFLINE = re.compile(r"offline|HF_HUB_OFFLINE|couldn't connect|connection|LocalEntryNotFound|"
                     r"We couldn't connect|does not appear to have a file named|Max retries", re.IGNORECASE)
PACKAGE = re.compile(r"The '([A-Za-z0-9_.-]+)[^']*' distribution was not found|No module named '([^']+)'|"
                     r"but ([A-Za-z0-9_]+) is not installed")
MACHINE = re.compile(r"not supported on this GPU|requires a GPU|CUDA is not available|"  # the host, not the file
                     r"requires Ampere or a newer GPU")
# Checks the backend does when it starts training, after its config validator: its own dataset resolution
# (LLaMA-Factory) and the DeepSpeed config load (both, through transformers / accelerate).
DS_CHECK = ROOT / "scripts" / "realworld_ds_check.py"
RUNTIME_CHECKS = {"llamafactory": (ROOT / "scripts" / "realworld_lf_data.py", DS_CHECK), "axolotl": (DS_CHECK,)}
OPTIONAL_KEYS = {"matplotlib": "plot_loss", "deepspeed": "deepspeed"}


def corpus_files(backend: str, corpus: str = "examples") -> list[str]:
    """The corpus configs of ``backend``, relative to its corpus folder, sorted."""
    if corpus == "users":
        return sorted(run_dirs(backend))
    base = CORPUS / backend
    return sorted(str(p.relative_to(base)) for p in (base / "examples").rglob("*")
                  if p.suffix in (".yaml", ".yml"))


def corpus_dir(backend: str, corpus: str = "examples") -> Path:
    """The folder a corpus's file paths are relative to."""
    return USERS / backend if corpus == "users" else CORPUS / backend


def run_dirs(backend: str) -> dict[str, str]:
    """{user-corpus file: the directory its user runs the backend in}, both relative to users/<backend>/."""
    manifest = json.loads((USERS / "manifest.json").read_text(encoding="utf-8"))
    return {e["file"]: e["run_dir"] for e in manifest if e["backend"] == backend}


def _specs(files: list[str], dirs: dict[str, str]) -> list[str]:
    """RUN_DIR::CONFIG arguments of scripts/realworld_in_dirs.py (CONFIG relative to RUN_DIR)."""
    return [f"{dirs[f]}::{os.path.relpath(f, dirs[f])}" for f in files]


def backend_python(backend: str) -> str | None:
    from ft_recipes import backends
    from ft_recipes.backends.envs import find_python

    python = find_python(backends.env_spec(backend))
    return str(python) if python else None


def classify(record: dict) -> str:
    if record.get("ok"):
        return "dropped" if record.get("dropped") else "ok"
    if _missing_package(record) or MACHINE.search(record.get("error") or ""):
        return "env"
    return "offline" if OFFLINE.search(record.get("error") or "") else "refused"


def _command(python: str, script: Path, files: list[str], dirs: dict[str, str] | None, *flags: str) -> list[str]:
    if dirs is None:
        return [python, str(script), *flags, *files]
    return [python, str(IN_DIRS), str(script), *flags, *_specs(files, dirs)]


def _helper(python: str, backend: str, work: Path, files: list[str],
            dirs: dict[str, str] | None = None) -> dict[str, dict]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(_command(python, HELPERS[backend], files, dirs, "--cpu"), cwd=work, env=env,
                          capture_output=True, text=True)
    out = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            out[record["path"]] = record
    missing = [f for f in files if f not in out]
    if missing:
        raise SystemExit(f"{backend}: no verdict for {len(missing)} files; stderr tail:\n{done.stderr[-3000:]}")
    return out


def _missing_package(record: dict) -> str | None:
    match = PACKAGE.search(record.get("error") or "")
    return next(g for g in match.groups() if g) if match else None


def _without(path: Path, keys: list[str]) -> None:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in keys:
        data.pop(key, None)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def run_helper(backend: str, python: str, files: list[str], corpus: str = "examples") -> dict[str, dict]:
    """{relative path: helper record} from the validator run in a copy of the corpus folder.

    A file refused only because the validator's environment lacks an optional package that one key asks
    for (plot_loss -> matplotlib, deepspeed -> deepspeed) is validated again without that key, in a second
    process; the record says so ("checked_without")."""
    with tempfile.TemporaryDirectory(prefix=f"ftr-realworld-{backend}-") as tmp:
        work = Path(tmp) / backend
        shutil.copytree(corpus_dir(backend, corpus), work)
        dirs = run_dirs(backend) if corpus == "users" else None
        out = _helper(python, backend, work, files, dirs)
        removed: dict[str, list[str]] = {}
        for _ in range(len(OPTIONAL_KEYS)):
            again = [path for path, record in out.items() if _missing_package(record) in OPTIONAL_KEYS]
            if not again:
                break
            for path in again:
                removed.setdefault(path, []).append(OPTIONAL_KEYS[_missing_package(out[path])])
                _without(work / path, removed[path])
            out.update(_helper(python, backend, work, again, dirs))
        for path, keys in removed.items():
            out[path]["checked_without"] = keys
            shutil.copy(corpus_dir(backend, corpus) / path, work / path)  # the start-up checks read it whole
        for script in RUNTIME_CHECKS[backend]:
            _runtime_check(python, script, work, out, dirs)
    return out


def _runtime_check(python: str, script: Path, work: Path, out: dict[str, dict], dirs: dict[str, str] | None) -> None:
    """A start-up check of the backend (``script``), for files its config validator accepted."""
    accepted = [path for path, record in out.items() if record.get("ok")]
    done = subprocess.run(_command(python, script, accepted, dirs), cwd=work, capture_output=True, text=True)
    label = "deepspeed" if script == DS_CHECK else "data"
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if not record["ok"]:
            out[record["path"]].update(ok=False, error=f"{label}: {record['error']}", dropped=[])


# Axolotl renames `fsdp_config.fsdp_<name>` to `<name>` before validating (deprecated spelling,
# check_fsdp_config_kwargs_prefix); the helper's walk sees the old spelling as dropped when <name> is a field.
FSDP_FIELDS = "from axolotl.utils.schemas.fsdp import FSDPConfig; print(' '.join(FSDPConfig.model_fields))"


def _renamed_not_dropped(python: str, records: dict[str, dict]) -> None:
    fields = set(subprocess.run([python, "-c", FSDP_FIELDS], capture_output=True, text=True).stdout.split())
    for record in records.values():
        kept = []
        for key in record.get("dropped") or []:
            head, _, name = key.partition(".fsdp_")
            if head == "fsdp_config" and name in fields:
                record.setdefault("renamed", []).append(key)
            else:
                kept.append(key)
        if "dropped" in record:
            record["dropped"] = kept


def _first_lines(error: str) -> str:
    """The error's first lines (a pydantic ValidationError names the field on its second and third)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()][:3]
    return " | ".join(lines)[:400]


def verdicts_for(backend: str, python: str, corpus: str = "examples") -> dict:
    records = run_helper(backend, python, corpus_files(backend, corpus), corpus)
    if backend == "axolotl":
        _renamed_not_dropped(python, records)
    files = {}
    for path, record in sorted(records.items()):
        entry = {"verdict": classify(record)}
        for key in ("error", "dropped", "renamed", "checked_without"):
            if record.get(key):
                entry[key] = _first_lines(record[key]) if key == "error" else record[key]
        files[path] = entry
    version = subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({backend!r}))"],
                             capture_output=True, text=True).stdout.strip()
    return {"version": version, "files": files}


def main(argv: list[str]) -> int:
    corpora = [argv[argv.index("--corpus") + 1]] if "--corpus" in argv else list(VERDICT_FILES)
    wanted = [a for a in argv if a in HELPERS] or list(HELPERS)
    for corpus in corpora:
        update(VERDICT_FILES[corpus], corpus, wanted)
    return 0


def update(path: Path, corpus: str, wanted: list[str]) -> None:
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for backend in wanted:
        python = backend_python(backend)
        if python is None:
            print(f"{backend}: no environment; keeping its old verdicts", file=sys.stderr)
            continue
        old[backend] = verdicts_for(backend, python, corpus)
        counts: dict[str, int] = {}
        for entry in old[backend]["files"].values():
            counts[entry["verdict"]] = counts.get(entry["verdict"], 0) + 1
        print(f"{corpus} {backend} {old[backend]['version']}: {counts}")
    path.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
