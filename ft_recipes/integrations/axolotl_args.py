"""The config keys the ftr Axolotl plugin adds (Axolotl merges them into its schema)."""

from __future__ import annotations

from pydantic import BaseModel


class FtrArgs(BaseModel):
    ftr_fail_on_error: bool = False
    ftr_ignore: list[str] = []
