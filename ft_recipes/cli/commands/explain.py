"""``ftr explain``."""

from __future__ import annotations

import json

import click

from ft_recipes.backends import NAMES
from ft_recipes.cli.commands import guard


@click.command("explain")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--backend", "-b", type=click.Choice(NAMES), default=None, help="Only this backend's native keys.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@guard
def explain_cmd(recipe: str, backend: str | None, fmt: str) -> None:
    """Show every resolved value of RECIPE, where it came from (file:line of the recipe or preset, or
    ftr default), the native key it becomes per backend, the lint findings and the VRAM estimate."""
    from ft_recipes.recipe.loaded import load_any
    from ft_recipes.recipe.stages import has_stages

    names = (backend,) if backend else NAMES
    if has_stages(recipe):
        _explain_pipeline(recipe, names, fmt)
        return
    loaded = load_any(recipe)  # a native LLaMA-Factory / Axolotl file is detected as `ftr lint` does
    if loaded.dialect != "recipe":
        click.echo(f"note: {recipe} is a {loaded.dialect} config; explaining the recipe it imports as", err=True)
    if fmt == "json":
        click.echo(json.dumps(_data(loaded, names), indent=2, default=str))
        return
    _text(loaded, names)


def _data(loaded, names, stage=None) -> dict:
    from ft_recipes.insight.explain import rows
    from ft_recipes.insight.vram import estimate

    est = estimate(loaded.recipe)
    return {"values": [r.__dict__ for r in rows(loaded, names)],
            "findings": [f.__dict__ for f in _lint(loaded, stage)], "vram_gb_per_gpu": est.as_dict() if est else None}


def _explain_pipeline(recipe: str, names, fmt: str) -> None:
    """Each stage in order: its resolved values, findings (the stage named) and VRAM estimate."""
    from ft_recipes.recipe.stages import load_pipeline

    pipeline = load_pipeline(recipe)
    if fmt == "json":
        click.echo(json.dumps({"stages": [{"name": s.name, "from": s.source, "backend": s.backend,
                                           "merge_step": s.is_merge_step, "kind": s.kind,
                                           **(_data(s.loaded, names, s.name) if s.loaded else {})}
                                          for s in pipeline.stages]}, indent=2, default=str))
        return
    for stage in pipeline.stages:
        what = f"{stage.kind} step" if stage.kind != "train" else (f"backend {stage.backend}" if stage.backend else "the --backend")  # noqa: E501
        click.echo(f"== stage {stage.name} (from {stage.source}; {what}; run dir {stage.run_dir}) ==")
        if stage.loaded:
            _text(stage.loaded, names, stage.name)
        click.echo("")


def _text(loaded, names, stage=None) -> None:
    from ft_recipes.insight.explain import rows
    from ft_recipes.insight.vram import estimate

    table = rows(loaded, names)
    findings = _lint(loaded, stage)
    est = estimate(loaded.recipe)
    width = max(len(r.key) for r in table)
    for r in table:
        native = "  ".join(f"{n}: {k}" for n, k in r.native.items())
        click.echo(f"{r.key:<{width}}  {json.dumps(r.value, default=str):<28} {r.source:<40} {native}")
    click.echo("")
    click.echo(_vram_text(est))
    click.echo("")
    click.echo("\n".join(f.text() for f in findings) or "lint: no findings")


def _lint(loaded, stage=None):
    try:
        from ft_recipes.lint import lint_recipe
    except ImportError:
        return []
    from ft_recipes.recipe.stages import in_stage

    findings = lint_recipe(loaded)
    return [in_stage(f, stage) for f in findings] if stage else findings


def _vram_text(est) -> str:
    if est is None:
        return "VRAM: unknown model size (set model.params, or use a local/cached model)"
    return (f"VRAM per GPU (estimate, {est.dims_source}): {est.total_gb:.1f} GB = weights {est.weights_gb:.1f}"
            f" + adapter {est.adapter_gb:.1f} + gradients {est.gradients_gb:.1f} + optimizer {est.optimizer_gb:.1f}"
            f" + activations {est.activations_gb:.1f} + overhead {est.overhead_gb:.1f}"
            f"  (trainable parameters: {est.trainable_params / 1e6:.1f} M)")
