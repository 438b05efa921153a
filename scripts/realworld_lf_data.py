"""LLaMA-Factory's own dataset resolution for configs; run INSIDE the LLaMA-Factory environment, from the
directory it would train in (used by scripts/realworld_verdicts.py).

    python realworld_lf_data.py CONFIG.yaml...

For each file: the names in `dataset` / `eval_dataset` go through `llamafactory.data.parser.get_dataset_list`
with the config's `dataset_dir` (what the data loader does first), and each local file it names must exist
(the loader's "File ... not found"). Hub, script and cloud datasets are not fetched. Prints one JSON line
per file: {"path", "ok", "error"}.
"""

from __future__ import annotations

import json
import os
import sys


def check(path: str) -> dict:
    from llamafactory.data.parser import get_dataset_list
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(path))
    dataset_dir = cfg.get("dataset_dir", "data")
    try:
        for key in ("dataset", "eval_dataset"):
            names = [n.strip() for n in str(cfg.get(key) or "").split(",") if n.strip()]
            for attr in get_dataset_list(names, dataset_dir) if names else []:
                if attr.load_from == "file":
                    local = os.path.join(dataset_dir, attr.dataset_name)
                    if not os.path.exists(local):
                        raise ValueError(f"File {local} not found.")
    except ValueError as exc:
        return {"path": path, "ok": False, "error": f"ValueError: {exc}"}
    return {"path": path, "ok": True, "error": None}


def main(argv: list[str]) -> int:
    out = sys.stdout
    sys.stdout = sys.stderr
    for path in argv:
        out.write(json.dumps(check(path)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
