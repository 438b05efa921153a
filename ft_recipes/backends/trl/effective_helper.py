"""The effective values of the trl backend's configs: the trl and peft config objects that ``train.py``
builds from each ``trl.json`` (``train.py --print-config``), for many files in one process. Runs INSIDE the
trl environment.

    python effective_helper.py TRAIN_SCRIPT.py TRL.json...

Prints one JSON line per file: {"path", "ok", "error", "effective": {"args", "peft", "config"}}. The configs
are built as on a bf16-capable GPU host (transformers' bf16 device probe answers yes).
"""

from __future__ import annotations

import importlib.util
import json
import sys


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set) else items
    return str(value)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    import transformers.training_args as training_args

    training_args.is_torch_bf16_gpu_available = lambda *a, **k: True
    spec = importlib.util.spec_from_file_location("ftr_train_script", argv[0])
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = sys.stdout
    sys.stdout = sys.stderr
    for path in argv[1:]:
        try:
            with open(path, encoding="utf-8") as handle:
                cfg = json.load(handle)
            effective = _plain(script.built_configs(cfg))
            out.write(json.dumps({"path": path, "ok": True, "error": None, "effective": effective}) + "\n")
        except Exception as exc:  # noqa: BLE001 - every failure is a verdict on the file
            out.write(json.dumps({"path": path, "ok": False, "error": f"{type(exc).__name__}: {exc}",
                                  "effective": None}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
