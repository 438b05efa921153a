"""Compiling and running a pipeline (``stages:``): the stage order, each stage's hash, ``pipeline.json``, and
skipping or resuming finished stages. See docs/pipelines.md.

A stage's hash covers its resolved recipe, its backend, the content of its local datasets and the hash of the
stage it starts from, so a change anywhere upstream re-runs everything after it. ``ftr run`` also records the
hash of the input's result files (adapter or merged model) when the stage ran: a re-trained input means a re-run.
A ``stage: eval`` step's hash covers its eval settings and its local task files; it runs ``ftr eval --base`` on
its input's result, writes eval.json into its own folder, the scores into the evaluated run's manifest and into
its entry of pipeline.json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from ft_recipes import __version__, backends
from ft_recipes.backends.emitted import recipe_hash
from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.stages import Pipeline, Stage
from ft_recipes.run.runlock import acquire

PIPELINE = "pipeline.json"
HASHED_WHOLE = 256 * 2**20  # result files up to this size are hashed by content, larger ones by size and mtime


# --- hashes ---------------------------------------------------------------------------------------------------

def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def data_hashes(stage: Stage) -> dict[str, str]:
    if stage.loaded is None:
        return {}
    data = stage.recipe.data
    return {str(ds.path): file_hash(ds.path) for ds in (*data.train, *data.val) if ds.path and ds.path.is_file()}


def stage_hashes(pipeline: Pipeline, default_backend: str) -> dict[str, str]:
    """name -> the stage's hash, chained through ``from:``."""
    out: dict[str, str] = {}
    for stage in pipeline.stages:
        backend = backends.get(pipeline.backend_of(stage, default_backend))
        parts = {"backend": backend.name, "merge": stage.merge,
                 "recipe": training_hash(stage.recipe) if stage.recipe else f"{stage.kind}-step",
                 "data": sorted(data_hashes(stage).values()),  # contents, not where the checkout lies
                 "input": out.get(stage.source, "base")}
        if backend.versions[1:] and backend.version != backend.versions[0]:
            parts["backend_version"] = backend.version  # another version: run again (the default's hash stays)
        if stage.is_eval_step:
            parts["eval"] = eval_settings(stage)
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        out[stage.name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


EVAL_ONLY = ("tasks", "limit", "num_fewshot")  # ftr eval's settings in eval:, which no backend reads


def training_hash(recipe) -> str:
    """The recipe's hash without ftr eval's settings: changing what an eval step runs trains nothing again."""
    raw = recipe.raw
    ev = raw.get("eval") if isinstance(raw, dict) else None
    if not isinstance(ev, dict) or not any(key in ev for key in EVAL_ONLY):
        return recipe_hash(recipe)
    kept = {**raw, "eval": {k: v for k, v in ev.items() if k not in EVAL_ONLY}}
    text = json.dumps(kept, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def eval_settings(stage: Stage) -> dict:
    """What an eval step runs: its tasks (with the sha256 of each local task file and its data), limit, few-shot."""
    from ft_recipes.run.evaluation.runner import task_entries, task_hash

    ev = stage.evaluation
    try:
        hashes = [task_hash(t) for t in task_entries(ev.tasks)]
    except FtrError:  # a task file that is missing: the step reports it when it runs
        hashes = ["missing"]
    return {"tasks": list(ev.tasks), "task_hashes": hashes, "limit": ev.limit, "num_fewshot": ev.num_fewshot}


def result_hash(stage: Stage) -> str | None:
    """The hash of a finished stage's result files (adapter or model), None when there is none."""
    folder = stage.result
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not (path.name.startswith("adapter_") or path.name == "config.json"
                                      or path.suffix == ".safetensors"):
            continue
        size = path.stat().st_size
        mark = file_hash(path) if size <= HASHED_WHOLE else f"{size}:{path.stat().st_mtime_ns}"
        digest.update(f"{path.name}={mark};".encode())
    return digest.hexdigest()[:16]


# --- pipeline.json --------------------------------------------------------------------------------------------

def describe_stages(pipeline: Pipeline, default_backend: str, config_dir=None) -> list[dict]:
    """One entry per stage in run order: backend, what it starts from (by path) and its hashes."""
    hashes = stage_hashes(pipeline, default_backend)
    out = []
    for stage in pipeline.stages:
        backend = pipeline.backend_of(stage, default_backend)
        source = pipeline.source(stage)
        entry = {"name": stage.name, "kind": stage.kind, "backend": backend,
                 "stage": stage.recipe.stage if stage.recipe else stage.kind, "run_dir": str(stage.run_dir),
                 "result": str(stage.result), "result_kind": stage.result_kind, "from": stage.source,
                 "inputs": [] if source is None else [{"stage": source.name, "kind": source.result_kind,
                                                       "path": str(source.result), "hash": hashes[source.name]}],
                 "hash": hashes[stage.name], "data": data_hashes(stage)}
        if stage.is_eval_step:
            entry["evaluates"] = stage.evaluates
            entry["eval_settings"] = {k: v for k, v in eval_settings(stage).items() if k != "task_hashes"}
        if stage.recipe:
            entry["recipe_hash"] = recipe_hash(stage.recipe)
            folder = (config_dir / stage.name) if config_dir else stage.run_dir
            entry["config"] = str(folder / backends.get(backend).main)
        out.append(entry)
    return out


def pipeline_document(pipeline: Pipeline, stages: list[dict]) -> str:
    doc = {"ftr_version": __version__, "recipe": str(Path(pipeline.file).resolve()),
           "order": [s["name"] for s in stages], "stages": stages}
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def read_state(folder: Path) -> dict[str, dict]:
    """name -> the stage entry of the previous run's ``pipeline.json`` ({} when there is none or it is unreadable)."""
    try:
        doc = json.loads((folder / PIPELINE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        print(f"ftr: {folder / PIPELINE}: unreadable ({exc}); every stage runs", file=sys.stderr)
        return {}
    stages = doc.get("stages") if isinstance(doc, dict) else None
    return {s["name"]: s for s in stages or () if isinstance(s, dict) and "name" in s}


def save_state(pipeline: Pipeline, stages: list[dict], state: dict[str, dict]) -> None:
    from ft_recipes.backends.emitted import atomic_write

    pipeline.dir.mkdir(parents=True, exist_ok=True)
    merged = [{**entry, **{k: v for k, v in state.get(entry["name"], {}).items() if k in RUN_FIELDS}}
              for entry in stages]
    atomic_write(pipeline.dir / PIPELINE, pipeline_document(pipeline, merged))


RUN_FIELDS = ("status", "ran_hash", "input_result", "exit_status", "start", "end", "eval")


# --- compile --------------------------------------------------------------------------------------------------

def compile_pipeline(path: str, default_backend: str, out_dir: Path, force: bool = False):
    """One native config set per stage under ``out_dir/<name>/`` plus ``out_dir/pipeline.json``."""
    from ft_recipes.backends.emitted import write_outputs
    from ft_recipes.core.writes import write_set
    from ft_recipes.lint.gate import check_data
    from ft_recipes.recipe.stages import in_stage, load_pipeline

    pipeline = load_pipeline(path)
    out_dir = out_dir.resolve()
    written, notes = [], []
    for stage in pipeline.stages:
        if stage.loaded is None:
            continue
        backend = stage.backend_for(default_backend)
        try:
            check_data(stage.loaded)
            emitted = backends.get(backend).emit(stage.recipe, out_dir / stage.name)
        except FtrError as exc:
            raise FtrError(f"stage {stage.name}: {exc}", [in_stage(f, stage.name) for f in exc.findings],
                           exc.exit_code) from None
        notes += [(stage.name, backend, note) for note in emitted.notes if not note.cross]
        written += write_outputs(emitted, stage.recipe, out_dir / stage.name, force)
    text = pipeline_document(pipeline, describe_stages(pipeline, default_backend, out_dir))
    written += write_set(out_dir, {PIPELINE: text}, force, protected=[pipeline.file])
    return pipeline, written, notes


# --- run ------------------------------------------------------------------------------------------------------

def finished(stage: Stage) -> bool:
    """The stage's run ended with exit status 0 (and its merge, if any, wrote the merged model; an eval step wrote
    its eval.json)."""
    if stage.is_eval_step:
        return _eval_record(stage) is not None
    if stage.is_merge_step or stage.merge:
        if not (stage.result / "config.json").is_file():
            return False
        if stage.is_merge_step:
            return True
    try:
        manifest = json.loads((stage.run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("exit_status") == 0 and not manifest.get("interrupted")


def up_to_date(stage: Stage, pipeline: Pipeline, hashes: dict[str, str], state: dict[str, dict]) -> bool:
    recorded = state.get(stage.name, {})
    if recorded.get("status") != "finished" or recorded.get("ran_hash") != hashes[stage.name]:
        return False
    source = pipeline.source(stage)
    if source is not None and recorded.get("input_result") != result_hash(source):
        return False
    return finished(stage)


def selected(pipeline: Pipeline, only: str | None, from_stage: str | None) -> tuple[list[str], bool]:
    """The stages to consider and whether they run even when up to date (--only, --from-stage)."""
    if only and from_stage:
        raise FtrError("--only and --from-stage exclude each other", exit_code=2)
    if only:
        return [pipeline.get(only).name], True
    if from_stage:
        start = pipeline.get(from_stage).index
        return [s.name for s in pipeline.stages if s.index >= start], True
    return pipeline.names, False


def run_pipeline(pipeline: Pipeline, default_backend: str, opts, resume: bool, dry_run: bool,
                 argv: list[str], only: str | None = None, from_stage: str | None = None) -> int:
    """Run the stages in order; skip the up-to-date ones; stop at the first that fails. Returns an exit code."""
    names, rerun = selected(pipeline, only, from_stage)
    if dry_run:
        return _run_stages(pipeline, default_backend, opts, resume, True, argv, names, rerun)
    lock = acquire(pipeline.dir, "pipeline")  # one run of the pipeline at a time
    try:
        return _run_stages(pipeline, default_backend, opts, resume, False, argv, names, rerun)
    finally:
        lock.release()


def _run_stages(pipeline: Pipeline, default_backend: str, opts, resume: bool, dry_run: bool, argv: list[str],
                names: list[str], rerun: bool) -> int:
    hashes = stage_hashes(pipeline, default_backend)
    stages = describe_stages(pipeline, default_backend)
    state = read_state(pipeline.dir)
    for stage in pipeline.stages:
        if stage.name not in names:
            continue
        if not (rerun or dry_run) and up_to_date(stage, pipeline, hashes, state):
            print(f"ftr: stage {stage.name}: finished and unchanged (hash {hashes[stage.name]}), skipped",
                  file=sys.stderr)
            continue
        source = pipeline.source(stage)
        if source is not None and not dry_run and not finished(source):
            raise FtrError(f"stage {stage.name} starts from {source.name}, which has not finished; run "
                           f"`ftr run` without --only/--from-stage, or --from-stage {source.name}", exit_code=1)
        what = stage.kind if stage.kind != "train" else stage.backend_for(default_backend)
        print(f"ftr: stage {stage.name} ({stage.index + 1}/{len(pipeline.stages)}): {what}", file=sys.stderr)
        if dry_run:
            _dry_run(stage, pipeline, default_backend, opts)
            continue
        entry = {"status": "running", "ran_hash": hashes[stage.name], "start": _now(), "end": None,
                 "input_result": result_hash(source) if source else None, "exit_status": None}
        state[stage.name] = entry
        save_state(pipeline, stages, state)
        code = _run_stage(stage, pipeline, default_backend, opts, resume, argv)
        entry.update(status="finished" if code == 0 else "failed", exit_status=code, end=_now())
        if stage.is_eval_step and code == 0:
            entry["eval"] = eval_summary(stage)
        save_state(pipeline, stages, state)
        if code != 0:
            done = [s.name for s in pipeline.stages if state.get(s.name, {}).get("status") == "finished"]
            print(f"ftr: stage {stage.name} failed (exit status {code}); kept the finished stages "
                  f"({', '.join(done) or 'none'}); run again to continue from {stage.name}", file=sys.stderr)
            return code
    return 0


def _run_stage(stage: Stage, pipeline: Pipeline, default_backend: str, opts, resume: bool, argv) -> int:
    from ft_recipes.run.merge import merge
    from ft_recipes.run.plan import RunRequest, last_checkpoint, plan
    from ft_recipes.run.process import execute

    if stage.is_merge_step:
        _move_aside(stage.run_dir)
        return merge(pipeline.source(stage).run_dir, stage.run_dir)
    if stage.is_eval_step:
        return run_eval_step(stage, pipeline)
    backend = stage.backend_for(default_backend)
    resume_here = resume and last_checkpoint(stage.run_dir) is not None
    run_plan = plan(stage.loaded, RunRequest(backend, opts, resume=resume_here, force=not resume_here))
    code = execute(run_plan, stage.loaded, backend, argv)
    if code == 0 and stage.merge:
        _move_aside(stage.result)
        code = merge(stage.run_dir, stage.result)
    return code


def run_eval_step(stage: Stage, pipeline: Pipeline) -> int:
    """``ftr eval --base`` on the input's result with the step's settings: eval.json and lm-eval's log in the
    step's folder, the scores in the evaluated run's manifest; the table printed. Exit status 1 when it fails
    or an error-level finding (FTR701 in a team's rule pack) says the tuned model forgot."""
    from ft_recipes.insight.report import eval_table
    from ft_recipes.run.evaluation import runner
    from ft_recipes.run.evaluation import target as targets

    _move_aside(stage.run_dir)
    ev = stage.evaluation
    settings = runner.Settings(tasks=ev.tasks, limit=ev.limit, num_fewshot=ev.num_fewshot)
    try:
        what = targets.resolve(pipeline.source(stage).result)
        record, findings = runner.run(what, settings, True, stage.run_dir / "logs" / "eval.log", stage.result,
                                      echo=runner.echo_err)
    except FtrError as exc:
        print(f"ftr: stage {stage.name}: {exc}", file=sys.stderr)
        for finding in exc.findings:
            print(finding.text(), file=sys.stderr)
        return exc.exit_code or 1
    print(f"stage {stage.name}: {what.tuned.describe()} against {what.base.describe()}\n"
          f"{eval_table(record['results'])}", flush=True)
    for finding in findings:
        print(finding.text(), file=sys.stderr)
    print(f"ftr: stage {stage.name}: results in {stage.result} ({record['seconds']} s)", file=sys.stderr)
    return 1 if any(f.severity == "error" for f in findings) else 0


def _eval_record(stage: Stage) -> dict | None:
    try:
        record = json.loads(stage.result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("results"), dict) else None


def eval_summary(stage: Stage) -> dict | None:
    """What pipeline.json keeps of an eval step's eval.json: the file, the models, the settings, the scores (no
    sample generations) and the finding codes."""
    record = _eval_record(stage)
    if record is None:
        return None
    results = {label: {"tasks": model.get("tasks", {}),
                       "held_out": {k: v for k, v in (model.get("held_out") or {}).items() if k != "samples"}}
               for label, model in record["results"].items()}
    return {"file": str(stage.result), "seconds": record.get("seconds"), "target": record.get("target"),
            "settings": record.get("settings"), "results": results,
            "findings": [f.get("code") for f in record.get("findings", [])]}


def _dry_run(stage: Stage, pipeline: Pipeline, default_backend: str, opts) -> None:
    from ft_recipes.run.plan import RunRequest, describe, plan

    if stage.is_eval_step:
        ev = stage.evaluation
        print(f"eval:     {pipeline.source(stage).result} against its base (tasks: {', '.join(ev.tasks) or 'none'}; "
              f"held-out rows of {stage.evaluates}; limit {ev.limit}) -> {stage.result}")
        return
    if stage.is_merge_step:
        print(f"merge:    {pipeline.source(stage).run_dir} -> {stage.run_dir}")
        return
    print(describe(plan(stage.loaded, RunRequest(stage.backend_for(default_backend), opts, dry_run=True))))


def _move_aside(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        stamp = dt.datetime.now().strftime('%Y%m%d-%H%M%S')
        aside, n = folder.with_name(f"{folder.name}.old-{stamp}"), 1
        while aside.exists():  # moved aside twice in a second (a quick eval step)
            aside, n = folder.with_name(f"{folder.name}.old-{stamp}-{n}"), n + 1
        folder.rename(aside)
        print(f"ftr: moved the previous {folder.name} aside to {aside}", file=sys.stderr)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def stage_dirs(folder: Path) -> list[Path] | None:
    """The run directories of a pipeline's output.dir (from its pipeline.json) in order, its eval steps' folders
    among them; None if it is not one."""
    if not (folder / PIPELINE).is_file():
        return None
    marks = {"train": "manifest.json", "eval": "eval.json"}
    return [Path(s["run_dir"]) for s in read_state(folder).values()
            if s.get("kind") in marks and (Path(s["run_dir"]) / marks[s["kind"]]).is_file()]


def run_command(path: str, default_backend: str, launch: dict, dry_run: bool, resume: bool, force: bool,
                no_lint: bool, only: str | None, from_stage: str | None, fit, argv: list[str]) -> int:
    """``ftr run`` of a pipeline: load and lint every stage first, then run them (``--force``: all again)."""
    from ft_recipes.backends.emitted import DEEPSPEED_PRESETS
    from ft_recipes.lint.gate import gate_pipeline
    from ft_recipes.recipe.stages import load_pipeline
    from ft_recipes.run.launchers.options import LaunchOptions, check

    pipeline = load_pipeline(path)
    hw = next(s.recipe for s in pipeline.stages if s.recipe).hardware
    opts = LaunchOptions(**{**launch, "gpus": hw.gpus if launch["gpus"] is None else launch["gpus"],
                            "nnodes": hw.nodes if launch["nnodes"] is None else launch["nnodes"]})
    check(opts, DEEPSPEED_PRESETS)
    gate_pipeline(pipeline, no_lint)
    opts = fit(opts, dry_run)
    if force and not (only or from_stage):
        from_stage = pipeline.names[0]
    return run_pipeline(pipeline, default_backend, opts, resume, dry_run, argv, only, from_stage)
