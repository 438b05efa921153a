"""The typed, immutable recipe that every later stage (lint, emit, explain, run) works on.

Each field is documented once, in its ``help`` metadata; the JSON Schema carries the same words for
editors. Values here are explicit: defaults are filled in by ``normalise``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Optional, Union, get_args

Stage = Literal["pt", "sft", "rm", "dpo", "orpo", "kto", "simpo", "ppo", "grpo"]
MethodType = Literal["full", "freeze", "lora", "qlora", "prefix", "ptuning", "prompt", "oft"]
Format = Literal["alpaca", "sharegpt", "messages", "preference", "text"]
Precision = Literal["bf16", "fp16", "fp32"]

PREFERENCE_STAGES = ("dpo", "orpo", "kto", "simpo")
ADAPTER_METHODS = ("lora", "qlora")
PROMPT_METHODS = ("prefix", "ptuning", "prompt")
PEFT_ADAPTERS = (*ADAPTER_METHODS, "oft")  # methods whose result is a PEFT adapter saved beside the base


# The sections a stage or method uses (normalise builds them, importers read their rows); "optional" ones are
# also used whenever a recipe writes them (8-bit LoRA's method.quant, preference settings under sft).
SECTION_USE = {
    "method.lora": lambda stage, method: method in ADAPTER_METHODS,
    "method.quant": lambda stage, method: method == "qlora",
    "method.freeze": lambda stage, method: method == "freeze",
    "method.prompt": lambda stage, method: method in PROMPT_METHODS,
    "method.oft": lambda stage, method: method == "oft",
    "preference": lambda stage, method: stage in PREFERENCE_STAGES,
}
OPTIONAL_SECTIONS = ("method.quant", "preference")
# Written fields that normalise folds into another field rather than keeping (``per_epoch: 1`` is the epoch
# strategy): an empty typed value there is the same training, not a dropped value.
FOLDED = {"output.per_epoch": "output.save", "eval.per_epoch": "eval.strategy"}


def sections_used(stage: str, method: str, written: set[str] = frozenset()) -> set[str]:
    """The sections a recipe of this stage and method uses, with the optional ones it wrote."""
    return {name for name, used in SECTION_USE.items()
            if used(stage, method) or (name in OPTIONAL_SECTIONS and name in written)}


def _f(default=None, help: str = "", *, yaml: str | None = None, spellings: tuple[str, ...] = (), **schema):
    """A recipe field, declared once: its default, its help (the schema's description and the docs), its YAML
    name where it differs (``yaml``), other spellings users bring from the backends (did-you-mean), and its JSON
    Schema keywords. ``schemas/recipe.schema.json`` is generated from these
    (``python -m ft_recipes.cli.schema_gen``)."""
    return field(default=default, metadata={"help": help, "yaml": yaml, "spellings": spellings, "schema": schema})


def _internal(default=None, help: str = ""):
    """A field normalise derives (not written in a recipe, not in the schema)."""
    return field(default=default, metadata={"help": help, "internal": True})


TARGET = {"oneOf": [{"const": "all-linear"},
                    {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}]}
COLUMNS = ("instruction", "input", "output", "system", "history", "messages", "tools", "role", "content", "user",
           "assistant", "chosen", "rejected", "prompt", "text", "kto_tag")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial",
              "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit",
              "paged_adamw_32bit", "adafactor", "sgd", "lion_8bit", "paged_lion_8bit", "adamw_torch_4bit",
              "adamw_torch_8bit")
TRACKERS = ("wandb", "tensorboard", "mlflow")


@dataclass(frozen=True)
class Model:
    SCHEMA: ClassVar[dict] = {"description": "The base model.", "required": ["base"]}

    base: str = _f("", "Hub id or local path of the base model.", type='string', minLength=1,
                   spellings=('base_model', 'model_name_or_path'))
    template: Optional[str] = _f(
        None,
        "Chat template name (ftr names: chatml, qwen, llama3, mistral, gemma, alpaca, ...; mapped per backend).",
        type='string', spellings=('chat_template',))
    pad_token: Optional[str] = _f(
        None,
        "Pad token: 'eos' to reuse the EOS token, or the token string.",
        type='string')
    trust_remote_code: bool = _f(False, "Allow running code from the model repository.", type='boolean')
    params: Optional[float] = _f(
        None,
        "Parameter count in billions (for the VRAM estimate when the model is unknown).",
        type='number', exclusiveMinimum=0)
    revision: Optional[str] = _f(None, "Model revision (branch, tag or commit).", type='string')
    is_local: bool = _internal(False, "base is a local directory.")
    adapter: Optional[Path] = _f(
        None,
        "Local path of a PEFT (LoRA) adapter to continue training on top of model.base; a pipeline stage's "
        "`from:` sets it (docs/pipelines.md).",
        type='string', minLength=1)


@dataclass(frozen=True)
class Lora:
    r: int = _f(16, "LoRA rank.", type='integer', minimum=1, spellings=('lora_rank', 'lora_r', 'rank'))
    alpha: float = _f(32, "LoRA alpha (scaling numerator).", type='number', exclusiveMinimum=0,
                      spellings=('lora_alpha',))
    dropout: float = _f(0.05, "LoRA dropout.", type='number', minimum=0, maximum=1, spellings=('lora_dropout',))
    target: tuple[str, ...] | str = _f(
        "all-linear",
        "Modules to adapt: 'all-linear' or a list of module names.",
        **TARGET, spellings=('lora_target', 'lora_target_modules', 'target_modules'))
    dora: bool = _f(False, "Use DoRA (weight-decomposed LoRA).", type='boolean', spellings=('use_dora',))
    rslora: bool = _f(False, "Use rank-stabilised LoRA scaling alpha/sqrt(r).", type='boolean',
                      spellings=('use_rslora',))
    modules_to_save: tuple[str, ...] = _f(
        (),
        "Extra modules trained fully and saved with the adapter (e.g. embed_tokens, lm_head).",
        type='array', items={'type': 'string'})
    init: str = _f(
        "default",
        "LoRA weight initialisation: PEFT's default, PiSSA (principal singular values), OLoRA (QR) or Gaussian A.",
        enum=['default', 'pissa', 'olora', 'gaussian'])
    plus_ratio: Optional[float] = _f(
        None,
        "LoRA+ (Hayou et al. 2024): the B matrices learn at lr x plus_ratio (the paper suggests 16); off when "
        "absent.",
        type='number', exclusiveMinimum=0)
    plus_lr_embedding: Optional[float] = _f(
        None,
        "LoRA+: learning rate of LoRA's embedding layers (the backends' default 1e-6).",
        type='number', exclusiveMinimum=0)


@dataclass(frozen=True)
class Quant:
    bits: int = _f(4, "Quantization bits.", enum=[4, 8], spellings=('quantization_bit', 'load_in_4bit'))
    type: str = _f("nf4", "4-bit quantization data type.", enum=['nf4', 'fp4'])
    double_quant: bool = _f(True, "Quantize the quantization constants too.", type='boolean')
    compute_dtype: str = _f("bf16", "Compute dtype of the 4-bit layers.", enum=['bf16', 'fp16', 'fp32'])


@dataclass(frozen=True)
class Freeze:
    trainable_layers: int = _f(
        2,
        "Number of last (positive) or first (negative) layers to train.",
        type='integer', **{'not': {'const': 0}})
    trainable_modules: tuple[str, ...] | str = _f(
        "all",
        "Modules trained in those layers: 'all' or a list.",
        oneOf=[{'const': 'all'}, {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1}])


@dataclass(frozen=True)
class Oft:
    rank: int = _f(
        0,
        "OFT rank: the number of blocks per layer (0: derived from block_size).",
        type='integer', minimum=0)
    block_size: int = _f(32, "OFT block size (0: derived from rank).", type='integer', minimum=0)
    target: tuple[str, ...] | str = _f(
        "all-linear",
        "Modules to adapt: 'all-linear' or a list of module names.",
        **TARGET)
    dropout: float = _f(0.0, "OFT module dropout.", type='number', minimum=0, maximum=1)


@dataclass(frozen=True)
class PromptLearning:
    num_virtual_tokens: int = _f(20, "Number of virtual tokens.", type='integer', minimum=1)
    encoder_hidden_size: int = _f(128, "P-Tuning prompt encoder hidden size.", type='integer', minimum=1)


@dataclass(frozen=True)
class Method:
    SCHEMA: ClassVar[dict] = {"description": "How the weights are trained."}

    type: MethodType = _f(
        "lora",
        "Fine-tuning method. prefix (Prefix Tuning / P-Tuning v2), ptuning (P-Tuning) and prompt (prompt tuning) "
        "need --backend trl; oft (orthogonal fine-tuning, a PEFT adapter) needs --backend llamafactory or trl.",
        enum=list(get_args(MethodType)), spellings=('finetuning_type', 'adapter'))
    lora: Optional[Lora] = _f(None, "LoRA settings (lora and qlora).")
    quant: Optional[Quant] = _f(None, "bitsandbytes quantization of the base model.")
    freeze: Optional[Freeze] = _f(None, "Freeze tuning settings.")
    prompt: Optional[PromptLearning] = _f(None, "Virtual-token settings for prefix, ptuning and prompt methods.")
    oft: Optional[Oft] = _f(
        None,
        "OFT settings (method.type: oft). PEFT needs exactly one of rank and block_size non-zero.")

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
    SCHEMA: ClassVar[dict] = {"description": "Preference-optimisation settings (stages dpo, orpo, kto, simpo, rm)."}

    beta: float = _f(0.1, "DPO/ORPO/KTO/SimPO beta.", type='number', exclusiveMinimum=0)
    ftx: float = _f(0.0, "Weight of an extra SFT loss in preference training.", type='number', minimum=0)
    simpo_gamma: float = _f(0.5, "SimPO target reward margin.", type='number', minimum=0)
    label_smoothing: float = _f(0.0, "DPO label smoothing: the probability that a preference label is flipped "
                                     "(conservative DPO; 0 = off).", type='number', minimum=0, maximum=0.5)


@dataclass(frozen=True)
class Dataset:
    SCHEMA: ClassVar[dict] = {"required": ["format"], "description": "One dataset.",
                              "oneOf": [{"required": ["path"]}, {"required": ["hub"]}]}

    format: Format = _f(
        "alpaca",
        "Row format: alpaca (instruction/input/output), sharegpt (conversations with from/value), messages "
        "(OpenAI role/content), preference (prompt with chosen/rejected), text (raw text for pretraining).",
        enum=list(get_args(Format)))
    path: Optional[Path] = _f(
        None,
        "Local data file (jsonl, json, csv, parquet, arrow, txt) or directory, relative to the recipe file.",
        type='string', minLength=1)
    hub: Optional[str] = _f(
        None,
        "A Hugging Face Hub dataset id instead of a local path.",
        type='string', minLength=1)
    name: str = _f(
        "",
        "Name used to register the dataset (LLaMA-Factory dataset_info.json). Default: derived from the file "
        "name.",
        type='string', pattern='^[A-Za-z0-9_.-]+$')
    columns: tuple[tuple[str, str], ...] = _f(
        (),
        "Map the format's standard column names to the names used in the file, e.g. {instruction: question, "
        "output: answer}.",
        type='object', propertyNames={'enum': list(COLUMNS)}, additionalProperties={'type': 'string'})
    split: str = _f("train", "Split to read (default train).", type='string')
    subset: Optional[str] = _f(
        None,
        "Hub dataset configuration (the `name` of datasets.load_dataset, e.g. `en` of allenai/c4).",
        type='string', minLength=1)
    num_samples: Optional[int] = _f(None, "Use only the first N rows.", type='integer', minimum=1)
    key_path: tuple = _internal((), "Where it was declared in the recipe (for findings).")

    def column(self, standard: str) -> str:
        return dict(self.columns).get(standard, standard)

    @property
    def is_preference(self) -> bool:
        return self.format == "preference"


@dataclass(frozen=True)
class Data:
    SCHEMA: ClassVar[dict] = {"required": ["train"], "description": "Training and validation data."}
    GROUPS: ClassVar[dict] = {"val": {
        "description": "Validation data: {split: 0.1} (fraction, or row count when > 1) or {datasets: [...]}.",
        "minProperties": 1, "maxProperties": 1}}

    train: tuple[Dataset, ...] = _f(
        (),
        "Training datasets.",
        type='array', minItems=1, items={'$ref': '#/$defs/dataset'}, spellings=('datasets', 'dataset'))
    val_split: float = _f(
        0.0,
        "Fraction (< 1) or row count (>= 1) held out from training.",
        yaml='val.split', type='number', exclusiveMinimum=0, spellings=('val_size', 'val_set_size'))
    val: tuple[Dataset, ...] = _f(
        (),
        "Separate validation datasets.",
        yaml='val.datasets', type='array', minItems=1, items={'$ref': '#/$defs/dataset'})
    max_length: int = _f(2048, "Maximum tokens per example.", type='integer', minimum=8,
                         spellings=('cutoff_len', 'sequence_len', 'max_seq_length'))
    packing: bool = _f(
        False,
        "Pack several examples into one sequence (examples do not attend to each other where the backend supports"
        " it).",
        type='boolean', spellings=('sample_packing',))
    overlength: Literal["truncate", "drop"] = _f(
        "truncate",
        "What to do with examples longer than max_length.",
        enum=['truncate', 'drop'])
    train_on_prompt: bool = _f(
        False,
        "Also compute the loss on prompt tokens (default: assistant/response tokens only).",
        type='boolean')
    system_prompt: Optional[str] = _f(None, "System prompt added to rows that have none.", type='string')
    num_workers: Optional[int] = _f(None, "Processes for data preprocessing.", type='integer', minimum=1)

    @property
    def has_validation(self) -> bool:
        return self.val_split > 0 or bool(self.val)


UNSET_SEED = "unset"  # train.seed: no seed written, each backend's own default


@dataclass(frozen=True)
class Train:
    SCHEMA: ClassVar[dict] = {"description": "The training loop."}

    lr: float = _f(1e-4, "Peak learning rate.", type='number', exclusiveMinimum=0, spellings=('learning_rate',))
    epochs: Optional[float] = _f(3.0, "Number of epochs.", type='number', exclusiveMinimum=0,
                                 spellings=('num_epochs', 'num_train_epochs'))
    max_steps: Optional[int] = _f(
        None,
        "Stop after this many optimizer steps (overrides epochs).",
        type='integer', minimum=1)
    micro_batch_size: int = _f(1, "Examples per device per step.", type='integer', minimum=1,
                               spellings=('per_device_train_batch_size', 'batch_size'))
    grad_accum: int = _f(1, "Gradient accumulation steps.", type='integer', minimum=1,
                         spellings=('gradient_accumulation_steps',))
    scheduler: str = _f(
        "cosine",
        "Learning-rate schedule.",
        enum=list(SCHEDULERS), spellings=('lr_scheduler', 'lr_scheduler_type'))
    min_lr: Optional[float] = _f(
        None,
        "Final learning rate of cosine_with_min_lr (absolute; below train.lr).",
        type='number', minimum=0)
    warmup_ratio: Optional[float] = _f(
        0.03,
        "Warmup as a fraction of the total steps.",
        type='number', minimum=0, maximum=1)
    warmup_steps: Optional[int] = _f(None, "Warmup in steps (instead of warmup_ratio).", type='integer', minimum=0)
    weight_decay: float = _f(0.0, "AdamW weight decay.", type='number', minimum=0)
    optimizer: str = _f(
        "adamw_torch",
        "Optimizer (Hugging Face names).",
        enum=list(OPTIMIZERS), spellings=('optim',))
    precision: Precision = _f(
        "bf16",
        "Training precision (mixed precision for bf16/fp16).",
        enum=list(get_args(Precision)), spellings=('bf16', 'fp16'))
    gradient_checkpointing: bool | str = _f(
        True,
        "Recompute activations in the backward pass to save memory; 'offload' also keeps the checkpointed "
        "activations in CPU memory.",
        oneOf=[{'type': 'boolean'}, {'const': 'offload'}])
    seed: int | str = _f(
        42,
        "Random seed. 'unset': no seed written, each backend's own default (Axolotl: 42 for the trainer and unseeded "
        "data shuffles; LLaMA-Factory and trl: 42), what an imported Axolotl file without `seed` means.",
        oneOf=[{'type': 'integer', 'minimum': 0}, {'const': 'unset'}])
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.", type='number', minimum=0)
    adam_beta1: Optional[float] = _f(
        None,
        "Adam/AdamW beta1 (the trainers' default 0.9); every Adam-family optimizer reads it.",
        type='number', minimum=0, exclusiveMaximum=1)
    adam_beta2: Optional[float] = _f(
        None,
        "Adam/AdamW beta2 (the trainers' default 0.999).",
        type='number', minimum=0, exclusiveMaximum=1)
    adam_epsilon: Optional[float] = _f(
        None,
        "Adam/AdamW epsilon (the trainers' default 1e-8).",
        type='number', exclusiveMinimum=0)
    neftune_alpha: Optional[float] = _f(
        None,
        "NEFTune: noise of this scale added to the input embeddings while training (transformers' "
        "neftune_noise_alpha; typical 5).",
        type='number', exclusiveMinimum=0)
    logging_steps: int = _f(10, "Log every N steps.", type='integer', minimum=1)

    @property
    def seed_value(self) -> int:
        """The seed the backends use: ``unset`` is their shared default, 42."""
        return 42 if self.seed == UNSET_SEED else self.seed


@dataclass(frozen=True)
class Eval:
    SCHEMA: ClassVar[dict] = {"description": "Evaluation: the cadence during training, and what `ftr eval` runs after."}

    strategy: Literal["epoch", "steps", "no"] = _f(
        "no",
        "When to evaluate: each epoch, every `steps` steps, or never.",
        yaml='every', enum=['epoch', 'steps', 'no'])
    steps: Optional[int] = _f(None, "Evaluate every N steps (implies every: steps).", type='integer', minimum=1)
    per_epoch: Optional[int] = _f(
        None,
        "Evaluate N times per epoch (implies every: steps).",
        type='integer', minimum=1)
    batch_size: Optional[int] = _f(None, "Evaluation batch size per device.", type='integer', minimum=1)
    tasks: tuple[str, ...] = _f(
        (),
        "What `ftr eval` runs after training, on the tuned model and its base: lm-evaluation-harness task names, or "
        "task YAML files / folders (relative to the recipe; local JSONL through dataset_path: json).",
        type='array', items={'type': 'string', 'minLength': 1})
    limit: Optional[float] = _f(
        None,
        "`ftr eval`: rows per task (a fraction when below 1); also caps the held-out generations.",
        type='number', exclusiveMinimum=0)
    num_fewshot: Optional[int] = _f(None, "`ftr eval`: few-shot examples per task.", type='integer', minimum=0)


@dataclass(frozen=True)
class Output:
    SCHEMA: ClassVar[dict] = {"description": "Where results go."}

    dir: Path = _f(Path("runs/out"), "Output directory, relative to the recipe file.", type='string', minLength=1,
                   spellings=('output_dir',))
    save: Literal["epoch", "steps", "no"] = _f("epoch", "When to save checkpoints.", enum=['epoch', 'steps', 'no'])
    save_steps: Optional[int] = _f(None, "Save every N steps (implies save: steps).", type='integer', minimum=1)
    per_epoch: Optional[int] = _f(None, "Save N times per epoch (implies save: steps).", type='integer', minimum=1)
    save_total_limit: Union[int, Literal["all"]] = _f(
        2,
        "Keep at most N checkpoints, or all of them (the default of LLaMA-Factory and trl).",
        oneOf=[{'type': 'integer', 'minimum': 1}, {'const': 'all'}])
    report_to: tuple[str, ...] = _f(
        (),
        "Experiment trackers: none, wandb, tensorboard, mlflow.",
        oneOf=[{'enum': ['none', *TRACKERS]}, {'type': 'array', 'items': {'enum': list(TRACKERS)}}])
    run_name: Optional[str] = _f(None, "Run name for trackers.", type='string')
    wandb_project: Optional[str] = _f(None, "Weights & Biases project.", type='string')


@dataclass(frozen=True)
class Hardware:
    SCHEMA: ClassVar[dict] = {"description": "Where the run happens."}

    gpus: int = _f(1, "GPUs per node.", type='integer', minimum=0)
    nodes: int = _f(1, "Nodes.", type='integer', minimum=1)
    gpu_memory_gb: Optional[float] = _f(
        None,
        "Memory per GPU in GB (for the VRAM check).",
        type='number', exclusiveMinimum=0)
    bf16: bool = _f(True, "Whether the GPUs support bf16 (default: true).", type='boolean')
    deepspeed: Optional[str] = _f(
        None,
        "DeepSpeed: zero2, zero3, zero3_offload or a path to a DeepSpeed JSON config.",
        type='string')
    launcher: Optional[str] = _f(
        None,
        "Where `ftr run` starts the run: this machine (local, the default), a SLURM job, a SkyPilot cluster or a "
        "Ray cluster.",
        enum=['local', 'slurm', 'skypilot', 'ray'])
    partition: Optional[str] = _f(None, "SLURM partition (#SBATCH --partition).", type='string', minLength=1)
    account: Optional[str] = _f(None, "SLURM account charged (#SBATCH --account).", type='string', minLength=1)
    time: Optional[str] = _f(
        None,
        "Time limit: MINUTES, HH:MM:SS or D-HH:MM:SS (#SBATCH --time).",
        type='string', pattern='^([0-9]+-)?[0-9]+(:[0-9]{2}){0,2}$')
    cpus_per_node: Optional[int] = _f(
        None,
        "CPUs per node (SLURM --cpus-per-task, SkyPilot cpus).",
        type='integer', minimum=1)
    container: Optional[str] = _f(
        None,
        "Container image the nodes run in (SLURM pyxis --container-image, SkyPilot image_id).",
        type='string', minLength=1)
    setup: tuple[str, ...] = _f(
        (),
        "Shell lines run on every node before the launch, e.g. `module load cuda/12.4` or `source "
        "/opt/venv/bin/activate`.",
        type='array', items={'type': 'string'})
    sbatch: tuple[str, ...] = _f(
        (),
        "Extra sbatch options, one per item, e.g. `--qos=high` or `--exclusive`.",
        type='array', items={'type': 'string'})
    accelerator: Optional[str] = _f(
        None,
        "GPU type SkyPilot asks the cloud for, e.g. A100 or H100 (with hardware.gpus per node).",
        type='string', minLength=1)
    cloud: Optional[str] = _f(
        None,
        "SkyPilot cloud, e.g. aws, gcp, kubernetes (default: SkyPilot picks).",
        type='string', minLength=1)
    ray_address: Optional[str] = _f(
        None,
        "Ray dashboard address of an existing cluster, e.g. http://head:8265 (default: $RAY_ADDRESS, else "
        "http://127.0.0.1:8265).",
        type='string', minLength=1)
    port: Optional[int] = _f(
        None,
        "Rendezvous port on the head node for multi-node runs (default 29500).",
        type='integer', minimum=1, maximum=65535)


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
    stage_name: Optional[str] = None  # set for a stage of a pipeline (ft_recipes.recipe.stages)
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
