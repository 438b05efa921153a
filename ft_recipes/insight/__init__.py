"""Analysis of recipes and runs: explain, tokens, report, VRAM."""
