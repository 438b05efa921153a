"""Tokenize the first rows of a compiled trl.json with the generated train.py's own data path and trl's own
preprocessing, without loading the model. Runs INSIDE the trl environment:

    python tokens_helper.py TRL.json [TRL.json ...] N

train.py (next to TRL.json) reads the rows and builds the tokenizer; trl's SFTTrainer._prepare_dataset renders,
tokenizes and builds the labels (assistant_only_loss / completion_only_loss) as training does, or, for DPO,
DPOTrainer._prepare_dataset tokenizes prompt, chosen and rejected (the response trained, the prompt masked).
Prints one line per row (../tokens_rows.py); for preference data two lines per row, "part" "chosen" then
"rejected" (prompt + that response).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # last: its llamafactory/, axolotl/, trl/ are ftr's
from tokens_rows import run_each  # noqa: E402  (ftr's backends folder, standard library only)


def load_script(config: Path):
    spec = importlib.util.spec_from_file_location("ftr_train_script", config.with_name("train.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def tokenize(path: str, n: int, show) -> None:
    config = Path(path)
    script = load_script(config)
    cfg = json.loads(config.read_text(encoding="utf-8"))
    cfg["args"].update({"output_dir": tempfile.mkdtemp(), "report_to": "none", "bf16": False, "fp16": False,
                        "use_cpu": True, "dataset_num_proc": None, "eval_strategy": "no", "deepspeed": None})
    cfg["args"].pop("eval_steps", None)
    cfg.update({"val": [], "val_split": 0.0, "packing": False})  # the first rows in order, unpacked
    tokenizer = script.load_tokenizer(cfg)
    dataset = script.build_dataset(cfg["train"], cfg)
    dataset = dataset.select(range(min(n, len(dataset))))
    args = script.training_args(cfg)
    if cfg["stage"] == "dpo":
        preference(dataset, tokenizer, args, show)
    else:
        supervised(dataset, tokenizer, args, show)


def supervised(dataset, tokenizer, args, show) -> None:
    """SFTTrainer's own preparation; the attributes its __init__ derives first, with trl's own functions."""
    from trl import SFTTrainer
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    trainer = SFTTrainer.__new__(SFTTrainer)  # only its dataset preparation is used: no model is loaded
    trainer._tokenizer, trainer._is_vlm = tokenizer, False
    sample = dataset[0]
    trainer.completion_only_loss = ("prompt" in sample and "completion" in sample
                                    if args.completion_only_loss is None else args.completion_only_loss)
    needs_markers = args.assistant_only_loss and not has_generation_markers(tokenizer.chat_template)
    trainer.chat_template = get_training_chat_template(tokenizer) if needs_markers else None
    prepared = SFTTrainer._prepare_dataset(trainer, dataset, tokenizer, args, False, None, "train")
    for row in prepared:
        show(tokenizer, row["input_ids"], row.get("labels", row["input_ids"]), "")


def preference(dataset, tokenizer, args, show) -> None:
    """DPOTrainer's own tokenization; its collator trains prompt + response with the response unmasked."""
    from trl import DPOTrainer

    trainer = DPOTrainer.__new__(DPOTrainer)  # only its dataset preparation is used: no model is loaded
    trainer._tokenizer = tokenizer
    for row in DPOTrainer._prepare_dataset(trainer, dataset, tokenizer, args, "train"):
        prompt = list(row["prompt_ids"])
        for part in ("chosen", "rejected"):
            response = list(row[f"{part}_ids"])
            show(tokenizer, prompt + response, [-100] * len(prompt) + response, part)


if __name__ == "__main__":
    run_each(tokenize)
