"""A diamond of presets (each extending several at the next level) resolves in linear time, to the same values as
merging every path in order."""

from __future__ import annotations

import time

from ft_recipes.recipe.loaded import resolve_file


def _diamond(write, levels: int, width: int = 3):
    for level in range(levels):
        for i in range(width):
            below = [f"p{level + 1}_{j}.yaml" for j in range(width)] if level + 1 < levels else []
            body = f"extends: {below}\n" if below else ""
            write(f"p{level}_{i}.yaml", body + f"train: {{seed: {level * 10 + i}, lr: 1.0e-{level + 3}}}\n")
    return write("recipe.yaml", "extends: [p0_0.yaml, p0_1.yaml, p0_2.yaml]\nftr: 1\n")


def test_a_deep_diamond_resolves_fast_with_each_preset_once(write):
    recipe = _diamond(write, levels=8)  # 3^8 paths when merged naively
    started = time.process_time()
    resolved = resolve_file(recipe)
    assert time.process_time() - started < 5
    files = [layer.file for layer in resolved.layers]
    assert len(files) == len(set(files)) == 8 * 3 + 1


def test_a_diamond_merges_as_every_path_in_order_would(write):
    write("d.yaml", "train: {lr: 1.0e-3, seed: 1}\n")
    write("b.yaml", "extends: [d.yaml]\ntrain: {lr: 2.0e-3}\n")
    write("c.yaml", "extends: [d.yaml]\ntrain: {seed: 3}\n")
    recipe = write("a.yaml", "extends: [b.yaml, c.yaml]\nftr: 1\n")
    # naive order d, b, d, c, a: the second d undoes b's lr, c sets seed 3
    assert resolve_file(recipe).data["train"] == {"lr": 1.0e-3, "seed": 3}
