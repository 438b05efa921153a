"""``ftr merge``: a run's adapter merged into its base, in a scratch folder, renamed into place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from ft_recipes import backends
from ft_recipes.backends import backend_python
from ft_recipes.backends.emitted import atomic_write, to_yaml
from ft_recipes.core.findings import FtrError
from ft_recipes.run.console import note
from ft_recipes.run.manifest import _run_config, compiled_dir, read_run_manifest, rebase, run_target
from ft_recipes.run.plan import quote
from ft_recipes.run.process import expand_env


def merge(run_dir: Path, out: Path | None) -> int:
    """Merge the adapter of ``run_dir`` (the folder given, wherever the run was compiled) into its base model;
    refused while the run is live. The merged model appears at ``out`` whole or not at all."""
    from ft_recipes.run.runlock import acquire_existing

    run_dir = run_dir.resolve()
    manifest = read_run_manifest(run_dir)
    lock = acquire_existing(run_dir, "merge")  # a live run (training, resuming) owns its folder
    try:
        with backends.targeting(run_target(manifest)):  # the environment of the version that trained it
            return _merge(run_dir, manifest, out)
    finally:
        if lock is not None:
            lock.release()


def _merge(run_dir: Path, manifest: dict, out: Path | None) -> int:
    backend = manifest["backend"]
    cfg = rebase(_run_config(run_dir, backend), compiled_dir(run_dir, manifest), run_dir)
    python = backend_python(backend)
    target = (out or run_dir / "merged").resolve()
    if target.exists() and any(target.iterdir()):
        raise FtrError(f"{target} is not empty; choose another -o", exit_code=2)
    _check_adapter(run_dir, manifest)
    work = _work_dir(target)
    try:
        code, produced = _merge_in(work, python, backend, run_dir, cfg)
        if code != 0:
            note(f"ftr: the merge failed (exit status {code}); nothing was written to {target}")
            return code
        _place(produced, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _carry_merged(run_dir, target)
    note(f"ftr: merged model in {target}")
    return 0


def _merge_in(work: Path, python: Path, backend: str, run_dir: Path, cfg: dict) -> tuple[int, Path]:
    """Run the backend's merge with everything it writes inside ``work``: its own copy of the config (whose
    run-folder paths point into ``work/run``) and the merged model. Returns its exit code and the model's folder."""
    main = backends.get(backend).main
    config_dir, scratch, out = work / "config", work / "run", work / "out"
    config_dir.mkdir()
    scratch.mkdir()
    copy = rebase(cfg, run_dir, scratch)
    atomic_write(config_dir / main, json.dumps(copy, indent=2) + "\n" if main.endswith(".json") else to_yaml(copy))
    try:
        job = backends.launcher(backend).merge(python, config_dir, cfg, out)
    except KeyError as exc:
        raise FtrError(f"{run_dir / main}: has no {exc.args[0]!r}; is it a LoRA run?", exit_code=1) from None
    try:
        code = subprocess.run(job.argv, env={**os.environ, **expand_env(job.env)}, cwd=work).returncode
    except OSError as exc:
        raise FtrError(f"{job.argv[0]}: cannot start: {exc.strerror}; reinstall with `ftr backend install "
                       f"{backend}`", exit_code=2) from None
    if job.produces is None:
        return code, out
    produced = job.produces.resolve()  # named in the run folder's terms; written where the copy points
    return code, scratch / produced.relative_to(run_dir) if produced.is_relative_to(run_dir) else produced


def _check_adapter(run_dir: Path, manifest: dict) -> None:
    if (run_dir / "adapter_config.json").is_file():
        return
    if manifest.get("exit_status") == 0 and not manifest.get("interrupted"):
        raise FtrError(f"{run_dir} holds no LoRA adapter (adapter_config.json); only a LoRA run can be merged",
                       exit_code=1)
    how = ("was interrupted" if manifest.get("interrupted") else "has no end (its ftr process died)"
           if manifest.get("end") is None else f"failed (exit status {manifest.get('exit_status')})")
    raise FtrError(f"{run_dir} holds no adapter to merge: the run {how} before saving it; continue it with "
                   f"`ftr run {quote(str(manifest.get('recipe', 'RECIPE')))} --resume` (its checkpoints stay)",
                   exit_code=1)


def _work_dir(target: Path) -> Path:
    """A scratch folder beside ``target``, so that the finished model is renamed into place."""
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.merging-", dir=target.parent))
    except OSError as exc:
        raise FtrError(f"cannot write beside {target}: {exc.strerror}; pass -o DIR on a writable disk",
                       exit_code=2) from None


def _place(produced: Path, target: Path) -> None:
    try:
        os.rename(produced, target)  # replaces an empty target folder
    except OSError as exc:
        raise FtrError(f"cannot move the merged model to {target}: {exc.strerror}", exit_code=2) from None


def _carry_merged(run_dir: Path, target: Path) -> None:
    """The merged model's tokenizer carries the template the run's tokenizer carries (the one trained)."""
    from ft_recipes.recipe import templates

    text = templates.saved_chat_template(str(run_dir))
    if text is not None:
        templates.carry(target, text)
