"""Recipe field -> LLaMA-Factory 0.9.5 key. ``effective`` is where ``get_train_args`` puts the parsed value
(model / data / training / finetuning arguments); defaults are LLaMA-Factory's own (hparams/*.py)."""

from __future__ import annotations

from ft_recipes.backends.keys import (
    NO_MAX_STEPS,
    Key,
    KeyTable,
    as_float,
    as_int,
    comma_list,
    invert,
    seed_set,
    split_list,
    whole,
)
from ft_recipes.backends.llamafactory.templates import TEMPLATES, resolve

STAGES = {"pt": ("pt", None), "sft": ("sft", None), "rm": ("rm", None), "ppo": ("ppo", None),
          "dpo": ("dpo", "sigmoid"), "orpo": ("dpo", "orpo"), "simpo": ("dpo", "simpo"), "kto": ("kto", None)}
FINETUNING = {"lora": "lora", "qlora": "lora", "full": "full", "freeze": "freeze", "oft": "oft"}
TEMPLATE_BACK = invert(TEMPLATES)


def _target_out(value):
    return "all" if value == "all-linear" else ",".join(value)


def _target_back(value):
    return "all-linear" if str(value) == "all" else split_list(value)


def _target_parsed(value):
    """Where get_train_args puts a target list: 'all' or the module names, as a list."""
    return ["all"] if value == "all-linear" else list(value)


def _val_size(value):
    return value if value < 1 else int(value)  # LLaMA-Factory: < 1 a fraction, an integer > 1 a row count


def _modules_back(value):
    return "all" if value == "all" else split_list(value)


def _limit_out(value):
    return None if value == "all" else value  # transformers' None: keep every checkpoint


def _limit_back(value):
    """transformers keeps every checkpoint for None (LLaMA-Factory's default) and for a limit of 0 or less."""
    value = as_int(value)
    return "all" if isinstance(value, int) and value <= 0 else value


TABLE = KeyTable([
    Key("model.base", "model_name_or_path", effective="model.model_name_or_path"),
    Key("model.template", "template", out=lambda v: resolve(v)[0], back=lambda v: TEMPLATE_BACK.get(v, v),
        when=lambda r: resolve(r.model.template)[0] is not None, value_only=True, effective="data.template"),
             # issue 17
    Key("model.trust_remote_code", "trust_remote_code", default=False, effective="model.trust_remote_code"),
    Key("model.revision", "model_revision", effective="model.model_revision"),
    Key("model.adapter", "adapter_name_or_path", out=str, effective="model.adapter_name_or_path",
        expect=lambda v: [str(v)]),
    Key("model.pad_token", "(tokenizer's pad token, else EOS; no key)", structural=True),
    Key("stage", "stage / pref_loss", structural=True),
    Key("method.type", "finetuning_type", structural=True),
    Key("method.lora.r", "lora_rank", default=8, back=as_int, effective="finetuning.lora_rank"),
    Key("method.lora.alpha", "lora_alpha", out=whole, effective="finetuning.lora_alpha"),
    Key("method.lora.dropout", "lora_dropout", default=0.0, out=as_float, effective="finetuning.lora_dropout"),
    Key("method.lora.target", "lora_target", out=_target_out, back=_target_back, default="all-linear",
        effective="finetuning.lora_target", expect=_target_parsed),
    Key("method.lora.dora", "use_dora", default=False, effective="finetuning.use_dora"),
    Key("method.lora.rslora", "use_rslora", default=False, effective="finetuning.use_rslora"),
    Key("method.lora.plus_ratio", "loraplus_lr_ratio", out=as_float, effective="finetuning.loraplus_lr_ratio"),
    Key("method.lora.plus_lr_embedding", "loraplus_lr_embedding", out=as_float,
        effective="finetuning.loraplus_lr_embedding"),
    Key("method.lora.modules_to_save", "additional_target", out=comma_list, back=split_list,
        when=lambda r: bool(r.method.lora.modules_to_save), value_only=True, effective="finetuning.additional_target",
        expect=lambda v: list(v) or None),
    Key("method.lora.init", "pissa_init", out=lambda v: v == "pissa", back=lambda v: "pissa" if v else "default",
        when=lambda r: r.method.lora.init != "default", value_only=True, effective="finetuning.pissa_init",
            expect=lambda v: v == "pissa", accepts=lambda v: v in ("default", "pissa"),
        refusal="LLaMA-Factory initialises LoRA as PEFT's default or as PiSSA (pissa_init)"),
    Key("method.oft.rank", "oft_rank", default=0, back=as_int, effective="finetuning.oft_rank"),
    Key("method.oft.block_size", "oft_block_size", default=32, back=as_int, effective="finetuning.oft_block_size"),
    Key("method.oft.target", "oft_target", out=_target_out, back=_target_back, default="all-linear",
        effective="finetuning.oft_target", expect=_target_parsed),
    Key("method.oft.dropout", "module_dropout", default=0.0, out=as_float, effective="finetuning.module_dropout"),
    Key("method.quant.bits", "quantization_bit", back=as_int, effective="model.quantization_bit"),
    Key("method.quant.type", "quantization_type", default="nf4", when=lambda r: r.method.quant.bits == 4,
        needs="method.quant.bits: 4",
        effective="model.quantization_type"),
    Key("method.quant.double_quant", "double_quantization", default=True, when=lambda r: r.method.quant.bits == 4,
        needs="method.quant.bits: 4",
        effective="model.double_quantization"),
    Key("method.quant.compute_dtype", "(from bf16 / fp16)", structural=True),
    Key("method.freeze.trainable_layers", "freeze_trainable_layers", default=2, back=as_int,
        effective="finetuning.freeze_trainable_layers"),
    Key("method.freeze.trainable_modules", "freeze_trainable_modules", out=comma_list, back=_modules_back,
        default="all", effective="finetuning.freeze_trainable_modules",
        expect=lambda v: ["all"] if v == "all" else list(v)),
    Key("preference.beta", "pref_beta", default=0.1, out=as_float, effective="finetuning.pref_beta"),
    Key("preference.ftx", "pref_ftx", default=0.0, out=as_float, effective="finetuning.pref_ftx"),
    Key("preference.simpo_gamma", "simpo_gamma", default=0.5, out=as_float, when=lambda r: r.stage == "simpo",
        needs="stage: simpo",
        effective="finetuning.simpo_gamma"),
    Key("preference.label_smoothing", "dpo_label_smoothing", default=0.0, out=as_float, when=lambda r: r.stage == "dpo",
        needs="stage: dpo", effective="finetuning.dpo_label_smoothing"),
    Key("data.train", "dataset + dataset_info.json", structural=True),
    Key("data.val.datasets", "eval_dataset + dataset_info.json", structural=True),
    Key("data.val.split", "val_size", out=_val_size, back=whole, when=lambda r: r.data.val_split > 0, value_only=True,
        effective="data.val_size", expect=float, accepts=lambda v: v != 1,
        refusal="LLaMA-Factory reads 1 as the fraction 1.0, the whole dataset; hold out 2 rows or more"),
    Key("data.max_length", "cutoff_len", default=2048, back=as_int, effective="data.cutoff_len"),
    Key("data.packing", "packing / neat_packing", structural=True),
    Key("data.overlength", "(always truncates)", structural=True),
    Key("data.train_on_prompt", "train_on_prompt", default=False, effective="data.train_on_prompt"),
    Key("data.system_prompt", "default_system", effective="data.default_system"),
    Key("data.num_workers", "preprocessing_num_workers", back=as_int, effective="data.preprocessing_num_workers"),
    Key("train.epochs", "num_train_epochs", out=as_float, default=3.0, when=lambda r: r.train.max_steps is None,
        needs=NO_MAX_STEPS, unused="note",
        effective="training.num_train_epochs"),
    Key("train.max_steps", "max_steps", structural=True),
    Key("train.micro_batch_size", "per_device_train_batch_size", default=8, back=as_int,
        effective="training.per_device_train_batch_size"),
    Key("train.grad_accum", "gradient_accumulation_steps", default=1, back=as_int,
        effective="training.gradient_accumulation_steps"),
    Key("train.lr", "learning_rate", out=as_float, back=as_float, default=5e-5, effective="training.learning_rate"),
    Key("train.scheduler", "lr_scheduler_type", default="linear", effective="training.lr_scheduler_type"),
    Key("train.min_lr", "lr_scheduler_kwargs.min_lr", out=as_float, back=as_float,
        effective="training.lr_scheduler_kwargs.min_lr"),
    Key("train.warmup_ratio", "warmup_steps (< 1: a ratio)", structural=True),
    Key("train.warmup_steps", "warmup_steps", structural=True),
    Key("train.weight_decay", "weight_decay", out=as_float, default=0.0, effective="training.weight_decay"),
    Key("train.optimizer", "optim", default="adamw_torch_fused", effective="training.optim"),
    Key("train.precision", "bf16 / fp16", structural=True),
    Key("train.gradient_checkpointing", "disable_gradient_checkpointing / use_unsloth_gc", structural=True),
    Key("train.seed", "seed", default=42, back=as_int, effective="training.seed", when=seed_set, value_only=True),
    Key("train.max_grad_norm", "max_grad_norm", out=as_float, default=1.0, effective="training.max_grad_norm"),
    Key("train.adam_beta1", "adam_beta1", out=as_float, effective="training.adam_beta1"),
    Key("train.adam_beta2", "adam_beta2", out=as_float, effective="training.adam_beta2"),
    Key("train.adam_epsilon", "adam_epsilon", out=as_float, effective="training.adam_epsilon"),
    Key("train.neftune_alpha", "neftune_noise_alpha", out=as_float, effective="training.neftune_noise_alpha"),
    Key("train.logging_steps", "logging_steps", default=500, back=as_int, effective="training.logging_steps"),
    Key("eval.every", "eval_strategy", structural=True),
    Key("eval.steps", "eval_steps", structural=True),
    Key("eval.per_epoch", "eval_steps (a fraction of the total steps)", structural=True),
    Key("eval.batch_size", "per_device_eval_batch_size", structural=True),
    Key("output.dir", "output_dir", structural=True),
    Key("output.save", "save_strategy", structural=True),
    Key("output.save_steps", "save_steps", structural=True),
    Key("output.per_epoch", "save_steps (a fraction of the total steps)", structural=True),
    Key("output.save_total_limit", "save_total_limit", out=_limit_out, back=_limit_back, default="all",
        effective="training.save_total_limit"),
    Key("output.report_to", "report_to", structural=True),
    Key("output.run_name", "run_name", effective="training.run_name"),
    Key("hardware.deepspeed", "deepspeed", structural=True),
])


# LLaMA-Factory keys no recipe field carries that change what is trained when set (Backend.changes_training).
CHANGES_TRAINING = frozenset({
    "use_dft_loss", "use_eaft_loss", "use_asft_loss", "fp8", "use_badam", "use_galore", "use_apollo",
    "use_adam_mini", "use_muon", "mask_history", "label_smoothing_factor", "resize_vocab", "add_tokens",
    "add_special_tokens", "rope_scaling", "shift_attn", "upcast_layernorm", "upcast_lmhead_output",
    "kto_chosen_weight", "kto_rejected_weight", "freeze_extra_modules", "create_new_adapter",
    "mix_strategy", "interleave_probs", "disable_shuffling", "moe_aux_loss_coef", "enable_thinking",
})

# The tags of each chat format's usual names (sharegpt from/value/human/gpt, messages role/content/user/assistant).
# Every tag is written: once an entry has `tags`, LLaMA-Factory takes each tag it does not name as None (not its
# default), and a turn whose role matches no tag drops the whole row (tool turns included).
USUAL_TAGS = {"sharegpt": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                           "system_tag": "system", "observation_tag": "observation", "function_tag": "function_call"},
              "messages": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                           "assistant_tag": "assistant", "system_tag": "system", "observation_tag": "tool"}}
