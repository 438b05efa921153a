"""Validate LLaMA-Factory configs with LLaMA-Factory's own parser. Runs INSIDE the backend environment.

    python validate_helper.py [--cpu] CONFIG.yaml...

Prints one JSON line per file: {"path": ..., "ok": true|false, "error": "..."|null}; exit 0 if all are ok.
The backend is imported once, so each further file costs only the parse (a few seconds on the first).

--cpu switches bf16 / fp16 / pure_bf16 off first: LLaMA-Factory refuses bf16 on a machine without a GPU.
output_dir always points at a fresh empty temp dir, so an existing checkpoint is never picked up or refused.
Train configs go through get_train_args; export configs (export_dir set, no stage) through get_infer_args
as `llamafactory-cli export` does.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback


def _load(path: str) -> dict:
    from omegaconf import OmegaConf  # the loader LF uses (hparams/parser.py read_args)

    cfg = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: top level is not a mapping")
    return cfg


def validate(path: str, cpu: bool, tmp_root: str) -> dict:
    from llamafactory.hparams import get_infer_args, get_train_args

    try:
        cfg = _load(path)
        if cpu:
            for key in ("bf16", "fp16", "pure_bf16"):
                if key in cfg:
                    cfg[key] = False
        if "export_dir" in cfg and "stage" not in cfg:
            get_infer_args(cfg)
        else:
            cfg["output_dir"] = tempfile.mkdtemp(dir=tmp_root)
            get_train_args(cfg)
        return {"path": path, "ok": True, "error": None}
    except SystemExit as exc:  # HfArgumentParser / LF exit on some errors
        return {"path": path, "ok": False, "error": f"SystemExit: {exc.code}"}
    except Exception as exc:  # noqa: BLE001 - every failure is a verdict on the file
        msg = f"{type(exc).__name__}: {exc}".strip()
        if os.environ.get("FTR_HELPER_TRACEBACK"):
            msg += "\n" + traceback.format_exc()
        return {"path": path, "ok": False, "error": msg}


def main(argv: list[str]) -> int:
    cpu = "--cpu" in argv
    paths = [a for a in argv if a != "--cpu"]
    if not paths:
        print("usage: python validate_helper.py [--cpu] CONFIG.yaml...", file=sys.stderr)
        return 2
    out = sys.stdout
    sys.stdout = sys.stderr  # LF and transformers log to stdout; keep stdout for the JSON lines only
    import llamafactory.hparams  # noqa: F401 - import once, up front

    all_ok = True
    with tempfile.TemporaryDirectory(prefix="ftr-lf-validate-") as tmp_root:
        for path in paths:
            result = validate(path, cpu, tmp_root)
            all_ok &= result["ok"]
            out.write(json.dumps(result) + "\n")
            out.flush()
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
