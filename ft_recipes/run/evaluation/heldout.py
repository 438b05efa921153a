"""The recipe's held-out rows, as the eval helper reads them: ``{"prompt": [turns], "answer": text}`` (chat and
alpaca rows; a preference row's chosen answer) or ``{"text": text}`` (pretraining rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ft_recipes.recipe.datasets import alpaca_to_messages, chat_to_messages, iter_rows, preference_to_messages
from ft_recipes.recipe.model import Dataset, Recipe


@dataclass
class HeldOut:
    rows: list[dict]
    split: dict | None  # {"size", "seed"}: the rows are the training rows, the helper holds ``size`` of them out
    source: str  # what the rows are, in words (eval.json)
    skipped: list[str] = field(default_factory=list)  # datasets ftr cannot read here (hub ids, other file kinds)


def row_of(row: dict, ds: Dataset, system_prompt: str | None) -> dict | None:
    """One dataset row in the helper's form; None when it has no answer to score and no text."""
    if ds.format == "text":
        text = row.get(ds.column("text"))
        return {"text": text} if isinstance(text, str) and text else None
    if ds.format == "preference":
        pair = preference_to_messages(row, ds)
        prompt, answer = pair["messages"], pair["chosen"]["content"]
    else:
        turns = alpaca_to_messages(row, ds)["messages"] if ds.format == "alpaca" else chat_to_messages(row, ds)
        if not turns or turns[-1]["role"] != "assistant":
            return None
        prompt, answer = turns[:-1], turns[-1]["content"]
    if system_prompt and not any(turn["role"] == "system" for turn in prompt):
        prompt = [{"role": "system", "content": system_prompt}] + prompt
    return {"prompt": prompt, "answer": answer} if prompt and isinstance(answer, str) else None


def read(datasets: tuple[Dataset, ...], system_prompt: str | None) -> tuple[list[dict], list[str]]:
    rows, skipped = [], []
    for ds in datasets:
        if ds.path is None:
            skipped.append(f"{ds.hub} (a hub dataset)")
            continue
        try:
            found = [row_of(row, ds, system_prompt) for row in iter_rows(ds.path, ds.num_samples)]
        except (OSError, ValueError) as exc:
            skipped.append(f"{ds.path} ({exc})")
            continue
        rows += [row for row in found if row is not None]
    return rows, skipped


def held_out(recipe: Recipe) -> HeldOut | None:
    """``data.val`` datasets as they are; with ``data.val.split``, the training rows and the split the helper
    takes of them (seeded, as LLaMA-Factory and trl hold rows out; Axolotl takes the last rows unshuffled, so
    there the rows differ). None when the recipe holds nothing out."""
    data = recipe.data
    if data.val:
        rows, skipped = read(data.val, data.system_prompt)
        return HeldOut(rows, None, "data.val datasets", skipped)
    if data.val_split > 0:
        rows, skipped = read(data.train, data.system_prompt)
        size = data.val_split if data.val_split < 1 else int(data.val_split)
        seed = recipe.train.seed_value
        return HeldOut(rows, {"size": size, "seed": seed},
                       f"data.val.split {data.val_split:g} of the training rows (seed {seed})", skipped)
    return None
