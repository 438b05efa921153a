"""``ftr explain``."""

from __future__ import annotations

import json

import click

from . import guard
from ..backends import NAMES


@click.command("explain")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--backend", "-b", type=click.Choice(NAMES), default=None, help="Only this backend's native keys.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@guard
def explain_cmd(recipe: str, backend: str | None, fmt: str) -> None:
    """Show every resolved value of RECIPE, where it came from (file:line of the recipe or preset, or
    ftr default), the native key it becomes per backend, the lint findings and the VRAM estimate."""
    from ..explain import rows
    from ..pipeline import load_any
    from ..vram import estimate

    loaded = load_any(recipe)  # a native LLaMA-Factory / Axolotl file is detected as `ftr lint` does
    if loaded.dialect != "recipe":
        click.echo(f"note: {recipe} is a {loaded.dialect} config; explaining the recipe it imports as", err=True)
    names = (backend,) if backend else NAMES
    table = rows(loaded, names)
    findings = _lint(loaded)
    est = estimate(loaded.recipe)
    if fmt == "json":
        click.echo(json.dumps({"values": [r.__dict__ for r in table],
                               "findings": [f.__dict__ for f in findings],
                               "vram_gb_per_gpu": est.as_dict() if est else None}, indent=2, default=str))
        return
    width = max(len(r.key) for r in table)
    for r in table:
        native = "  ".join(f"{n}: {k}" for n, k in r.native.items())
        click.echo(f"{r.key:<{width}}  {json.dumps(r.value, default=str):<28} {r.source:<40} {native}")
    click.echo("")
    click.echo(_vram_text(est))
    click.echo("")
    click.echo("\n".join(f.text() for f in findings) or "lint: no findings")


def _lint(loaded):
    try:
        from ..lint import lint_recipe
    except ImportError:
        return []
    return lint_recipe(loaded)


def _vram_text(est) -> str:
    if est is None:
        return "VRAM: unknown model size (set model.params, or use a local/cached model)"
    return (f"VRAM per GPU (estimate, {est.dims_source}): {est.total_gb:.1f} GB = weights {est.weights_gb:.1f}"
            f" + adapter {est.adapter_gb:.1f} + gradients {est.gradients_gb:.1f} + optimizer {est.optimizer_gb:.1f}"
            f" + activations {est.activations_gb:.1f} + overhead {est.overhead_gb:.1f}"
            f"  (trainable parameters: {est.trainable_params / 1e6:.1f} M)")
