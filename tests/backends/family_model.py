"""The tiny ChatML model (tests/fixtures/tiny.py) with the special tokens of the other template families added
(Llama 3, Gemma, Mistral, Phi, DeepSeek, Qwen3 thinking), so that every family's markers are single tokens as in
the real tokenizers. Run inside a backend environment:

    python tests/backends/family_model.py TINY_MODEL_DIR OUT_DIR
"""

from __future__ import annotations

import sys

FAMILY_TOKENS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
                 "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "[INST]", "[/INST]", "<s>", "</s>",
                 "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<think>", "</think>",
                 "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<|im_sep|>"]


def main(source: str, dest: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.add_tokens(FAMILY_TOKENS, special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(source)
    model.resize_token_embeddings(len(tokenizer))
    model.config.vocab_size = len(tokenizer)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


if __name__ == "__main__":
    main(*sys.argv[1:3])
