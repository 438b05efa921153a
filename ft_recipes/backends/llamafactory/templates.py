"""Chat templates: ftr template name -> the llamafactory template that renders it."""

TEMPLATES = {
    "chatml": "chatml", "qwen": "qwen", "qwen2.5": "qwen", "qwen3": "qwen3", "qwen3_nothink": "qwen3_nothink",
    "llama3": "llama3", "llama2": "llama2", "mistral": "mistral", "gemma": "gemma", "gemma2": "gemma",
    "gemma3": "gemma3", "phi3": "phi", "phi4": "phi4", "deepseek3": "deepseek3", "alpaca": "alpaca",
    "vicuna": "vicuna", "zephyr": "zephyr", "default": "default", "empty": "empty",
}
