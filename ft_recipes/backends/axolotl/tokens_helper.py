"""Tokenize the first rows of a compiled Axolotl config with Axolotl's own preprocessing, without
training. Runs INSIDE the backend environment:

    python tokens_helper.py CONFIG.yaml [CONFIG.yaml ...] N

Prints one line per row (../tokens_rows.py); for preference data two lines per row, "part" "chosen" then
"rejected" (prompt + that response).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: its llamafactory/, axolotl/, trl/ are ftr's
from tokens_rows import run_each  # noqa: E402  (ftr's backends folder, standard library only)


def tokenize(path: str, n: int, show) -> None:
    from axolotl.cli.config import load_cfg
    from axolotl.common.datasets import load_datasets
    from axolotl.loaders import load_tokenizer

    cfg = yaml.safe_load(open(path, encoding="utf-8"))
    cfg.update({"val_set_size": 0.0, "dataset_prepared_path": tempfile.mkdtemp(), "output_dir": tempfile.mkdtemp(),
                "bf16": False, "fp16": False, "sample_packing": False, "dataset_num_proc": 1,
                "shuffle_merged_datasets": False})
    for key in ("test_datasets", "eval_steps", "eval_strategy", "evals_per_epoch"):
        cfg.pop(key, None)
    tmp = os.path.join(tempfile.mkdtemp(), "cfg.yaml")
    with open(tmp, "w", encoding="utf-8") as handle:
        yaml.safe_dump(cfg, handle)
    parsed = load_cfg(tmp)
    tokenizer = load_tokenizer(parsed)
    if parsed.rl == "kto":
        unpaired(parsed, tokenizer, n, show)
        return
    if parsed.rl:
        preference(parsed, tokenizer, n, show)
        return
    meta = load_datasets(cfg=parsed)
    for row in list(meta.train_dataset)[:n]:
        ids = list(row["input_ids"])
        show(tokenizer, ids, row.get("labels", ids), "")


def preference(parsed, tokenizer, n: int, show) -> None:
    """Axolotl prepares prompt/chosen/rejected; trl's DPOTrainer tokenizes them (its own _prepare_dataset) and its
    collator trains prompt + response with the response unmasked: shown as input_ids/labels per side."""
    from trl import DPOConfig, DPOTrainer

    for row in trl_prepared(parsed, tokenizer, n, DPOTrainer, DPOConfig, "train"):
        prompt = list(row["prompt_ids"])
        for part in ("chosen", "rejected"):
            response = list(row[f"{part}_ids"])
            show(tokenizer, prompt + response, [-100] * len(prompt) + response, part)


def unpaired(parsed, tokenizer, n: int, show) -> None:
    """KTO: Axolotl prepares prompt/completion/label rows; trl's KTOTrainer tokenizes them (its own _prepare_dataset)
    and trains the completion, the prompt masked: shown per row as desirable or undesirable."""
    from trl import KTOConfig, KTOTrainer

    # calculate_KL off: the KL pairs are other rows' completions
    for row in trl_prepared(parsed, tokenizer, n, KTOTrainer, KTOConfig, "ftr-tokens", calculate_KL=False):
        prompt, completion = list(row["prompt_ids"]), list(row["completion_ids"])
        show(tokenizer, prompt + completion, [-100] * len(prompt) + completion,
             "desirable" if row["label"] else "undesirable")


def trl_prepared(parsed, tokenizer, n: int, trainer_class, config_class, name: str, **attributes):
    """The first ``n`` rows Axolotl loads for an RL config, through ``trainer_class``'s own _prepare_dataset (only
    its dataset preparation is used: no model is loaded)."""
    from axolotl.common.datasets import load_preference_datasets

    dataset = first_rows(load_preference_datasets(cfg=parsed).train_dataset, n)
    trainer = trainer_class.__new__(trainer_class)
    trainer._tokenizer = tokenizer
    for key, value in attributes.items():
        setattr(trainer, key, value)
    args = config_class(output_dir=tempfile.mkdtemp(), dataset_num_proc=None, max_length=None, report_to=[],
                        bf16=False, use_cpu=True)
    return trainer_class._prepare_dataset(trainer, dataset, tokenizer, args, name)


def first_rows(dataset, n: int):
    return dataset.select(range(min(n, len(dataset))))


if __name__ == "__main__":
    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    run_each(tokenize)
