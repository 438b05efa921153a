"""Recipe field -> Axolotl 0.19 key. ``effective`` is the key in the config after Axolotl's own
``validate_config`` + ``normalize_config``; defaults are Axolotl's (utils/schemas/config.py)."""

from __future__ import annotations

from ft_recipes.backends.axolotl.templates import chat_template_keys
from ft_recipes.backends.keys import Key, KeyTable, as_float, as_int, seed_set, whole
from ft_recipes.recipe.model import UNSET_SEED

RL = {"dpo": "dpo", "orpo": "orpo", "kto": "kto", "simpo": "simpo", "grpo": "grpo"}
CPU_FLAGS = {"lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False,
             "lora_embedding_kernel": False}
INIT = ("pissa", "olora", "gaussian")  # PEFT init_lora_weights values Axolotl passes through


def _overlength_back(value):
    return "truncate" if value == "truncate" else "drop"


# loaders/tokenizer.py (0.19 and 0.21): applied only as a replacement of that text in the chatml template
IGNORED_SYSTEM = ("Axolotl never uses default_system_message: it only replaces 'You are a helpful assistant.' in "
                  "its chatml template, which has no such text")


def _limit_out(value):
    """Axolotl turns an empty or 0 save_total_limit into 4; a negative one reaches transformers, which keeps
    every checkpoint for it."""
    return -1 if value == "all" else value


def _limit_back(value):
    value = as_int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        return "all" if value < 0 else 4
    return value


TABLE = KeyTable([
    Key("model.base", "base_model", effective="base_model"),
    Key("model.template", "chat_template", structural=True, effective="chat_template",
        expect=lambda v: chat_template_keys(v)["chat_template"]),  # issue 17: the template that renders the same
    Key("model.trust_remote_code", "trust_remote_code", default=False, effective="trust_remote_code"),
    Key("model.revision", "revision_of_model", effective="revision_of_model"),
    Key("model.adapter", "lora_model_dir", out=str, effective="lora_model_dir"),
    Key("model.pad_token", "special_tokens.pad_token", structural=True),
    Key("stage", "rl / reward_model", structural=True),
    Key("method.type", "adapter", structural=True),
    Key("method.lora.r", "lora_r", back=as_int, effective="lora_r"),
    Key("method.lora.alpha", "lora_alpha", out=whole, effective="lora_alpha"),
    Key("method.lora.dropout", "lora_dropout", default=0.0, out=as_float, effective="lora_dropout"),
    Key("method.lora.target", "lora_target_linear / lora_target_modules", structural=True),
    Key("method.lora.dora", "peft_use_dora", default=False, effective="peft_use_dora"),
    Key("method.lora.rslora", "peft_use_rslora", default=False, effective="peft_use_rslora"),
    Key("method.lora.plus_ratio", "loraplus_lr_ratio", out=as_float, effective="loraplus_lr_ratio"),
    Key("method.lora.plus_lr_embedding", "loraplus_lr_embedding", out=as_float, effective="loraplus_lr_embedding"),
    Key("method.lora.modules_to_save", "lora_modules_to_save", out=list, back=list,
        when=lambda r: bool(r.method.lora.modules_to_save), value_only=True, effective="lora_modules_to_save",
        expect=lambda v: list(v) or None),
    Key("method.lora.init", "peft_init_lora_weights", when=lambda r: r.method.lora.init != "default", value_only=True,
        back=lambda v: "default" if v is True else v, effective="peft_init_lora_weights",
        expect=lambda v: None if v == "default" else v, accepts=lambda v: v == "default" or v in INIT,
        refusal="Axolotl passes PEFT's init_lora_weights: " + ", ".join(INIT)),
    Key("method.quant.bits", "load_in_4bit / load_in_8bit", structural=True),
    Key("method.quant.type", "bnb_config_kwargs.bnb_4bit_quant_type", structural=True),
    Key("method.quant.double_quant", "bnb_config_kwargs.bnb_4bit_use_double_quant", structural=True),
    Key("method.quant.compute_dtype", "(from bf16 / fp16)", structural=True),
    Key("method.freeze.trainable_layers", "unfrozen_parameters", structural=True),
    Key("method.freeze.trainable_modules", "unfrozen_parameters", structural=True),
    Key("preference.beta", "rl_beta / orpo_alpha", structural=True),
    Key("preference.ftx", "(none: no SFT term)", structural=True, accepts=lambda v: not v,
        refusal="Axolotl's preference trainers add no SFT loss term"),
    Key("preference.simpo_gamma", "simpo_gamma", default=0.5, out=as_float, when=lambda r: r.stage == "simpo",
        needs="stage: simpo",
        effective="simpo_gamma"),
    Key("preference.label_smoothing", "dpo_label_smoothing", out=as_float, when=lambda r: r.stage == "dpo",
        needs="stage: dpo", effective="dpo_label_smoothing"),
    Key("data.train", "datasets", structural=True),
    Key("data.val.datasets", "test_datasets", structural=True),
    Key("data.val.split", "val_set_size", structural=True, effective="val_set_size", expect=float),
    Key("data.max_length", "sequence_len", default=512, back=as_int, effective="sequence_len"),
    Key("data.packing", "sample_packing", default=False, effective="sample_packing"),
    Key("data.overlength", "excess_length_strategy", back=_overlength_back, default="drop",
        effective="excess_length_strategy"),
    Key("data.train_on_prompt", "train_on_inputs", default=False, effective="train_on_inputs"),
    # default_system_message is a no-op (IGNORED_SYSTEM): the emitter writes the system turn into the rows it
    # rewrites and refuses the rest
    Key("data.system_prompt", "a system turn in each rewritten row", structural=True),
    Key("data.num_workers", "dataset_num_proc", back=as_int, effective="dataset_num_proc"),
    # under max_steps, Axolotl still divides by num_epochs to turn saves/evals_per_epoch into steps
    Key("train.epochs", "num_epochs", out=as_float, default=1.0,
        when=lambda r: r.train.max_steps is None or bool(r.output.per_epoch or r.eval.per_epoch),
        needs="no train.max_steps, or a per_epoch cadence (a step count decides how long training runs)",
        unused="note",
        effective="num_epochs"),
    Key("train.max_steps", "max_steps", back=as_int, effective="max_steps"),
    Key("train.micro_batch_size", "micro_batch_size", default=1, back=as_int, effective="micro_batch_size"),
    Key("train.grad_accum", "gradient_accumulation_steps", default=1, back=as_int,
        effective="gradient_accumulation_steps"),
    Key("train.lr", "learning_rate", out=as_float, back=as_float, effective="learning_rate"),
    Key("train.scheduler", "lr_scheduler", structural=True, effective="lr_scheduler",
        expect=lambda v: "cosine" if v == "cosine_with_min_lr" else v),
    Key("train.min_lr", "cosine_min_lr_ratio (min_lr / lr)", structural=True),
    Key("train.warmup_ratio", "warmup_ratio", structural=True, effective="warmup_ratio"),
    Key("train.warmup_steps", "warmup_steps", structural=True, effective="warmup_steps"),
    Key("train.weight_decay", "weight_decay", out=as_float, default=0.0, effective="weight_decay"),
    Key("train.optimizer", "optimizer", default="adamw_torch_fused", effective="optimizer"),
    Key("train.precision", "bf16 / fp16", structural=True),
    Key("train.gradient_checkpointing", "gradient_checkpointing / activation_offloading", structural=True),
    # absent: the trainer's 42 but unseeded data shuffles (a validator sets 42 only on a written null)
    Key("train.seed", "seed", default=UNSET_SEED, back=as_int, effective="seed", when=seed_set, value_only=True),
    Key("train.max_grad_norm", "max_grad_norm", out=as_float, default=1.0, effective="max_grad_norm"),
    Key("train.adam_beta1", "adam_beta1", out=as_float, effective="adam_beta1"),
    Key("train.adam_beta2", "adam_beta2", out=as_float, effective="adam_beta2"),
    Key("train.adam_epsilon", "adam_epsilon", out=as_float, effective="adam_epsilon"),
    Key("train.neftune_alpha", "neftune_noise_alpha", out=as_float, effective="neftune_noise_alpha"),
    Key("train.logging_steps", "logging_steps", back=as_int, effective="logging_steps"),
    Key("eval.every", "eval_strategy", structural=True),
    Key("eval.steps", "eval_steps", structural=True),
    Key("eval.per_epoch", "evals_per_epoch", structural=True),
    Key("eval.batch_size", "eval_batch_size", structural=True),
    Key("output.dir", "output_dir", structural=True),
    Key("output.save", "save_strategy", structural=True),
    Key("output.save_steps", "save_steps", structural=True),
    Key("output.per_epoch", "saves_per_epoch", structural=True),
    Key("output.save_total_limit", "save_total_limit", out=_limit_out, back=_limit_back, default=4,
        effective="save_total_limit"),
    Key("output.report_to", "use_wandb / use_tensorboard / use_mlflow", structural=True),
    Key("output.run_name", "wandb_name", effective="wandb_name"),
    Key("output.wandb_project", "wandb_project", effective="wandb_project"),
    Key("hardware.deepspeed", "deepspeed", structural=True),
])


# Axolotl keys no recipe field carries that change what is trained when set (Backend.changes_training).
CHANGES_TRAINING = frozenset({
    "qat", "lora_target_parameters", "tokens", "added_tokens_overrides", "resize_token_embeddings_to_32x",
    "cosine_constant_lr_ratio", "quantize_moe_experts", "model_quantization_config",
    "model_quantization_config_kwargs", "embedding_lr", "embedding_lr_scale", "lr_groups",
    "dpo_use_weighting", "dpo_norm_loss", "rpo_alpha", "kto_desirable_weight", "kto_undesirable_weight",
    "peft_layers_to_transform", "use_onebitllms", "relora", "reinit_weights", "lisa_n_layers", "cpo_alpha",
    "curriculum_sampling", "dataset_exact_deduplication", "unfrozen_parameters",
})

# Per-dataset keys of chat data the importer does not read, with the value ftr's compiled config means (what
# Axolotl's chat_template strategy defaults to); another value changes which tokens are trained or which rows.
DATASET_CHANGES_TRAINING = {
    "roles_to_train": ["assistant"], "train_on_eos": "turn", "train_on_eot": None, "drop_system_message": None,
    "message_field_training": None, "message_field_training_detail": None, "chat_template": None,
    "chat_template_jinja": None, "shards": None, "shards_idx": None, "revision": None, "field_thinking": None,
    "split_thinking": None,
}
