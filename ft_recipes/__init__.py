"""ft-recipes: portable, schema-validated LLM fine-tuning recipes."""

__version__ = "0.1.0"
