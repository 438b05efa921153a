"""Recipe field -> the trl backend's ``trl.json`` key. ``args.*`` become SFTConfig / DPOConfig arguments,
``method.lora.*`` peft's LoraConfig; ``effective`` is where ``train.py --print-config`` shows the built
config objects (``args``: the trl config's to_dict(), ``peft``: the peft config, ``config``: trl.json as read)."""

from __future__ import annotations

from ft_recipes.backends.keys import NO_MAX_STEPS, Key, KeyTable, as_float, seed_set, whole

LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
INIT = {"default": True, "pissa": "pissa", "olora": "olora", "gaussian": "gaussian"}


def _modules(target):
    """A recipe target ('all-linear' or names) as the module list peft gets."""
    return LINEAR if target == "all-linear" else list(target)


TABLE = KeyTable([
    Key("model.base", "model", effective="config.model"),
    Key("model.template", "template", effective="config.template"),
    Key("model.pad_token", "pad_token", effective="config.pad_token"),
    Key("model.trust_remote_code", "trust_remote_code", effective="config.trust_remote_code"),
    Key("model.adapter", "adapter", out=str, effective="config.adapter"),
    Key("stage", "stage", structural=True),
    Key("method.type", "method.type", structural=True),
    Key("method.lora.r", "method.lora.r", effective="peft.r"),
    Key("method.lora.alpha", "method.lora.alpha", out=whole, effective="peft.lora_alpha"),
    Key("method.lora.dropout", "method.lora.dropout", out=as_float, effective="peft.lora_dropout"),
    Key("method.lora.target", "method.lora.target", out=_modules,
        effective="peft.target_modules", expect=lambda v: sorted(_modules(v))),
    Key("method.lora.dora", "method.lora.dora", effective="peft.use_dora"),
    Key("method.lora.rslora", "method.lora.rslora", effective="peft.use_rslora"),
    Key("method.lora.modules_to_save", "method.lora.modules_to_save", out=list, effective="peft.modules_to_save",
        expect=lambda v: list(v) or None),
    Key("method.lora.init", "method.lora.init", out=INIT.get, effective="peft.init_lora_weights"),
    Key("method.oft.rank", "method.oft.rank", effective="peft.r"),
    Key("method.oft.block_size", "method.oft.block_size", effective="peft.oft_block_size"),
    Key("method.oft.target", "method.oft.target", out=_modules,
        effective="peft.target_modules", expect=lambda v: sorted(_modules(v))),
    Key("method.oft.dropout", "method.oft.dropout", out=as_float, effective="peft.module_dropout"),
    Key("method.quant.bits", "quant.bits", effective="config.quant.bits"),
    Key("method.quant.type", "quant.type", effective="config.quant.type"),
    Key("method.quant.double_quant", "quant.double_quant", effective="config.quant.double_quant"),
    Key("method.quant.compute_dtype", "quant.compute_dtype", effective="config.quant.compute_dtype"),
    Key("method.prompt.num_virtual_tokens", "method.prompt.num_virtual_tokens", effective="peft.num_virtual_tokens"),
    Key("method.prompt.encoder_hidden_size", "method.prompt.encoder_hidden_size",
        when=lambda r: r.method.type == "ptuning", needs="method.type: ptuning", effective="peft.encoder_hidden_size"),
    Key("preference.beta", "beta", out=as_float, when=lambda r: r.stage == "dpo", needs="stage: dpo",
        effective="args.beta"),
    Key("preference.label_smoothing", "args.label_smoothing", out=as_float, when=lambda r: r.stage == "dpo",
        needs="stage: dpo", effective="args.label_smoothing"),
    Key("data.train", "train", structural=True),
    Key("data.val.datasets", "val", structural=True),
    Key("data.val.split", "val_split", effective="config.val_split"),
    Key("data.max_length", "max_length", effective="args.max_length"),
    Key("data.packing", "packing", when=lambda r: r.stage != "dpo",
        needs="a stage other than dpo (trl's DPOTrainer does not pack)", effective="args.packing"),
    Key("data.overlength", "(truncates)", structural=True, accepts=lambda v: v == "truncate",
        refusal="trl truncates over-long examples"),
    Key("data.train_on_prompt", "args.assistant_only_loss (args.completion_only_loss without a generated template)",
        structural=True),
    Key("data.system_prompt", "system_prompt", effective="config.system_prompt"),
    Key("data.num_workers", "args.dataset_num_proc", effective="args.dataset_num_proc"),
    Key("train.epochs", "args.num_train_epochs", out=as_float, when=lambda r: r.train.max_steps is None,
        needs=NO_MAX_STEPS,
        unused="note",
        effective="args.num_train_epochs"),
    Key("train.max_steps", "args.max_steps", effective="args.max_steps"),
    Key("train.micro_batch_size", "args.per_device_train_batch_size", effective="args.per_device_train_batch_size"),
    Key("train.grad_accum", "args.gradient_accumulation_steps", effective="args.gradient_accumulation_steps"),
    Key("train.lr", "args.learning_rate", out=as_float, effective="args.learning_rate"),
    Key("train.scheduler", "args.lr_scheduler_type", effective="args.lr_scheduler_type"),
    Key("train.min_lr", "args.lr_scheduler_kwargs.min_lr", out=as_float, effective="args.lr_scheduler_kwargs.min_lr"),
    Key("train.warmup_ratio", "args.warmup_steps (< 1: a ratio)", structural=True),
    Key("train.warmup_steps", "args.warmup_steps", structural=True, effective="args.warmup_steps"),
    Key("train.weight_decay", "args.weight_decay", out=as_float, effective="args.weight_decay"),
    Key("train.optimizer", "args.optim", effective="args.optim"),
    Key("train.precision", "args.bf16 / args.fp16", structural=True),
    Key("train.gradient_checkpointing", "args.gradient_checkpointing", structural=True),
    Key("train.seed", "args.seed", effective="args.seed", when=seed_set, value_only=True),
    Key("train.max_grad_norm", "args.max_grad_norm", out=as_float, effective="args.max_grad_norm"),
    Key("train.adam_beta1", "args.adam_beta1", out=as_float, effective="args.adam_beta1"),
    Key("train.adam_beta2", "args.adam_beta2", out=as_float, effective="args.adam_beta2"),
    Key("train.adam_epsilon", "args.adam_epsilon", out=as_float, effective="args.adam_epsilon"),
    Key("train.neftune_alpha", "args.neftune_noise_alpha", out=as_float, effective="args.neftune_noise_alpha"),
    Key("train.logging_steps", "args.logging_steps", effective="args.logging_steps"),
    Key("eval.every", "args.eval_strategy", structural=True),
    Key("eval.steps", "args.eval_steps", structural=True),
    Key("eval.batch_size", "args.per_device_eval_batch_size", structural=True),
    # once per epoch is the epoch strategy (normalise folds it); more often has no trl setting
    Key("eval.per_epoch", "args.eval_strategy", structural=True, accepts=lambda v: v == 1,
        refusal="trl evaluates every N steps or once per epoch, not N times per epoch"),
    Key("output.per_epoch", "args.save_strategy", structural=True, accepts=lambda v: v == 1,
        refusal="trl saves every N steps or once per epoch, not N times per epoch"),
    Key("output.dir", "args.output_dir", out=str, effective="args.output_dir"),
    Key("output.save", "args.save_strategy", effective="args.save_strategy"),
    Key("output.save_steps", "args.save_steps", when=lambda r: r.output.save == "steps", needs="output.save: steps",
        effective="args.save_steps"),
    Key("output.save_total_limit", "args.save_total_limit", out=lambda v: None if v == "all" else v,
        effective="args.save_total_limit"),  # None: transformers keeps every checkpoint
    Key("output.report_to", "args.report_to", structural=True),
    Key("output.run_name", "args.run_name", effective="args.run_name"),
    Key("hardware.deepspeed", "args.deepspeed", structural=True),
])
