"""The effective values of LLaMA-Factory configs, each parsed from the directory it runs in, with the paths it
opens resolved there. Runs INSIDE the LLaMA-Factory environment (the conversion oracle,
tests/backends/test_conversion_oracle.py).

    python compare_helper.py < JOBS.jsonl

Each input line is {"cwd": DIR, "path": CONFIG}: the config is parsed by ``get_train_args`` from DIR; a key
whose package this environment lacks (plot_loss needs matplotlib, deepspeed the deepspeed package: the
real-world verdicts are checked without them too) is taken out before parsing and reported as written.
Prints one JSON line per job: {"path", "ok", "error", "effective"}: effective_helper.py's sections plus
"datasets" / "eval_datasets" (LLaMA-Factory's own dataset_info reading: every DatasetAttr, a local file as
its real path), media_dir, output_dir and deepspeed as absolute paths from DIR and the DeepSpeed JSON they name.
Imports LLaMA-Factory once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from effective_helper import _fields, _plain  # noqa: E402 - the sibling helper, same environment

OPTIONAL = {"plot_loss": "matplotlib", "deepspeed": "deepspeed"}  # key -> the package it needs


def without() -> list[str]:
    import importlib.util

    return [key for key, package in OPTIONAL.items() if importlib.util.find_spec(package) is None]


def resolved(value):
    """A path as the backend opens it from the working directory (None stays None)."""
    return os.path.realpath(value) if isinstance(value, str) and value else value


def json_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError, TypeError):
        return None


def datasets(names, dataset_dir) -> list[dict]:
    from llamafactory.data.parser import get_dataset_list

    out = []
    for attr in get_dataset_list(names, dataset_dir):
        fields = {f.name: _plain(getattr(attr, f.name, None)) for f in dataclasses.fields(attr)}
        if attr.load_from == "file":
            fields["dataset_name"] = resolved(os.path.join(dataset_dir, attr.dataset_name))
        out.append(fields)
    return out


def effective(cfg: dict, model, data, training, finetuning) -> dict:
    result = {"model": _fields(model), "data": _fields(data), "training": _fields(training),
              "finetuning": _fields(finetuning)}
    result["data"]["media_dir"] = resolved(data.media_dir)  # opened from the working directory
    result["training"]["output_dir"] = resolved(cfg.get("output_dir"))
    result["training"]["logging_dir"] = None  # output_dir/runs: a temp dir while parsing
    result["training"]["deepspeed"] = resolved(cfg.get("deepspeed"))
    result["deepspeed_config"] = json_file(cfg.get("deepspeed"))
    result["datasets"] = datasets(data.dataset, data.dataset_dir)
    result["eval_datasets"] = datasets(data.eval_dataset, data.dataset_dir)
    return result


def parse(job: dict, tmp_root: str) -> dict:
    from llamafactory.hparams import get_train_args
    from omegaconf import OmegaConf

    path = job["path"]
    try:
        os.chdir(job["cwd"])
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        parsed = dict(cfg)
        for key in without():
            parsed.pop(key, None)
        parsed["output_dir"] = tempfile.mkdtemp(dir=tmp_root)
        model, data, training, finetuning, _ = get_train_args(parsed)
        result = effective(cfg, model, data, training, finetuning)
        result["without"] = {key: cfg.get(key) for key in without()}
        return {"path": path, "ok": True, "error": None, "effective": result}
    except SystemExit as exc:
        return {"path": path, "ok": False, "error": f"SystemExit: {exc.code}", "effective": None}
    except Exception as exc:  # noqa: BLE001 - every failure is a verdict on the file
        return {"path": path, "ok": False, "error": f"{type(exc).__name__}: {exc}", "effective": None}


def main() -> int:
    out = sys.stdout
    sys.stdout = sys.stderr  # LLaMA-Factory and transformers log to stdout
    import llamafactory.hparams.parser as parser
    import transformers.training_args as training_args

    training_args.is_torch_bf16_gpu_available = lambda *a, **k: True
    parser.is_torch_bf16_gpu_available = lambda *a, **k: True
    with tempfile.TemporaryDirectory(prefix="ftr-lf-compare-") as tmp_root:
        for line in sys.stdin:
            if line.strip():
                out.write(json.dumps(parse(json.loads(line), tmp_root)) + "\n")
                out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
