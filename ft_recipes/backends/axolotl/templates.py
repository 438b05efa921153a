"""Chat templates: ftr template name -> the axolotl template that renders it."""

TEMPLATES = {
    "chatml": "chatml", "qwen": "qwen_25", "qwen2.5": "qwen_25", "qwen3": "qwen3", "llama3": "llama3",
    "llama2": "llama2", "mistral": "mistral_v1", "gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma3",
    "phi3": "phi_3", "phi4": "phi_4", "deepseek3": "deepseek_v3", "alpaca": "alpaca", "vicuna": "vicuna",
    "zephyr": "zephyr", "tokenizer": "tokenizer_default",
}
