"""Integrations that run ftr inside a backend (the Axolotl plugin)."""
