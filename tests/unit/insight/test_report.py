"""ftr report: reading the backends' logs and the diagnosis, on synthetic logs."""

import json
import math

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.cli.main import main
from ft_recipes.insight.report import diagnose, read_curves


def _state(run_dir, train, evals, recipe=None):
    history = [{"step": s, "loss": v, "learning_rate": 1e-4} for s, v in train]
    history += [{"step": s, "eval_loss": v} for s, v in evals]
    history.sort(key=lambda e: e["step"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoint-10").mkdir()
    (run_dir / "checkpoint-10" / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    if recipe:
        (run_dir / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe))
    return run_dir


RECIPE = {"method": {"type": "lora", "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target": "all-linear"}},
          "train": {"lr": 2e-4, "epochs": 3, "weight_decay": 0.01}}


def kinds(run_dir):
    return [d.kind for d in diagnose(read_curves(run_dir))]


def test_overfitting_with_remedies_phrased_on_the_recipe(tmp_path):
    run = _state(tmp_path / "r", [(i, 2.0 - i * 0.1) for i in range(1, 11)],
                 [(2, 1.9), (4, 1.7), (6, 1.8), (8, 1.95), (10, 2.1)], RECIPE)
    diagnoses = diagnose(read_curves(run))
    over = next(d for d in diagnoses if d.kind == "overfitting")
    assert over.remedies[0] == "lora dropout is 0.05: try 0.1"
    assert "weight decay is 0.01" in over.remedies[1]
    assert "lora r is 16: try 8" in over.remedies[2]


def test_healthy_run(tmp_path):
    run = _state(tmp_path / "r", [(i, 2.0 - i * 0.1) for i in range(1, 11)], [(5, 1.6), (10, 1.2)], RECIPE)
    assert kinds(run) == ["ok"]


def test_underfitting(tmp_path):
    run = _state(tmp_path / "r", [(i, 2.5 - i * 0.01) for i in range(1, 21)], [(10, 2.5), (20, 2.49)], RECIPE)
    diagnoses = diagnose(read_curves(run))
    under = next(d for d in diagnoses if d.kind == "underfitting")
    assert "lora r is 16: try 32" in under.remedies


def test_divergence_nan_and_spike(tmp_path):
    assert "divergence" in kinds(_state(tmp_path / "a", [(1, 2.0), (2, math.nan)], [(2, 1.0)]))
    spike = [(i, 1.0) for i in range(1, 20)] + [(20, 9.0)]
    assert "divergence" in kinds(_state(tmp_path / "b", spike, [(10, 1.0)]))


def test_no_validation(tmp_path):
    assert "no-validation" in kinds(_state(tmp_path / "r", [(1, 2.0), (2, 1.5)], []))


def test_llamafactory_trainer_log(tmp_path):
    lines = [{"current_steps": 1, "total_steps": 2, "loss": 2.0, "lr": 1e-4},
             {"current_steps": 2, "total_steps": 2, "eval_loss": 1.8}]
    (tmp_path / "trainer_log.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    curves = read_curves(tmp_path)
    assert curves.train == [(1, 2.0)] and curves.eval == [(2, 1.8)] and curves.lr == [(1, 1e-4)]


def test_cli_formats_and_missing_logs(tmp_path):
    run = _state(tmp_path / "r", [(1, 2.0), (2, 1.5)], [(2, 1.4)], RECIPE)
    result = CliRunner().invoke(main, ["report", str(run), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.output)[0]["eval"] == [[2, 1.4]]
    assert "## " in CliRunner().invoke(main, ["report", str(run), "--format", "md"]).output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["report", str(empty)])
    assert result.exit_code == 2 and "trainer_state.json" in result.output


def test_plot_or_clear_message(tmp_path):
    run = _state(tmp_path / "r", [(1, 2.0), (2, 1.5)], [(2, 1.4)], RECIPE)
    result = CliRunner().invoke(main, ["report", str(run), str(run), "-o", str(tmp_path / "loss.png")])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result.exit_code == 2 and "ft-recipes[report]" in result.output
    else:
        assert result.exit_code == 0 and (tmp_path / "loss.png").stat().st_size > 1000


def test_progress_line_from_backend_output():
    from ft_recipes.run.process import Progress

    progress = Progress()
    assert progress.feed(" 50%|#####     | 2/4 [00:01<00:03,  1.5it/s]\r") is None
    line = progress.feed("{'loss': '6.21', 'grad_norm': '0.5', 'learning_rate': '1e-4', 'epoch': '0.2'}\n")
    assert line == "ftr: step 2/4  loss 6.21  eta 00:03"


def _eval_json(run_dir, base_acc=0.5, tuned_acc=0.75):
    results = {"base": {"tasks": {"mc": {"acc": base_acc}}, "held_out": {"perplexity": 9.0}},
               "tuned": {"tasks": {"mc": {"acc": tuned_acc}}, "held_out": {"perplexity": 3.0, "samples": []}}}
    (run_dir / "eval.json").write_text(json.dumps({"results": results, "seconds": 1.0}))


def test_ftr_eval_scores_in_every_format(tmp_path):
    run = _state(tmp_path / "r", [(1, 2.0), (2, 1.5)], [(2, 1.4)], RECIPE)
    _eval_json(run)
    text = CliRunner().invoke(main, ["report", str(run)]).output
    lines = text.split("ftr eval (base against tuned):\n")[1].splitlines()[1:]
    table = {line.strip().split("  ")[0]: line.split()[-3:] for line in lines}
    assert table == {"mc acc": ["0.5", "0.75", "+0.25"], "held-out perplexity (lower is better)": ["9", "3", "-6"]}
    (record,) = json.loads(CliRunner().invoke(main, ["report", str(run), "--format", "json"]).output)
    assert record["scores"][0] == {"score": "mc acc", "base": 0.5, "tuned": 0.75}
    assert "| mc acc | 0.5 | 0.75 | +0.25 |" in CliRunner().invoke(main, ["report", str(run), "--format", "md"]).output


def test_a_run_not_evaluated_has_no_scores_and_a_broken_eval_json_is_named(tmp_path):
    run = _state(tmp_path / "r", [(1, 2.0), (2, 1.5)], [(2, 1.4)], RECIPE)
    assert json.loads(CliRunner().invoke(main, ["report", str(run), "--format", "json"]).output)[0]["scores"] is None
    assert "base against tuned" not in CliRunner().invoke(main, ["report", str(run)]).output
    (run / "eval.json").write_text("{not json")
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 1 and "eval.json: not valid JSON" in result.output


def test_plot_draws_the_scores_as_bars(tmp_path):
    pytest.importorskip("matplotlib")
    from ft_recipes.insight.report import plot

    plain = _state(tmp_path / "plain", [(1, 2.0), (2, 1.5)], [(2, 1.4)], RECIPE)
    run = _state(tmp_path / "r", [(1, 2.0), (2, 1.5)], [(2, 1.4)], RECIPE)
    _eval_json(run)
    plot([read_curves(plain)], tmp_path / "loss.png")
    plot([read_curves(run)], tmp_path / "scores.png")
    from matplotlib.image import imread

    assert imread(tmp_path / "scores.png").shape[0] > imread(tmp_path / "loss.png").shape[0]  # a row of bars


def test_a_state_caught_mid_write_falls_back_to_the_one_before(tmp_path):
    from ft_recipes.insight.report import read_curves

    run = tmp_path / "run"
    for step in (10, 20):
        (run / f"checkpoint-{step}").mkdir(parents=True)
        (run / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"log_history": [{"step": s, "loss": 2.0 - s / 100} for s in range(5, step + 1, 5)]}))
    (run / "trainer_state.json").write_text('{"log_history": [{"step": 5, "loss": 1.9}, {"st')  # cut while written
    curves = read_curves(run)
    assert curves.source.endswith("checkpoint-20/trainer_state.json") and len(curves.train) == 4
    assert any("read the state before it" in note for note in curves.notes)


def test_underfitting_advice_after_the_demo_stays_inside_the_rule_packs_ranges(tmp_path):
    """Issue 32: the 4-step demo (LoRA SFT at lr 2e-4) is flat and high; the advice must not suggest lr 4e-4,
    above FTR101's recommended 5e-5 to 3e-4, nor a rank or alpha that FTR102/FTR103 would flag."""
    recipe = {"ftr": 1, "stage": "sft", "method": {"type": "lora", "lora": {"r": 64, "alpha": 256}},
              "train": {"lr": 2e-4, "max_steps": 4}}
    run = _state(tmp_path / "r", [(1, 6.29), (2, 6.28), (3, 6.28), (4, 6.27)], [(2, 6.28), (4, 6.27)], recipe)
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "underfitting" in result.output and "0.0004" not in result.output
    assert "learning rate is 0.0002: try 0.0003 (the end of the recommended range, FTR101)" in result.output
    assert "lora r is 64: try" not in result.output and "lora alpha is 256: try" not in result.output
    assert "max_steps is 4: try 8" in result.output
    at_top = _state(tmp_path / "top", [(1, 6.29), (2, 6.28), (3, 6.28), (4, 6.27)], [(4, 6.27)],
                    {**recipe, "train": {"lr": 3e-4, "max_steps": 4}})
    assert "learning rate is" not in CliRunner().invoke(main, ["report", str(at_top)]).output
    from ft_recipes.insight.report import _remedies

    team = {"FTR101": {"method_groups": {"lora": "adapter"}, "stage_groups": {"sft": "sft"},
                       "ranges": {"adapter": {"sft": {"recommended": [1e-5, 1e-4]}}}}}
    assert "learning rate is 0.0004: try 0.0001 (the end of the recommended range, FTR101)" in \
        _remedies("divergence", {"train": {"lr": 4e-4}}, team)
