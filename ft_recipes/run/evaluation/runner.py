"""One ``ftr eval``: the job for the helper, the helper run in the lm-eval environment, eval.json and the
manifest's ``eval`` entry, and the forgetting finding."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import yaml

from ft_recipes import __version__
from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.run.evaluation import HERE, SPEC
from ft_recipes.run.evaluation.heldout import HeldOut, held_out
from ft_recipes.run.evaluation.target import Target

RESULTS = "eval.json"
PREFIX = "ftr eval: "


@dataclass(frozen=True)
class Settings:
    tasks: tuple[str, ...] = ()  # lm-eval task names, or task YAML files (or folders of them)
    limit: float | None = None  # rows per task (a fraction when below 1); also caps the held-out generations
    num_fewshot: int | None = None
    batch_size: int | None = None
    seed: int | None = None  # default: the recipe's train.seed, else 1234
    max_new_tokens: int = 64
    held_out: bool = True


class _AnyTag(yaml.SafeLoader):
    """Reads a task YAML whatever its tags (lm-eval's ``!function``), for its name and data files only."""


_AnyTag.add_multi_constructor("!", lambda loader, suffix, node: None)


def _task_yaml(path: Path) -> dict:
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_AnyTag)  # noqa: S506 (a SafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise FtrError(f"{path}: not a readable task YAML ({exc})", exit_code=2) from None
    if not isinstance(config, dict) or not isinstance(config.get("task"), str):
        raise FtrError(f"{path}: a task YAML needs a `task:` name", exit_code=2)
    return config


def task_entries(values: tuple[str, ...]) -> list[dict]:
    """Each ``--tasks`` value: a task YAML file, a folder of them, else an lm-eval task name (comma lists too)."""
    out = []
    for value in (item.strip() for raw in values for item in raw.split(",")):
        path = Path(value).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            out += [{"name": _task_yaml(p)["task"], "yaml": str(p.resolve())} for p in files]
        elif path.suffix in (".yaml", ".yml"):
            if not path.is_file():
                raise FtrError(f"{path}: no such task YAML", exit_code=2)
            out.append({"name": _task_yaml(path)["task"], "yaml": str(path.resolve())})
        elif value:
            out.append({"name": value})
    return out


def _data_files(value) -> list[str]:
    if isinstance(value, dict):
        return [f for item in value.values() for f in _data_files(item)]
    if isinstance(value, list):
        return [f for item in value for f in _data_files(item)]
    return [value] if isinstance(value, str) else []


def task_hash(entry: dict) -> str:
    """sha256 of a task YAML and its local data files (in order); ``registry`` for a task of lm-eval's own."""
    if "yaml" not in entry:
        return "registry"
    path = Path(entry["yaml"])
    digest = hashlib.sha256(path.read_bytes())
    kwargs = _task_yaml(path).get("dataset_kwargs") or {}
    for name in _data_files(kwargs.get("data_files")):
        data = path.parent / name
        digest.update(data.read_bytes() if data.is_file() else name.encode())
    return digest.hexdigest()


def eval_python() -> Path:
    from ft_recipes.backends.envs import find_python

    python = find_python(SPEC)
    if python is None:
        raise FtrError(f"FTR503: the lm-eval {SPEC.version} environment is not installed; run `ftr eval --install`, "
                       f"or set {SPEC.env_var} to its python", exit_code=1)
    return python


def _seed(target: Target, settings: Settings) -> int:
    if settings.seed is not None:
        return settings.seed
    return target.recipe.train.seed_value if target.recipe else 1234


def _held_out_job(target: Target, settings: Settings) -> tuple[dict | None, HeldOut | None]:
    if not settings.held_out or target.recipe is None:
        return None, None
    held = held_out(target.recipe)
    if held is None or not held.rows:
        return None, held
    cap = int(settings.limit) if settings.limit and settings.limit >= 1 else None
    return {"rows": held.rows, "split": held.split, "template": target.template,
            "generate": target.recipe.stage == "sft", "max_rows": cap, "max_new_tokens": settings.max_new_tokens,
            "samples": 5}, held


def build_job(target: Target, settings: Settings, with_base: bool) -> tuple[dict, HeldOut | None]:
    if with_base and target.base is None:
        raise FtrError("--base: no base model is known for this model; give --base-model", exit_code=2)
    models = ([target.base] if with_base else []) + [target.tuned]
    held, source = _held_out_job(target, settings)
    limit = settings.limit if settings.limit is None or settings.limit < 1 else int(settings.limit)
    job = {"models": [m.job() for m in models], "tasks": task_entries(settings.tasks), "limit": limit,
           "num_fewshot": settings.num_fewshot, "batch_size": settings.batch_size, "seed": _seed(target, settings),
           "held_out": held,
           "trust_remote_code": bool(target.recipe and target.recipe.model.trust_remote_code)}
    return job, source


def run_helper(python: Path, job: dict, log: Path, echo: Callable[[str], None]) -> dict:
    """The helper in the lm-eval environment; its progress lines go to ``echo``, all of its output to ``log``."""
    with tempfile.TemporaryDirectory(prefix="ftr-eval-") as work:
        job_path, out_path = Path(work) / "job.json", Path(work) / "out.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        argv = [str(python), str(HERE / "helper.py"), str(job_path), str(out_path)]
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as fh:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work,
                                    env=env, errors="replace")
            for line in proc.stdout:
                fh.write(line)
                if line.startswith(PREFIX):
                    echo(line.rstrip("\n"))
            code = proc.wait()
        if code != 0 or not out_path.is_file():
            tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-20:])
            raise FtrError(f"lm-eval failed (exit {code}); last lines of {log}:\n{tail}", exit_code=1)
        return json.loads(out_path.read_text(encoding="utf-8"))


def settings_record(job: dict, held: HeldOut | None, target: Target, lm_eval_version: str) -> dict:
    from ft_recipes.backends.envs import lock_hash

    return {"tasks": [t["name"] for t in job["tasks"]], "task_files": {t["name"]: t.get("yaml") for t in job["tasks"]},
            "task_hashes": {t["name"]: task_hash(t) for t in job["tasks"]}, "limit": job["limit"],
            "num_fewshot": job["num_fewshot"], "batch_size": job["batch_size"], "seed": job["seed"],
            "lm_eval_version": lm_eval_version, "env_lock_sha256": lock_hash(SPEC),
            "held_out": held.source if held else None, "held_out_skipped": held.skipped if held else [],
            "template_sha256": hashlib.sha256(target.template.encode()).hexdigest() if target.template else None,
            "quantization": None}


def quantization_record(target: Target, results: dict) -> tuple[dict | None, list[str]]:
    """settings.quantization: what a QLoRA adapter's base was asked to load as and whether each model did; the
    notes to print when a model loaded unquantized (never silently)."""
    asked = target.tuned.quantization
    if not asked:
        return None, []
    done = {label: model.get("quantization") or {} for label, model in results.items()}
    applied = {label: bool(info.get("applied")) for label, info in done.items()}
    old = "the lm-eval helper did not quantize it (an older environment)"
    notes = [f"{label}: the QLoRA base was not loaded {asked['bits']}-bit: {info.get('note') or old}"
             for label, info in done.items() if not info.get("applied")]
    return {**asked, "applied": applied, "notes": notes}, notes


def evaluate(target: Target, settings: Settings, with_base: bool, log: Path,
             echo: Callable[[str], None] = print) -> dict:
    """Run the evaluation; the record eval.json holds (without findings)."""
    job, held = build_job(target, settings, with_base)
    if not job["tasks"] and not job["held_out"]:
        raise FtrError("nothing to evaluate: give --tasks (lm-eval task names or task YAML files), or a run whose "
                       "recipe holds validation rows (data.val)", exit_code=2)
    started = _dt.datetime.now(_dt.timezone.utc)
    out = run_helper(eval_python(), job, log, echo)
    models = {"base": target.base, "tuned": target.tuned} if with_base else {"tuned": target.tuned}
    settings = settings_record(job, held, target, out["lm_eval_version"])
    settings["quantization"], notes = quantization_record(target, out["models"])
    for note in notes:
        echo(f"note: {note}")
    return {"ftr_version": __version__, "start": started.isoformat(timespec="seconds"),
            "seconds": round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(), 1),
            "target": {"run_dir": str(target.run_dir) if target.run_dir else None, "kind": target.kind,
                       **{label: asdict(model) for label, model in models.items()}},
            "settings": settings, "notes": notes, "results": out["models"]}


def run(target: Target, settings: Settings, with_base: bool, log: Path, path: Path | None,
        echo: Callable[[str], None] = print, name: str | None = None) -> tuple[dict, list[Finding]]:
    """Evaluate, find forgetting (FTR701, the project's rule packs), save eval.json at ``path`` (and the run's
    manifest entry): ``ftr eval`` and a pipeline's eval step. The record and its findings."""
    from ft_recipes.lint.options import from_project

    record = evaluate(target, settings, with_base, log, echo=echo)
    options = from_project(target.run_dir or Path.cwd())
    findings = [f for f in forgetting(record, str(path or name or target.tuned.pretrained), options.rule_packs)
                if options.selects(f.code)]
    record["findings"] = [{"code": f.code, "severity": f.severity, "message": f.message, "hint": f.hint}
                          for f in findings]
    save(record, target, path)
    return record, findings


def forgetting(record: dict, file: str, rule_packs: tuple[str, ...] = ()) -> list[Finding]:
    """FTR701 for each task metric the tuned model lost more than the rule pack's margin on (needs --base)."""
    from ft_recipes.lint.pack import load_pack, rule_section
    from ft_recipes.lint.registry import all_rules

    base, tuned = record["results"].get("base"), record["results"].get("tuned")
    if not base or not tuned:
        return []
    rule = all_rules()["FTR701"]
    better = {**base.get("higher_is_better", {}), **tuned.get("higher_is_better", {})}
    return rule.compare(base["tasks"], tuned["tasks"], better, rule_section(load_pack(rule_packs), "FTR701"), file)


def save(record: dict, target: Target, out: Path | None) -> Path | None:
    """eval.json at ``out``, else in the run directory (a model folder: nowhere unless ``out``); the run's
    manifest gets an ``eval`` entry: the file, the settings and the scores (no samples)."""
    from ft_recipes.core.writes import atomic_write

    path = out or (target.run_dir / RESULTS if target.run_dir else None)
    if path is None:
        return None
    atomic_write(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    if target.run_dir is not None:
        _record_in_manifest(target.run_dir, path, record)
    return path


def _record_in_manifest(run_dir: Path, path: Path, record: dict) -> None:
    from ft_recipes.run.manifest import MANIFEST, save_manifest

    manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    summary = {label: {"tasks": model["tasks"],
                       "held_out": {k: v for k, v in (model.get("held_out") or {}).items() if k != "samples"}}
               for label, model in record["results"].items()}
    manifest["eval"] = {"file": str(path), "start": record["start"], "seconds": record["seconds"],
                        "settings": record["settings"], "results": summary,
                        "findings": [f["code"] for f in record.get("findings", [])]}
    save_manifest(run_dir, manifest)


def echo_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
