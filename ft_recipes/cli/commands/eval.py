"""``ftr eval RUN_DIR|MODEL``: lm-eval tasks and the held-out rows on the trained model (and its base)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ft_recipes.cli.commands import guard


def _install() -> None:
    from ft_recipes.backends.envs import install
    from ft_recipes.core.findings import FtrError
    from ft_recipes.run.evaluation import SPEC

    try:
        python = install(SPEC, log=lambda msg: click.echo(msg, err=True))
    except RuntimeError as exc:
        raise FtrError(str(exc), exit_code=1) from None
    click.echo(str(python))


def _report(record: dict, path: Path | None, findings: list, fmt: str) -> None:
    from ft_recipes.run.evaluation.compare import samples, table

    if fmt == "json":
        click.echo(json.dumps(record, indent=2, sort_keys=True))
        return
    click.echo(table(record["results"]))
    reading = samples(record["results"])
    if reading:
        click.echo("\n" + reading)
    for finding in findings:
        click.echo(finding.text(), err=True)
    if path is not None:
        click.echo(f"ftr eval: results in {path} ({record['seconds']} s)", err=True)


def _log_path(run_dir: Path | None, output: Path | None) -> Path:
    """lm-eval's whole output: RUN_DIR/logs/eval.log, else beside -o, else in the temp folder."""
    import os
    import tempfile

    if run_dir is not None:
        return run_dir / "logs" / "eval.log"
    return (output.resolve().parent if output else Path(tempfile.gettempdir())) / f"ftr-eval-{os.getpid()}.log"


@click.command("eval")
@click.argument("target", required=False, type=click.Path(path_type=Path))
@click.option("--base", "with_base", is_flag=True,
              help="Also evaluate the base model with the same tasks and settings, side by side.")
@click.option("--base-model", default=None, metavar="MODEL",
              help="The base model (default: the run's model.base, or an adapter's base_model_name_or_path).")
@click.option("--merged", is_flag=True, help="Evaluate RUN_DIR/merged (after `ftr merge`) instead of the adapter.")
@click.option("--tasks", multiple=True, metavar="TASKS",
              help="lm-eval task names or task YAML files / folders (local JSONL: dataset_path: json); repeat or "
                   "separate with commas.")
@click.option("--limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Rows per task (a fraction when below 1); also caps the held-out generations.")
@click.option("--num-fewshot", type=click.IntRange(min=0), default=None, help="Few-shot examples per task.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="lm-eval batch size (default 1).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the recipe's train.seed).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True,
              help="Tokens generated per held-out row (SFT).")
@click.option("--no-held-out", is_flag=True, help="Skip the recipe's validation rows.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where eval.json goes (default: RUN_DIR/eval.json; a model folder: not saved).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--install", "install_env", is_flag=True, help="Build the lm-eval environment (from its lock) and exit.")
@guard
def eval_cmd(target, with_base, base_model, merged, tasks, limit, num_fewshot, batch_size, seed, max_new_tokens,
             no_held_out, output, fmt, install_env) -> None:
    """Evaluate a run's trained model (an adapter, a merged model, a full fine-tune) or a model folder with
    lm-evaluation-harness, and on the recipe's held-out rows: perplexity and, for SFT, generations scored by
    exact match, BLEU and ROUGE-L. With --base, the base model too, and FTR701 when the tuned model lost more
    than a margin on a task. Runs in the lm-eval environment (`ftr eval --install`)."""
    from ft_recipes.core.findings import UsageError
    from ft_recipes.run.evaluation import runner
    from ft_recipes.run.evaluation import target as targets

    if install_env:
        _install()
        return
    if target is None:
        raise UsageError("give a run directory or a model folder (or --install)")
    what = targets.resolve(target, merged=merged, base_model=base_model)
    planned = what.recipe.eval if what.recipe else None  # the recipe's eval: settings, under the command line's
    settings = runner.Settings(tasks=tasks or (planned.tasks if planned else ()),
                               limit=limit if limit is not None else (planned.limit if planned else None),
                               num_fewshot=num_fewshot if num_fewshot is not None
                               else (planned.num_fewshot if planned else None),
                               batch_size=batch_size, seed=seed, max_new_tokens=max_new_tokens,
                               held_out=not no_held_out)
    log = _log_path(what.run_dir, output)
    path = output.resolve() if output else (what.run_dir / runner.RESULTS if what.run_dir else None)
    record, findings = runner.run(what, settings, with_base, log, path, echo=runner.echo_err, name=str(target))
    _report(record, path, findings, fmt)
    sys.exit(1 if any(f.severity == "error" for f in findings) else 0)
