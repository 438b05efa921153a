"""The typed, immutable recipe that every later stage (lint, emit, explain, run) works on.

Each field is documented once, in its ``help`` metadata; the JSON Schema carries the same words for
editors. Values here are explicit: defaults are filled in by ``normalise``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

Stage = Literal["pt", "sft", "rm", "dpo", "orpo", "kto", "simpo", "ppo", "grpo"]
MethodType = Literal["full", "freeze", "lora", "qlora", "prefix", "ptuning", "prompt", "oft"]
Format = Literal["alpaca", "sharegpt", "messages", "preference", "text"]
Precision = Literal["bf16", "fp16", "fp32"]

PREFERENCE_STAGES = ("dpo", "orpo", "kto", "simpo")
ADAPTER_METHODS = ("lora", "qlora")
PROMPT_METHODS = ("prefix", "ptuning", "prompt")
PEFT_ADAPTERS = (*ADAPTER_METHODS, "oft")  # methods whose result is a PEFT adapter saved beside the base


def _f(default=None, help: str = "", **kw):
    if "default_factory" in kw:
        return field(metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Model:
    base: str = _f("", "Hub id or local path (absolute) of the base model.")
    template: Optional[str] = _f(None, "ftr chat template name; None = the tokenizer's own.")
    pad_token: Optional[str] = _f(None, "'eos' or a token string; None = not declared.")
    trust_remote_code: bool = _f(False, "Allow code from the model repository.")
    params: Optional[float] = _f(None, "Parameter count in billions, when declared.")
    revision: Optional[str] = _f(None, "Model revision.")
    is_local: bool = _f(False, "base is a local directory.")
    adapter: Optional[Path] = _f(None, "Absolute path of a PEFT adapter to continue training (a pipeline stage's from:).")


@dataclass(frozen=True)
class Lora:
    r: int = _f(16, "LoRA rank.")
    alpha: float = _f(32, "LoRA alpha.")
    dropout: float = _f(0.05, "LoRA dropout.")
    target: tuple[str, ...] | str = _f("all-linear", "'all-linear' or module names.")
    dora: bool = _f(False, "DoRA.")
    rslora: bool = _f(False, "rsLoRA scaling.")
    modules_to_save: tuple[str, ...] = _f((), "Modules trained fully and saved with the adapter.")
    init: str = _f("default", "Weight initialisation: default, pissa, olora or gaussian.")
    plus_ratio: Optional[float] = _f(None, "LoRA+: learning rate of the B matrices = lr x this (None: off).")
    plus_lr_embedding: Optional[float] = _f(None, "LoRA+: learning rate of LoRA embedding layers (None: 1e-6).")


@dataclass(frozen=True)
class Quant:
    bits: int = _f(4, "4 or 8.")
    type: str = _f("nf4", "nf4 or fp4 (4-bit only).")
    double_quant: bool = _f(True, "Double quantization.")
    compute_dtype: str = _f("bf16", "Compute dtype of quantized layers.")


@dataclass(frozen=True)
class Freeze:
    trainable_layers: int = _f(2, "Last N layers trained (negative: first N).")
    trainable_modules: tuple[str, ...] | str = _f("all", "'all' or module names.")


@dataclass(frozen=True)
class Oft:
    rank: int = _f(0, "OFT rank (blocks per layer); 0 = derived from block_size.")
    block_size: int = _f(32, "OFT block size; 0 = derived from rank.")
    target: tuple[str, ...] | str = _f("all-linear", "'all-linear' or module names.")
    dropout: float = _f(0.0, "OFT module dropout.")


@dataclass(frozen=True)
class PromptLearning:
    num_virtual_tokens: int = _f(20, "Virtual tokens.")
    encoder_hidden_size: int = _f(128, "P-Tuning encoder hidden size.")


@dataclass(frozen=True)
class Method:
    type: MethodType = _f("lora", "Fine-tuning method.")
    lora: Optional[Lora] = _f(None, "Set for lora and qlora.")
    quant: Optional[Quant] = _f(None, "Set for qlora, or 8-bit LoRA.")
    freeze: Optional[Freeze] = _f(None, "Set for freeze.")
    prompt: Optional[PromptLearning] = _f(None, "Set for prefix, ptuning and prompt.")
    oft: Optional[Oft] = _f(None, "Set for oft.")

    @property
    def is_adapter(self) -> bool:
        """A LoRA-family method (lora, qlora)."""
        return self.type in ADAPTER_METHODS

    @property
    def saves_adapter(self) -> bool:
        """The result is a PEFT adapter beside the base model (LoRA or OFT), to continue or merge."""
        return self.type in PEFT_ADAPTERS


@dataclass(frozen=True)
class Preference:
    beta: float = _f(0.1, "Preference beta.")
    ftx: float = _f(0.0, "Extra SFT loss weight.")
    simpo_gamma: float = _f(0.5, "SimPO margin.")


@dataclass(frozen=True)
class Dataset:
    format: Format = _f("alpaca", "Row format.")
    path: Optional[Path] = _f(None, "Absolute local path.")
    hub: Optional[str] = _f(None, "Hub dataset id.")
    name: str = _f("", "Registered name (unique in the recipe).")
    columns: tuple[tuple[str, str], ...] = _f((), "Standard column -> file column.")
    split: str = _f("train", "Split to read.")
    subset: Optional[str] = _f(None, "Hub dataset configuration (load_dataset's name).")
    num_samples: Optional[int] = _f(None, "Use only the first N rows.")
    key_path: tuple = _f((), "Where it was declared in the recipe (for findings).")

    def column(self, standard: str) -> str:
        return dict(self.columns).get(standard, standard)

    @property
    def is_preference(self) -> bool:
        return self.format == "preference"


@dataclass(frozen=True)
class Data:
    train: tuple[Dataset, ...] = _f((), "Training datasets.")
    val_split: float = _f(0.0, "Held-out fraction (< 1) or row count (>= 1); 0 = none.")
    val: tuple[Dataset, ...] = _f((), "Separate validation datasets.")
    max_length: int = _f(2048, "Maximum tokens per example.")
    packing: bool = _f(False, "Pack examples.")
    overlength: Literal["truncate", "drop"] = _f("truncate", "Over-long examples.")
    train_on_prompt: bool = _f(False, "Loss on prompt tokens too.")
    system_prompt: Optional[str] = _f(None, "Default system prompt.")
    num_workers: Optional[int] = _f(None, "Preprocessing processes.")

    @property
    def has_validation(self) -> bool:
        return self.val_split > 0 or bool(self.val)


@dataclass(frozen=True)
class Train:
    lr: float = _f(1e-4, "Peak learning rate.")
    epochs: Optional[float] = _f(3.0, "Epochs; None when max_steps decides.")
    max_steps: Optional[int] = _f(None, "Optimizer steps.")
    micro_batch_size: int = _f(1, "Per-device batch.")
    grad_accum: int = _f(1, "Gradient accumulation.")
    scheduler: str = _f("cosine", "LR schedule.")
    min_lr: Optional[float] = _f(None, "Final LR of cosine_with_min_lr.")
    warmup_ratio: Optional[float] = _f(0.03, "Warmup fraction (None when warmup_steps is set).")
    warmup_steps: Optional[int] = _f(None, "Warmup steps.")
    weight_decay: float = _f(0.0, "Weight decay.")
    optimizer: str = _f("adamw_torch", "Optimizer.")
    precision: Precision = _f("bf16", "Precision.")
    gradient_checkpointing: bool | str = _f(True, "Gradient checkpointing; 'offload': activations kept in CPU memory.")
    seed: int = _f(42, "Seed.")
    max_grad_norm: float = _f(1.0, "Gradient clipping.")
    adam_beta1: Optional[float] = _f(None, "Adam beta1 (None: the trainer's 0.9).")
    adam_beta2: Optional[float] = _f(None, "Adam beta2 (None: the trainer's 0.999).")
    adam_epsilon: Optional[float] = _f(None, "Adam epsilon (None: the trainer's 1e-8).")
    neftune_alpha: Optional[float] = _f(None, "NEFTune noise on the input embeddings (None: off).")
    logging_steps: int = _f(10, "Log every N steps.")


@dataclass(frozen=True)
class Eval:
    strategy: Literal["epoch", "steps", "no"] = _f("no", "When to evaluate.")
    steps: Optional[int] = _f(None, "Every N steps.")
    per_epoch: Optional[int] = _f(None, "N times per epoch.")
    batch_size: Optional[int] = _f(None, "Per-device eval batch; None = micro batch.")


@dataclass(frozen=True)
class Output:
    dir: Path = _f(Path("runs/out"), "Absolute output directory.")
    save: Literal["epoch", "steps", "no"] = _f("epoch", "When to checkpoint.")
    save_steps: Optional[int] = _f(None, "Every N steps.")
    per_epoch: Optional[int] = _f(None, "N saves per epoch.")
    save_total_limit: Union[int, Literal["all"]] = _f(2, "Checkpoints kept (all: every one).")
    report_to: tuple[str, ...] = _f((), "Trackers.")
    run_name: Optional[str] = _f(None, "Run name.")
    wandb_project: Optional[str] = _f(None, "W&B project.")


@dataclass(frozen=True)
class Hardware:
    gpus: int = _f(1, "GPUs per node.")
    nodes: int = _f(1, "Nodes.")
    gpu_memory_gb: Optional[float] = _f(None, "Memory per GPU.")
    bf16: bool = _f(True, "GPUs support bf16.")
    deepspeed: Optional[str] = _f(None, "zero2 / zero3 / zero3_offload / path.")
    launcher: Optional[str] = _f(None, "local (default), slurm, skypilot or ray.")
    partition: Optional[str] = _f(None, "SLURM partition.")
    account: Optional[str] = _f(None, "SLURM account.")
    time: Optional[str] = _f(None, "Time limit (SLURM --time).")
    cpus_per_node: Optional[int] = _f(None, "CPUs per node.")
    container: Optional[str] = _f(None, "Container image of the nodes.")
    setup: tuple[str, ...] = _f((), "Shell lines run on every node before the launch.")
    sbatch: tuple[str, ...] = _f((), "Extra sbatch options.")
    accelerator: Optional[str] = _f(None, "GPU type for SkyPilot.")
    cloud: Optional[str] = _f(None, "SkyPilot cloud.")
    ray_address: Optional[str] = _f(None, "Ray dashboard address.")
    port: Optional[int] = _f(None, "Rendezvous port (default 29500).")


@dataclass(frozen=True)
class Recipe:
    model: Model
    stage: Stage
    method: Method
    data: Data
    train: Train
    eval: Eval
    output: Output
    hardware: Hardware
    preference: Optional[Preference] = None
    backends: dict = field(default_factory=dict, compare=False)
    lint_ignore: tuple[str, ...] = ()
    source_file: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    provenance: dict = field(default_factory=dict, compare=False, repr=False)
    stage_name: Optional[str] = None  # set for a stage of a pipeline (ft_recipes.stages)
    parent: Optional["Recipe"] = field(default=None, compare=False, repr=False)  # the stage it starts from

    def where(self, path: tuple) -> tuple[str, int, int]:
        """(file, line, col) where the value at ``path`` (or its nearest parent) was written."""
        path = tuple(path)
        while path:
            src = self.provenance.get(path)
            if src is not None:
                return src.file, src.line, src.col
            path = path[:-1]
        return self.source_file, 1, 1

    @property
    def is_preference(self) -> bool:
        return self.stage in PREFERENCE_STAGES or self.stage == "rm"

    @property
    def effective_batch(self) -> int:
        return self.train.micro_batch_size * self.train.grad_accum * max(self.hardware.gpus, 1) * self.hardware.nodes
