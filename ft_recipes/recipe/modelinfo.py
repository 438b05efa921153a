"""Facts about a base model without loading it: config.json and tokenizer_config.json when the model
is a local directory or in the Hugging Face cache, else a bundled table of common families."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

# Lower-case substring of the model id -> EOS token string (instruct variants end turns with these).
EOS_BY_FAMILY = (
    ("qwen", "<|im_end|>"), ("llama-3", "<|eot_id|>"), ("llama3", "<|eot_id|>"), ("meta-llama-3", "<|eot_id|>"),
    ("mistral", "</s>"), ("mixtral", "</s>"), ("llama-2", "</s>"), ("gemma", "<eos>"), ("phi-3", "<|end|>"),
    ("phi-4", "<|im_end|>"), ("deepseek", "<｜end▁of▁sentence｜>"), ("yi-", "<|im_end|>"),
)


def _hf_cache_dir(model_id: str) -> Path | None:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hub = Path(os.environ.get("HF_HUB_CACHE", home / "hub"))
    snapshots = hub / f"models--{model_id.replace('/', '--')}" / "snapshots"
    try:
        found = sorted(snapshots.iterdir()) if snapshots.is_dir() else []
    except OSError:  # an unreadable cache is no cache: the values come from the family table instead
        return None
    return found[-1] if found else None


def model_dir(base: str) -> Path | None:
    """The model's local directory: ``base`` itself, else its newest snapshot in the Hugging Face cache. Inside
    ``remembered()`` (a lint run, where several rules ask for every file) looked up once per base."""
    cache = _MODEL_DIRS.get()
    if cache is None:
        return _find_model_dir(base)
    key = (base, os.getcwd(), os.environ.get("HF_HOME"), os.environ.get("HF_HUB_CACHE"))
    if key not in cache:
        cache[key] = _find_model_dir(base)
    return cache[key]


def _find_model_dir(base: str) -> Path | None:
    path = Path(base)
    if path.is_dir():
        return path
    return _hf_cache_dir(base)


_MODEL_DIRS: ContextVar[dict | None] = ContextVar("ftr_model_dirs", default=None)
_JSON_FILES: ContextVar[dict | None] = ContextVar("ftr_json_files", default=None)


@contextmanager
def remembered():
    """Model directories looked up once per base, and JSON files (``json_file``) parsed once per version, while
    inside (no directory appears or goes meanwhile)."""
    tokens = (_MODEL_DIRS.set({}), _JSON_FILES.set({}))
    try:
        yield
    finally:
        _MODEL_DIRS.reset(tokens[0])
        _JSON_FILES.reset(tokens[1])


def json_file(path: Path):
    """``json.loads`` of the file (OSError, ValueError as they come). Inside ``remembered()`` parsed once per
    path, size and modification time: LLaMA-Factory configs of one folder share one dataset_info.json. The
    callers only read the answer."""
    cache = _JSON_FILES.get()
    if cache is None:
        return json.loads(path.read_text(encoding="utf-8"))
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in cache:
        cache[key] = json.loads(path.read_text(encoding="utf-8"))
    return cache[key]


@lru_cache(maxsize=64)
def read_json(base: str, name: str) -> dict:
    directory = model_dir(base)
    if directory is None or not (directory / name).is_file():
        return {}
    try:
        data = json.loads((directory / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def special_token(base: str, which: str) -> str | None:
    """``eos``/``pad``/``bos`` token string of the model, or None when unknown."""
    token = _token_text(read_json(base, "tokenizer_config.json").get(f"{which}_token"))
    if token is None:
        token = _token_text(read_json(base, "special_tokens_map.json").get(f"{which}_token"))
    if token is None and which == "eos":
        lowered = base.lower()
        token = next((eos for family, eos in EOS_BY_FAMILY if family in lowered), None)
    return token


# Common architectures, for when config.json is not on this machine (values from the models' config.json).
# id suffix (lower case) -> (hidden_size, num_hidden_layers, intermediate_size, heads, kv_heads, vocab, params_b)
KNOWN_ARCHITECTURES = {
    "qwen2.5-0.5b": (896, 24, 4864, 14, 2, 151936, 0.49), "qwen2.5-1.5b": (1536, 28, 8960, 12, 2, 151936, 1.54),
    "qwen2.5-3b": (2048, 36, 11008, 16, 2, 151936, 3.09), "qwen2.5-7b": (3584, 28, 18944, 28, 4, 152064, 7.62),
    "qwen2.5-14b": (5120, 48, 13824, 40, 8, 152064, 14.7), "qwen2.5-32b": (5120, 64, 27648, 40, 8, 152064, 32.8),
    "qwen2.5-72b": (8192, 80, 29568, 64, 8, 152064, 72.7),
    "meta-llama-3-8b": (4096, 32, 14336, 32, 8, 128256, 8.03), "llama-3.1-8b": (4096, 32, 14336, 32, 8, 128256, 8.03),
    "meta-llama-3-70b": (8192, 80, 28672, 64, 8, 128256, 70.6), "llama-3.1-70b": (8192, 80, 28672, 64, 8, 128256, 70.6),
    "llama-2-7b": (4096, 32, 11008, 32, 32, 32000, 6.74), "llama-2-13b": (5120, 40, 13824, 40, 40, 32000, 13.0),
    "mistral-7b": (4096, 32, 14336, 32, 8, 32000, 7.24), "gemma-2-9b": (3584, 42, 14336, 16, 8, 256000, 9.24),
    "gemma-2-2b": (2304, 26, 9216, 8, 4, 256000, 2.61), "gemma-2-27b": (4608, 46, 36864, 32, 16, 256000, 27.2),
    "llama-7b": (4096, 32, 11008, 32, 32, 32000, 6.74), "llama-65b": (8192, 80, 22016, 64, 64, 32000, 65.2),
    "qwen3-8b": (4096, 36, 12288, 32, 8, 151936, 8.19), "phi-3-mini": (3072, 32, 8192, 32, 32, 32064, 3.82),
}
ARCH_FIELDS = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
               "num_key_value_heads", "vocab_size", "params_b")


def _known(base: str) -> dict:
    name = base.lower().rsplit("/", 1)[-1]
    for prefix in sorted(KNOWN_ARCHITECTURES, key=len, reverse=True):
        if name.startswith(prefix):
            return dict(zip(ARCH_FIELDS, KNOWN_ARCHITECTURES[prefix]))
    return {}


def config(base: str) -> dict:
    """The model's config.json, else the bundled table's entry, else {}."""
    return read_json(base, "config.json") or _known(base)


# Model families' chat templates, first match wins (so qwen3 before qwen): lower-case id substrings, the
# family's ftr template, and the template name stems that render its conversations as the model does.
FAMILY_TEMPLATES = (
    (("qwen3",), "qwen3", ("qwen3",)),
    (("qwen",), "qwen", ("qwen", "chatml")),
    (("llama-3", "llama3"), "llama3", ("llama3",)),
    (("llama-2",), "llama2", ("llama2",)),
    (("mistral", "mixtral"), "mistral", ("mistral", "ministral")),
    (("gemma-3", "gemma3"), "gemma3", ("gemma",)),
    (("gemma-2", "gemma2"), "gemma2", ("gemma",)),
    (("gemma",), "gemma", ("gemma",)),
    (("phi-4",), "phi4", ("phi4",)),
    (("phi-3",), "phi3", ("phi",)),
    (("zephyr",), "zephyr", ("zephyr",)),
)


def family_template(base: str) -> tuple[str, tuple[str, ...]] | None:
    """(the family's template, the name stems that render like it) for a model id of a known family, else None."""
    name = base.lower().rsplit("/", 1)[-1]
    for markers, template, stems in FAMILY_TEMPLATES:
        if any(marker in name for marker in markers):
            return template, stems
    return None
