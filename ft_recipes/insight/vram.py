"""Peak GPU memory estimate per GPU for a recipe (used by ``ftr explain`` and rule FTR404).

The model is the usual accounting (ZeRO paper; Korthikanti et al. 2022 for activations):
mixed-precision full fine-tuning keeps 16 bytes per parameter (bf16 weights 2 + bf16 grads 2 + fp32
master 4 + Adam m and v 8); adapters keep that only for their own parameters; 4-bit NF4 weights take
~0.53 bytes per parameter with double quantization constants; activations per layer are ~34*s*b*h
bytes with a memory-efficient attention, and only the layer inputs (2*s*b*h) are kept under gradient
checkpointing. It is an estimate for planning, accurate to roughly +-20%.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ft_recipes.recipe.model import Recipe
from ft_recipes.recipe.modelinfo import config as model_config

GB = 1e9
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
OVERHEAD_GB = 1.0  # CUDA context, allocator fragmentation


@dataclass(frozen=True)
class Dims:
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    params: float  # total parameters
    source: str


@dataclass(frozen=True)
class Estimate:
    weights_gb: float
    trainable_params: float
    adapter_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    overhead_gb: float
    total_gb: float
    dims_source: str

    def as_dict(self) -> dict:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def dims_for(recipe: Recipe) -> Dims | None:
    cfg = model_config(recipe.model.base)
    source = "config.json" if cfg and "params_b" not in cfg else "bundled table"
    hidden = cfg.get("hidden_size")
    if not hidden:
        if recipe.model.params:  # only the size: assume a Llama-like shape
            p = recipe.model.params * 1e9
            hidden = int((p / 12 / 32) ** 0.5 // 128 * 128) or 1024
            return Dims(hidden, 32, int(hidden * 3.5), hidden // 128, hidden // 128, 32000, p, "model.params")
        return None
    layers = cfg.get("num_hidden_layers", 32)
    inter = cfg.get("intermediate_size", 4 * hidden)
    heads = cfg.get("num_attention_heads", max(hidden // 128, 1))
    kv = cfg.get("num_key_value_heads", heads)
    vocab = cfg.get("vocab_size", 32000)
    params = cfg["params_b"] * 1e9 if "params_b" in cfg else _count(hidden, layers, inter, heads, kv, vocab,
                                                                     cfg.get("tie_word_embeddings", False))
    return Dims(hidden, layers, inter, heads, kv, vocab, params, source)


def _count(h, layers, inter, heads, kv, vocab, tied) -> float:
    kv_dim = h // heads * kv
    per_layer = h * h * 2 + 2 * h * kv_dim + 3 * h * inter
    return layers * per_layer + vocab * h * (1 if tied else 2)


def _module_shapes(d: Dims) -> dict[str, tuple[int, int]]:
    kv_dim = d.hidden // d.heads * d.kv_heads
    return {"q_proj": (d.hidden, d.hidden), "k_proj": (d.hidden, kv_dim), "v_proj": (d.hidden, kv_dim),
            "o_proj": (d.hidden, d.hidden), "gate_proj": (d.hidden, d.intermediate),
            "up_proj": (d.hidden, d.intermediate), "down_proj": (d.intermediate, d.hidden)}


def _oft_block(oft, in_features: int) -> int:
    return oft.block_size or max(in_features // max(oft.rank, 1), 1)


def oft_params(recipe: Recipe, d: Dims) -> float:
    """OFT trains a skew-symmetric block of b(b-1)/2 values per block, in_features/b blocks per module."""
    oft = recipe.method.oft
    names = ATTN + MLP if oft.target == "all-linear" else tuple(oft.target)
    shapes = _module_shapes(d)
    per_layer = sum(shapes[n][0] * (_oft_block(oft, shapes[n][0]) - 1) / 2 for n in names if n in shapes)
    return per_layer * d.layers


def lora_params(recipe: Recipe, d: Dims) -> float:
    lora = recipe.method.lora
    names = ATTN + MLP if lora.target == "all-linear" else tuple(lora.target)
    shapes = _module_shapes(d)
    per_layer = sum(lora.r * sum(shapes[n]) for n in names if n in shapes)
    return per_layer * d.layers


def _weights_bytes(recipe: Recipe, d: Dims) -> float:
    quant = recipe.method.quant
    embed = d.vocab * d.hidden * 2 * 2  # embeddings and lm_head stay 16-bit
    body = d.params - d.vocab * d.hidden * 2
    if quant and quant.bits == 4:
        return body * (4.127 if quant.double_quant else 4.5) / 8 + embed
    if quant and quant.bits == 8:
        return body * 1.0 + embed
    return d.params * (4 if recipe.train.precision == "fp32" else 2)


def _optimizer_bytes_per_param(optimizer: str) -> float:
    if "8bit" in optimizer:
        return 2.0
    if "4bit" in optimizer:
        return 1.0
    if optimizer in ("sgd",):
        return 4.0
    if optimizer == "adafactor":
        return 0.1
    return 8.0


def _activations_bytes(recipe: Recipe, d: Dims) -> float:
    s, b, h = recipe.data.max_length, recipe.train.micro_batch_size, d.hidden
    per_layer = 34 * s * b * h
    if recipe.train.gradient_checkpointing:
        layers = d.layers * 2 * s * b * h + per_layer
    else:
        layers = d.layers * per_layer
    logits = s * b * d.vocab * 4 * 2  # fp32 logits and their gradient
    factor = 2 if recipe.is_preference and recipe.stage != "orpo" else 1  # chosen + rejected
    return (layers + logits) * factor


def _trainable(recipe: Recipe, d: Dims) -> float:
    if recipe.method.is_adapter:
        return lora_params(recipe, d)
    if recipe.method.type == "oft" and recipe.method.oft:
        return oft_params(recipe, d)
    if recipe.method.type == "freeze" and recipe.method.freeze:
        return d.params / d.layers * min(abs(recipe.method.freeze.trainable_layers), d.layers)
    return d.params


def estimate(recipe: Recipe) -> Estimate | None:
    d = dims_for(recipe)
    if d is None:
        return None
    gpus = max(recipe.hardware.gpus, 1) * recipe.hardware.nodes
    stage = {"zero2": 2, "zero3": 3, "zero3_offload": 3}.get(recipe.hardware.deepspeed or "", 0)
    offload = recipe.hardware.deepspeed == "zero3_offload"
    trainable = _trainable(recipe, d)
    weights = _weights_bytes(recipe, d)
    adapter = recipe.method.saves_adapter
    master = 0.0 if adapter or recipe.train.precision == "fp32" else 4 * trainable
    adapter_weights = 4 * trainable if adapter else 0.0
    grads = trainable * (4 if adapter or recipe.train.precision == "fp32" else 2)
    optim = trainable * _optimizer_bytes_per_param(recipe.train.optimizer) + master
    if recipe.is_preference and not adapter and recipe.stage not in ("orpo", "simpo"):
        weights *= 2  # a frozen reference model (adapters reuse the base with the adapter disabled)
    if stage >= 2:
        grads, optim = grads / gpus, 0.0 if offload else optim / gpus
    if stage == 3:
        weights = 0.0 if offload else weights / gpus
    acts = _activations_bytes(recipe, d)
    total = (weights + adapter_weights + grads + optim + acts) / GB + OVERHEAD_GB
    return Estimate(weights / GB, trainable, adapter_weights / GB, grads / GB, optim / GB, acts / GB, OVERHEAD_GB,
                    total, d.source)
