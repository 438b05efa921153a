"""Facts about a base model without loading it: config.json and tokenizer_config.json when the model
is a local directory or in the Hugging Face cache, else a bundled table of common families."""

from __future__ import annotations

import json
import os
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
    if snapshots.is_dir():
        found = sorted(snapshots.iterdir())
        if found:
            return found[-1]
    return None


def model_dir(base: str) -> Path | None:
    path = Path(base)
    if path.is_dir():
        return path
    return _hf_cache_dir(base)


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


def config(base: str) -> dict:
    """The model's config.json, or {}."""
    return read_json(base, "config.json")
