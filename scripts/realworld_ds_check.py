"""The DeepSpeed config check both backends' trainers do at start-up (transformers hands `deepspeed` to
accelerate's HfDeepSpeedConfig); run INSIDE a backend environment, from the directory it would train in
(used by scripts/realworld_verdicts.py). Neither validator does it on a host without deepspeed installed.

    python realworld_ds_check.py CONFIG.yaml...

A string `deepspeed` value must name an existing JSON file (or be inline / base64 JSON). Prints one JSON line
per file: {"path", "ok", "error"}.
"""

from __future__ import annotations

import json
import sys


def check(path: str) -> dict:
    import yaml
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    value = cfg.get("deepspeed") if isinstance(cfg, dict) else None
    if isinstance(value, str) and value.strip():
        try:
            HfDeepSpeedConfig(value)
        except (ValueError, OSError) as exc:
            return {"path": path, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"path": path, "ok": True, "error": None}


def main(argv: list[str]) -> int:
    out = sys.stdout
    sys.stdout = sys.stderr
    for path in argv:
        out.write(json.dumps(check(path)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
