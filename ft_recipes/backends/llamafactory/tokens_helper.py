"""Tokenize the first rows of a compiled LLaMA-Factory config with LLaMA-Factory's own data pipeline,
without training. Runs INSIDE the backend environment:

    python tokens_helper.py CONFIG.yaml [CONFIG.yaml ...] N

Prints one line per row (../tokens_rows.py); for preference data two lines per row, "part" "chosen" then
"rejected" (prompt + that response).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: its llamafactory/, axolotl/, trl/ are ftr's
from tokens_rows import run_each  # noqa: E402  (ftr's backends folder, standard library only)

ORIGINAL_TEMPLATES: dict = {}


def fresh_templates() -> None:
    """LLaMA-Factory's get_template_and_fix_tokenizer writes the config's default_system and tool_format into its
    global template registry: each config of a batch starts from the registry as it was at import."""
    import copy

    from llamafactory.data.template import TEMPLATES

    if not ORIGINAL_TEMPLATES:
        ORIGINAL_TEMPLATES.update(copy.deepcopy(TEMPLATES))
    TEMPLATES.clear()
    TEMPLATES.update(copy.deepcopy(ORIGINAL_TEMPLATES))


def tokenize(path: str, n: int, show) -> None:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer
    from omegaconf import OmegaConf

    fresh_templates()

    cfg = OmegaConf.to_container(OmegaConf.load(path))
    limit = min(n, cfg.get("max_samples") or n)  # the recipe's own row limit, if lower, still applies
    cfg.update({"output_dir": tempfile.mkdtemp(), "val_size": 0.0, "max_samples": limit, "bf16": False,
                "fp16": False, "overwrite_cache": True, "preprocessing_num_workers": None, "do_eval": False,
                "eval_strategy": "no", "eval_dataset": None, "report_to": "none",
                "packing": False, "neat_packing": False})  # the rows one by one, as the other helpers show them
    cfg = {k: v for k, v in cfg.items() if v is not None}
    model_args, data_args, training_args, finetuning_args, _ = get_train_args(cfg)
    tokenizer_module = load_tokenizer(model_args)
    tokenizer = tokenizer_module["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    stage = "rm" if finetuning_args.stage == "dpo" else finetuning_args.stage  # as train/dpo/workflow.py does
    module = get_dataset(template, model_args, data_args, training_args, stage=stage, **tokenizer_module)
    for row in list(module["train_dataset"])[:n]:
        if "chosen_input_ids" in row:  # preference pairs (stage rm/dpo): one line per side
            for part in ("chosen", "rejected"):
                show(tokenizer, row[f"{part}_input_ids"], row[f"{part}_labels"], part)
        else:
            ids = list(row["input_ids"])
            kto = {True: "desirable", False: "undesirable"}.get(row.get("kto_tags"), "")
            show(tokenizer, ids, row.get("labels", ids), kto)


if __name__ == "__main__":
    os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
    run_each(tokenize)
