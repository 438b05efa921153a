"""The effective values of Axolotl configs, each parsed from the directory it runs in, with the paths it opens
resolved there. Runs INSIDE the Axolotl environment (the conversion oracle,
tests/backends/test_conversion_oracle.py).

    python compare_helper.py < JOBS.jsonl

Each input line is {"cwd": DIR, "path": CONFIG}: the config is parsed by ``validate_config`` from DIR, as
effective_helper.py does but without ``normalize_config`` (it loads the model's config from the hub, and the
corpora name hub models that are not on this machine). Prints one JSON line per job: {"path", "ok", "error",
"effective"}, with output_dir, dataset_prepared_path, deepspeed and every local dataset path as real paths from
DIR, and "deepspeed_config": the DeepSpeed JSON deepspeed names. Imports Axolotl once.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from effective_helper import GPU_CAPABILITIES, _plain  # noqa: E402 - the sibling helper, same environment

PATH_KEYS = ("output_dir", "dataset_prepared_path", "deepspeed")


def resolved(value):
    """A path as the backend opens it from the working directory; a hub name or None stays as it is."""
    if isinstance(value, str) and value and os.path.exists(value):
        return os.path.realpath(value)
    return value


def json_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError, TypeError):
        return None


def with_paths(cfg: dict) -> dict:
    for key in PATH_KEYS:
        if isinstance(cfg.get(key), str):
            cfg[key] = os.path.realpath(cfg[key]) if key != "deepspeed" else resolved(cfg[key])
    cfg["deepspeed_config"] = json_file(cfg.get("deepspeed")) if isinstance(cfg.get("deepspeed"), str) else None
    for section in ("datasets", "test_datasets", "pretraining_dataset"):
        for entry in cfg.get(section) or []:
            if isinstance(entry, dict):
                for key in ("path", "data_files"):
                    if isinstance(entry.get(key), str):
                        entry[key] = resolved(entry[key])
    return cfg


def validated(path: str, torch_version: str) -> dict:
    import yaml
    from axolotl.cli.config import prepare_plugins
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    with open(path, encoding="utf-8") as handle:
        cfg = DictDefault(yaml.safe_load(handle))
    PluginManager.get_instance().plugins.clear()
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # plugins written next to the config
    prepare_plugins(cfg)
    sys.path.pop(0)
    cfg = validate_config(cfg, capabilities=dict(GPU_CAPABILITIES), env_capabilities={"torch_version": torch_version})
    return _plain(dict(cfg))


def parse(job: dict, torch_version: str) -> dict:
    path = job["path"]
    try:
        os.chdir(job["cwd"])
        return {"path": path, "ok": True, "error": None, "effective": with_paths(validated(path, torch_version))}
    except Exception as exc:  # noqa: BLE001 - every failure is a verdict on the file
        return {"path": path, "ok": False, "error": f"{type(exc).__name__}: {exc}", "effective": None}


def main() -> int:
    import logging

    logging.disable(logging.WARNING)
    import torch

    out = sys.stdout
    sys.stdout = sys.stderr
    version = str(torch.__version__).split("+", maxsplit=1)[0]
    for line in sys.stdin:
        if line.strip():
            out.write(json.dumps(parse(json.loads(line), version)) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
