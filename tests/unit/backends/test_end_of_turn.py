"""FTR212, the end of turn trained: the judgement of a backend's labels (synthetic rows here; the backends' own
preprocessing in tests/backends/test_end_of_turn_backends.py) and lint reporting the last `ftr data` verdict."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.insight import tokens
from ft_recipes.lint import Options, lint_file

M = -100
ENDS = ("<|im_end|>",)
TOKENS = ("<|im_start|>", "user", "\u010a", "hi", "<|im_end|>", "\u010a", "<|im_start|>", "assistant", "\u010a", "yo",
          "<|im_end|>", "\u010a")
IDS = tuple(range(10, 10 + len(TOKENS)))


def row(trained: set[int], labels: dict | None = None, eos_id: int | None = None) -> tokens.Row:
    out = [IDS[k] if k in trained else M for k in range(len(IDS))]
    for k, v in (labels or {}).items():
        out[k] = v
    return tokens.Row(IDS, tuple(out), TOKENS, "", "<|im_end|>", eos_id)


def test_a_turn_ending_with_its_trained_end_of_turn_passes():
    verdict = tokens.untrained_ends("x", [row({9, 10, 11}), row({9, 10})], ENDS, 128)
    assert (verdict.turns, verdict.missed) == (2, 0)


def test_a_masked_end_of_turn_is_reported_with_the_row():
    verdict = tokens.untrained_ends("x", [row({9, 10}), row({9})], ENDS, 128)
    assert (verdict.turns, verdict.missed) == (2, 1)
    assert verdict.examples == [("1", "'<|im_end|>' after the answer is masked")]


def test_a_turn_with_no_end_token_at_all_is_reported():
    tokens_ = TOKENS[:10]
    r = tokens.Row(IDS[:10], (M,) * 9 + (IDS[9],), tokens_, "", "<|im_end|>")
    verdict = tokens.untrained_ends("x", [r], ENDS, 128)
    assert verdict.missed == 1 and "no end-of-turn token follows" in verdict.examples[0][1]


def test_every_turn_of_a_conversation_is_judged():
    """Trained prompt and both answers: one span. Answers only: two spans, the first one's end masked."""
    assert tokens.untrained_ends("x", [row(set(range(12)))], ENDS, 128).missed == 0
    verdict = tokens.untrained_ends("x", [row({3, 4, 9, 10})], ENDS, 128)
    assert (verdict.turns, verdict.missed) == (2, 0)
    verdict = tokens.untrained_ends("x", [row({3, 9, 10})], ENDS, 128)
    assert (verdict.turns, verdict.missed) == (2, 1)


def test_the_eos_id_in_the_labels_counts_at_another_input_token():
    """LLaMA-Factory's efficient_eos templates train a turn's EOS at the first token of the next."""
    assert tokens.untrained_ends("x", [row({9}, {10: 99}, eos_id=99)], ENDS, 128).missed == 0


def test_a_span_cut_at_max_length_is_not_judged():
    r = tokens.Row(IDS[:10], (M,) * 9 + (IDS[9],), TOKENS[:10], "", "<|im_end|>")
    assert tokens.untrained_ends("x", [r], ENDS, 10).turns == 0


def test_end_tokens_are_the_eos_and_the_templates_end_of_turn(tmp_path):
    from ft_recipes.recipe.loaded import load_recipe

    recipe = _recipe(tmp_path, "llama3")
    ends = tokens.end_tokens(load_recipe(recipe).recipe, [tokens.Row((1,), (1,), ("a",), "", "</s>")])
    assert ends == ("</s>", "<|eot_id|>")


def _recipe(tmp_path: Path, template: str) -> Path:
    (tmp_path / "train.jsonl").write_text('{"instruction": "say tea", "output": "tea"}\n'
                                          '{"instruction": "say sun", "output": "sun"}\n')
    path = tmp_path / "recipe.yaml"
    path.write_text(f"ftr: 1\nmodel: {{base: Qwen/Qwen2.5-0.5B-Instruct, template: {template}}}\n"
                    "data:\n  train: [{path: train.jsonl, format: alpaca}]\n")
    return path


def test_lint_reports_the_last_verdict_and_starts_no_backend(tmp_path, monkeypatch):
    from ft_recipes.recipe.loaded import load_recipe

    monkeypatch.setenv("FTR_ENV_DIR", str(tmp_path / "envs"))
    monkeypatch.setattr(tokens, "_ENDS", {})
    path = _recipe(tmp_path, "chatml")
    select = Options(select=("FTR212",))
    assert lint_file(path, select) == []  # no `ftr data` yet: silent

    def tokenized(backend, n, recipes, timeout):
        masked = backend == "trl"
        return [[row({9} if masked else {9, 10, 11}), row({9} if masked else {9, 10})]]

    monkeypatch.setattr(tokens, "tokenize_each", tokenized)
    recipe = load_recipe(path).recipe
    for backend in ("llamafactory", "axolotl", "trl"):
        tokens.check_ends(backend, recipe)
    findings = lint_file(path, select)
    assert [(f.code, f.line) for f in findings] == [("FTR212", 2)]
    assert findings[0].message.startswith("trl does not train the end of turn (<|im_end|>) in 2 of 2 assistant turns")
    monkeypatch.setattr(tokens, "_ENDS", {})  # another process: the verdict comes from the disk cache
    assert [f.message for f in lint_file(path, select)] == [findings[0].message]
    (tmp_path / "train.jsonl").write_text('{"instruction": "say moon", "output": "moon"}\n')
    assert lint_file(path, select) == []  # other data: no verdict until `ftr data` runs again
