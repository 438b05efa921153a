"""The llamafactory backend: LLaMA-Factory 0.9.5 (``llamafactory-cli train``)."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.base import Approximation, Backend, Capabilities, NativeCheck, compute_dtype_differs
from ft_recipes.backends.keys import seed_set
from ft_recipes.backends.llamafactory.keys import CHANGES_TRAINING, TABLE
from ft_recipes.backends.llamafactory.templates import known, resolve
from ft_recipes.recipe.model import ADAPTER_METHODS

HERE = Path(__file__).parent


def _env(version: str):
    from ft_recipes.backends.interface import EnvSpec

    return EnvSpec(name="llamafactory", version=version, python="3.11", lock=HERE / "lock.txt",
                   import_name="llamafactory", cli="llamafactory-cli",
                   # PyPI's torchaudio links CUDA libs; LF imports it unconditionally but needs no native op
                   prune=("torchaudio/lib/*.so",))




def _closest_template(recipe) -> bool:
    try:
        return recipe.model.template is not None and resolve(recipe.model.template)[1] is not None
    except KeyError:
        return False


APPROXIMATIONS = (
    Approximation("train.seed", "train.seed is unset (an Axolotl config without seed, whose data shuffles are "
                                "unseeded): LLaMA-Factory seeds its trainer and data shuffles with 42",
                  lambda r: not seed_set(r)),
    Approximation("model.template", "LLaMA-Factory has no template that renders like this Axolotl template; ftr "
                                    "uses the closest by text (docs/templates.md)", _closest_template),
    Approximation("data.max_length", "LLaMA-Factory packs sequences of data.max_length - 1 tokens",
                  lambda r: r.data.packing and r.stage != "pt"),  # pt packs by default, without the - 1
    # LLaMA-Factory 0.9.5 data/processor/pretrain.py; trl 1.9 packs with its "bfd" strategy, Axolotl with multipack
    Approximation("data.packing", "LLaMA-Factory packs pretraining text by concatenating all the texts and cutting "
                                  "the stream into blocks (a text may span two blocks; the last partial block is "
                                  "dropped); Axolotl and trl pack whole rows",
                  lambda r: r.data.packing and r.stage == "pt", fields=()),
    Approximation("train.gradient_checkpointing", "LLaMA-Factory offloads the checkpointed activations with "
                                                  "unsloth's checkpointing (use_unsloth_gc), Axolotl and trl with "
                                                  "activation offloading: the same gradients, other memory and "
                                                  "speed", lambda r: r.train.gradient_checkpointing == "offload"),
    Approximation("method.quant.compute_dtype",
                  "LLaMA-Factory derives the 4-bit compute dtype from the training precision, not from "
                  "method.quant.compute_dtype", compute_dtype_differs),
    Approximation("model.pad_token", "LLaMA-Factory has no pad-token key: it uses the tokenizer's pad token, or EOS "
                                     "when there is none", lambda r: r.model.pad_token not in (None, "eos")),
    Approximation("data.val.split", "LLaMA-Factory shuffles (seeded) before holding out validation rows; Axolotl "
                                    "takes them without shuffling: the rows differ", lambda r: r.data.val_split > 0,
                  fields=(), cross=True),
)


def _steps(cfg: dict, key: str, default):
    value = cfg.get(key, default)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _best_model_steps(cfg: dict) -> bool:
    """transformers' TrainingArguments: load_best_model_at_end with step-wise saving needs save_steps to be a
    whole multiple of eval_steps (which default to logging_steps, default 500)."""
    if not cfg.get("load_best_model_at_end") or cfg.get("save_strategy", "steps") != "steps" \
            or cfg.get("eval_strategy") != "steps":
        return False
    save, evals = _steps(cfg, "save_steps", 500), _steps(cfg, "eval_steps", _steps(cfg, "logging_steps", 500))
    return bool(save and evals and save >= 1 and evals >= 1 and save % evals)


EVALUATES = ("do_predict", "do_eval", "predict_with_generate", "eval_strategy")


def _evaluates(cfg: dict) -> bool:
    """get_train_args evaluates or predicts: do_eval/do_predict/predict_with_generate, or an eval_strategy other than
    "no" (transformers then sets do_eval itself)."""
    return any(cfg.get(key) for key in EVALUATES[:3]) or cfg.get("eval_strategy") not in (None, "no")


def _no_eval_data(cfg: dict) -> bool:
    """get_train_args: evaluating or predicting needs eval_dataset or a val_size above 1e-6."""
    val_size = cfg.get("val_size", 0.0)
    no_split = not isinstance(val_size, (int, float)) or isinstance(val_size, bool) or val_size < 1e-6
    return _evaluates(cfg) and not cfg.get("eval_dataset") and no_split


def _checkpointing_off(cfg: dict) -> bool:
    """LLaMA-Factory turns gradient checkpointing on itself (model_utils/checkpointing.py) unless
    disable_gradient_checkpointing is set; the Trainer's own flag only ever turns it on."""
    return cfg.get("gradient_checkpointing") is False and not cfg.get("disable_gradient_checkpointing")


NATIVE_CHECKS = (
    NativeCheck("gradient_checkpointing",
                "gradient_checkpointing: false has no effect: LLaMA-Factory enables gradient checkpointing unless "
                "disable_gradient_checkpointing is true",
                "to turn it off, set disable_gradient_checkpointing: true", _checkpointing_off),
    NativeCheck("save_steps",
                "load_best_model_at_end needs save_steps to be a whole multiple of eval_steps: LLaMA-Factory "
                "(transformers) refuses to start",
                "make save_steps a multiple of eval_steps (eval_steps defaults to logging_steps)", _best_model_steps),
    NativeCheck("eval_dataset", "evaluation or prediction without evaluation data: LLaMA-Factory refuses to start "
                "(\"Please make sure eval_dataset be provided or val_size >1e-6\")",
                "set eval_dataset, or val_size (a share of the training rows)", _no_eval_data,
                at=lambda cfg: next((k for k in EVALUATES if cfg.get(k)), "eval_dataset")),
)

def _names(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# get_train_args checks no types: these string keys go through split_arg, which keeps a list as it is, and
# transformers' Trainer reads resume_from_checkpoint: false as "do not resume", true as "the newest checkpoint".
SPLIT_LISTS = ("dataset", "eval_dataset", "freeze_trainable_modules", "freeze_extra_modules", "lora_target",
               "oft_target", "additional_target", "galore_target", "apollo_target")
ALSO_ACCEPTS = {**dict.fromkeys(SPLIT_LISTS, _names), "resume_from_checkpoint": lambda value: isinstance(value, bool)}

BACKEND = Backend(
    name="llamafactory", version="0.9.5", title="LLaMA-Factory", main="llamafactory.yaml",
    capabilities=Capabilities(
        stages=frozenset({"pt", "sft", "rm", "ppo", "dpo", "orpo", "simpo", "kto"}),
        methods=frozenset({"full", "freeze", "oft", *ADAPTER_METHODS}),
        templates=frozenset(known())),  # issue 17: any LF name, axolotl:NAME, tokenizer
    keys=TABLE, emitter="ft_recipes.backends.llamafactory.emit", oracle="ft_recipes.backends.llamafactory.oracle",
    templates="ft_recipes.backends.llamafactory.templates", rows="ft_recipes.backends.llamafactory.rows",
    approximations=APPROXIMATIONS, decides={"dataset_info": "data.train"},
    markers=("model_name_or_path", "finetuning_type", "cutoff_len", "lora_rank", "dataset_dir", "template"),
    importer="ft_recipes.backends.llamafactory.importer", launcher="ft_recipes.backends.llamafactory.launch",
    env=_env, folder=HERE, unknown_key_fate="LLaMA-Factory refuses to start", native_checks=NATIVE_CHECKS,
    changes_training=CHANGES_TRAINING, also_accepts=ALSO_ACCEPTS)
