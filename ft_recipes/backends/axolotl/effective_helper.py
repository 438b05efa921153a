"""The effective values of Axolotl configs: the config after Axolotl's own ``validate_config`` and
``normalize_config``. Runs INSIDE the Axolotl environment.

    python effective_helper.py CONFIG.yaml...

Prints one JSON line per file: {"path", "ok", "error", "effective": {...}}. Configs are validated with the
capabilities of a bf16-capable GPU host, so bf16 configs are judged on what they say, not on this machine.
Imports Axolotl once.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

GPU_CAPABILITIES = {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_90"}


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def parse(path: str, torch_version: str) -> dict:
    import yaml
    from axolotl.cli.config import prepare_plugins
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import normalize_config, validate_config
    from axolotl.utils.dict import DictDefault

    try:
        with open(path, encoding="utf-8") as handle:
            cfg = DictDefault(yaml.safe_load(handle))
        PluginManager.get_instance().plugins.clear()
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # plugins written next to the config
        prepare_plugins(cfg)
        sys.path.pop(0)
        cfg = validate_config(cfg, capabilities=dict(GPU_CAPABILITIES),
                              env_capabilities={"torch_version": torch_version})
        normalize_config(cfg)
        return {"path": path, "ok": True, "error": None, "effective": _plain(dict(cfg))}
    except Exception as exc:  # noqa: BLE001 - every failure is a verdict on the file
        return {"path": path, "ok": False, "error": f"{type(exc).__name__}: {exc}", "effective": None}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    import logging

    logging.disable(logging.WARNING)
    import torch

    out = sys.stdout
    sys.stdout = sys.stderr
    version = str(torch.__version__).split("+", maxsplit=1)[0]
    for path in argv:
        out.write(json.dumps(parse(path, version)) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
