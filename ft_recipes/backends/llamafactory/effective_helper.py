"""The effective values of LLaMA-Factory configs: what ``get_train_args`` parsed. Runs INSIDE the backend env.

    python effective_helper.py CONFIG.yaml...

Prints one JSON line per file: {"path", "ok", "error", "effective": {"model": {...}, "data": {...},
"training": {...}, "finetuning": {...}}} with every field of LLaMA-Factory's argument dataclasses.
output_dir is pointed at a fresh temp dir so that no checkpoint is picked up. Imports LLaMA-Factory once.
The configs are parsed as on a bf16-capable GPU host (transformers' bf16 device probe answers yes), so that
bf16 configs are judged on what they say rather than on this machine.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import tempfile


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return str(value)


def _fields(args) -> dict:
    return {f.name: _plain(getattr(args, f.name, None)) for f in dataclasses.fields(args)}


def parse(path: str, tmp_root: str) -> dict:
    from llamafactory.hparams import get_train_args
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        cfg["output_dir"] = tempfile.mkdtemp(dir=tmp_root)
        model, data, training, finetuning, _ = get_train_args(cfg)
        effective = {"model": _fields(model), "data": _fields(data), "training": _fields(training),
                     "finetuning": _fields(finetuning)}
        return {"path": path, "ok": True, "error": None, "effective": effective}
    except SystemExit as exc:
        return {"path": path, "ok": False, "error": f"SystemExit: {exc.code}", "effective": None}
    except Exception as exc:  # noqa: BLE001 - every failure is a verdict on the file
        return {"path": path, "ok": False, "error": f"{type(exc).__name__}: {exc}", "effective": None}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.stdout
    sys.stdout = sys.stderr  # LLaMA-Factory and transformers log to stdout
    import llamafactory.hparams.parser as parser
    import transformers.training_args as training_args

    training_args.is_torch_bf16_gpu_available = lambda *a, **k: True
    parser.is_torch_bf16_gpu_available = lambda *a, **k: True

    with tempfile.TemporaryDirectory(prefix="ftr-lf-effective-") as tmp_root:
        for path in argv:
            out.write(json.dumps(parse(path, tmp_root)) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
