"""A run folder's manifest.json: what ran, each attempt, and where its files are."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ft_recipes import backends
from ft_recipes.backends.emitted import atomic_write
from ft_recipes.core.findings import FtrError
from ft_recipes.run.console import note

MANIFEST = "manifest.json"


def previous_manifest(run_dir: Path) -> dict:
    """The manifest an earlier attempt left in ``run_dir``; empty when there is none or it does not parse."""
    try:
        manifest = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


ATTEMPT = ("start", "end", "exit_status", "interrupted", "resumed_from", "recipe_hash", "host", "error")


def attempt_of(manifest: dict) -> dict:
    """One attempt's record in the manifest's ``attempts`` (an attempt without an ``end``: its ftr died)."""
    return {key: manifest.get(key) for key in ATTEMPT}


def earlier_attempts(manifest: dict) -> list[dict]:
    """The attempts a manifest records, oldest first; a manifest of an older ftr (no ``attempts``) gives its
    one attempt, a manifest of a run never started none."""
    attempts = manifest.get("attempts")
    if isinstance(attempts, list):
        return attempts
    return [attempt_of(manifest)] if manifest.get("start") else []


def _record_failure(run_dir: Path, manifest: dict, exc: BaseException) -> None:
    if manifest.get("end") is None:
        code = exc.exit_code if isinstance(exc, FtrError) else 130 if isinstance(exc, KeyboardInterrupt) else 1
        manifest.update(end=_now(), exit_status=code)
    manifest["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, FtrError) else str(exc)
    _save_final(run_dir, manifest)


def _save_final(run_dir: Path, manifest: dict) -> None:
    """Save the manifest (its last attempt updated); a full or read-only disk is reported, not fatal (the
    training's outcome stands, and `ftr status` sees from the released lock that the run is over)."""
    if manifest.get("attempts"):
        manifest["attempts"][-1] = attempt_of(manifest)
    try:
        save_manifest(run_dir, manifest)
    except FtrError as exc:
        note(f"ftr: warning: cannot update {run_dir / MANIFEST}: {exc}")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def save_manifest(run_dir: Path, manifest: dict) -> None:
    atomic_write(run_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_run_manifest(run_dir: Path) -> dict:
    """``RUN_DIR/manifest.json`` as ``ftr run`` wrote it; FtrError naming the file when it is not one."""
    path = run_dir / MANIFEST
    hint = "give the run directory of an `ftr run` (output.dir), which holds its manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FtrError(f"{path}: no such file; {hint}", exit_code=2) from None
    except OSError as exc:
        raise FtrError(f"{path}: cannot read: {exc.strerror}", exit_code=2) from None
    except ValueError as exc:
        raise FtrError(f"{path}: not valid JSON ({exc}); {hint}", exit_code=1) from None
    if not isinstance(manifest, dict) or manifest.get("backend") not in backends.NAMES:
        raise FtrError(f"{path}: not an `ftr run` manifest (no known \"backend\"); {hint}", exit_code=1)
    return manifest


def _run_config(run_dir: Path, backend: str) -> dict:
    import yaml

    path = run_dir / backends.get(backend).main
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as exc:
        raise FtrError(f"{path}: cannot read: {exc.strerror}", exit_code=2) from None
    except yaml.YAMLError as exc:
        raise FtrError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})", exit_code=1) from None
    if not isinstance(cfg, dict):
        raise FtrError(f"{path}: not a {backend} config (expected a mapping)", exit_code=1)
    return cfg


def run_target(manifest: dict) -> dict[str, str]:
    """The backend version a recorded run used, for ``backends.targeting`` (empty when ftr cannot target it)."""
    backend, version = manifest["backend"], manifest.get("backend_version")
    return {backend: version} if version in backends.get(backend).versions else {}


def compiled_dir(run_dir: Path, manifest: dict) -> Path:
    """The run folder the configs were compiled for (the run may have been moved aside or copied since)."""
    import yaml

    if manifest.get("run_dir"):
        return Path(manifest["run_dir"])
    try:
        resolved = yaml.safe_load((run_dir / "recipe.resolved.yaml").read_text(encoding="utf-8"))
        return Path(resolved["output"]["dir"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return run_dir


def rebase(value, old: Path, new: Path):
    """``value`` with every path string inside ``old`` moved to the same place inside ``new``."""
    if isinstance(value, dict):
        return {k: rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rebase(v, old, new) for v in value]
    if isinstance(value, str) and value.startswith(str(old)):
        rest = value[len(str(old)):]
        if rest == "" or rest.startswith("/"):
            return str(new) + rest
    return value
