"""Chat templates against the real backends: the same recipe gives identical input_ids AND labels on
LLaMA-Factory, Axolotl and trl (their own preprocessing, through `ftr tokens --diff`), for every row format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_ftr_backends import ftr, kto_recipe, run_env, tiny_recipe  # noqa: F401  (run_env is a fixture)


def multi_turn(data: Path, tmp: Path) -> dict[str, Path]:
    """Conversations of one to three exchanges, every other one with a system prompt, as messages and sharegpt."""
    rows = []
    for i, line in enumerate((data / "messages.jsonl").read_text().splitlines()[:24]):
        user, reply = json.loads(line)["messages"]
        turns = [{"role": "system", "content": "You are a helpful assistant."}] if i % 2 else []
        for k in range(1 + i % 3):
            turns += [{"role": "user", "content": user["content"] if k == 0 else f"And number {k + 1}?"},
                      {"role": "assistant", "content": reply["content"]}]
        rows.append(turns)
    names = {"user": "human", "assistant": "gpt", "system": "system"}
    files = {"multi_messages": [{"messages": r} for r in rows],
             "multi_sharegpt": [{"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in r]}
                                for r in rows]}
    for name, content in files.items():
        (tmp / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in content))
    return {name: tmp / f"{name}.jsonl" for name in files}


CASES = [("alpaca", "alpaca", "lora-sft", 50), ("sharegpt", "sharegpt", "lora-sft", 50),
         ("messages", "messages", "lora-sft", 50), ("multi_messages", "messages", "lora-sft", 24),
         ("multi_sharegpt", "sharegpt", "lora-sft", 24), ("preference", "preference", "dpo-lora", 50),
         ("text", "text", "pretrain-lora", 50)]  # pretraining text: compared unpacked, as every helper shows rows


PAIRS = [("llamafactory", "axolotl"), ("llamafactory", "trl")]  # both identical to LLaMA-Factory: all three agree


def token_recipes(tmp_path: Path, assets) -> dict[Path, int]:
    """One tiny recipe per row format (CASES): recipe -> the rows `ftr tokens -n 50` compares."""
    multi_turn(assets.data, tmp_path)
    recipes = {}
    for data, fmt, preset, rows in CASES:
        recipe = tiny_recipe(tmp_path, assets, f"tok-{data}", f"extends: [{preset}]", data, fmt)
        if data.startswith("multi"):
            recipe.write_text(recipe.read_text().replace(f"{assets.data}/{data}", f"{tmp_path}/{data}"))
        recipes[recipe] = rows * 2 if fmt == "preference" else rows  # a pair is two rows: +chosen, +rejected
    return recipes


def option_recipes(tmp_path: Path, assets, pair: tuple[str, str]) -> dict[Path, int]:
    """The recipe's system prompt (LLaMA-Factory's default_system; written into the rows for Axolotl), an alpaca file's
    own system and history columns, and train_on_prompt (LLaMA-Factory and trl train every token; Axolotl leaves
    the role headers out, a declared approximation): recipe -> rows. The system-prompt recipe comes first: a
    backend process that carried it into the next recipes would fail them."""
    rows = [json.loads(line) for line in (assets.data / "alpaca.jsonl").read_text().splitlines()]
    columns = tmp_path / "alpaca_columns.jsonl"
    columns.write_text("".join(json.dumps({**row, "sys": f"You are assistant {i}." if i % 2 else "",
                                           "hist": [["Hi?", "Hello."]] if i % 3 else []}) + "\n"
                               for i, row in enumerate(rows)))
    system = tiny_recipe(tmp_path, assets, "opt-system", "extends: [lora-sft]")
    system.write_text(system.read_text().replace("  max_length: 128", "  max_length: 128\n  system_prompt: Be brief."))
    own = tiny_recipe(tmp_path, assets, "opt-columns", "extends: [lora-sft]")
    with_train_entries(own, f"    - {{path: {columns}, format: alpaca, columns: {{system: sys, history: hist}}}}\n")
    recipes = {system: 50, own: 50}
    if "trl" in pair:
        prompt = tiny_recipe(tmp_path, assets, "opt-prompt", "extends: [lora-sft]")
        prompt.write_text(prompt.read_text().replace("  max_length: 128", "  max_length: 128\n  train_on_prompt: true"))
        recipes[prompt] = 50
    return recipes


def assert_identical(proc, pair: tuple[str, str], recipes: dict[Path, int]) -> None:
    """`ftr tokens R... --diff A B` found identical ids and labels on each recipe's expected number of rows."""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for recipe, rows in recipes.items():
        line = f"{recipe}: {pair[0]} vs {pair[1]}: identical token ids and loss masks on {rows} rows"
        assert line in proc.stdout.splitlines(), (recipe.name, proc.stdout[-3000:])


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_identical_input_ids_and_labels_across_backends(pair, tiny_assets, run_env, tmp_path):
    """Every row format (alpaca, sharegpt, messages, multi-turn, preference pairs, pretraining text, KTO's rows),
    system prompts, history, train_on_prompt (option_recipes), row limits and a file's own role names
    (limit_recipes) through each backend's own preprocessing; all the recipes in one `ftr tokens` call (one start
    of each backend)."""
    recipes = {**option_recipes(tmp_path, tiny_assets, pair), **token_recipes(tmp_path, tiny_assets),
               **limit_recipes(tmp_path, tiny_assets)}
    if "trl" not in pair:  # KTO (trl has no KTO stage): each row desirable or undesirable on both backends
        recipes[kto_recipe(tmp_path, tiny_assets)] = 50
    proc = ftr("tokens", *recipes, "--diff", *pair, "-n", 50, env=run_env, check=False, timeout=1800)
    assert_identical(proc, pair, recipes)


FAMILY = Path(__file__).with_name("family_model.py")
TEMPLATES = ["chatml", "qwen", "qwen3_nothink", "llama3", "llama2", "gemma", "phi3", "deepseek3", "vicuna", "zephyr",
             "qwen3", "mistral"]


@pytest.fixture(scope="session")
def family_model(tiny_assets, lf_python, backend_env, tmp_path_factory) -> Path:
    """The tiny model with every family's special tokens (Llama 3, Gemma, Mistral, Phi, DeepSeek, Qwen3)."""
    import subprocess

    out = tmp_path_factory.mktemp("family") / "model"
    proc = subprocess.run([str(lf_python), str(FAMILY), str(tiny_assets.model), str(out)], capture_output=True,
                          text=True, env=backend_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def family_verdicts(family_model, tiny_assets, tmp_path, run_env, pair, templates) -> dict[str, str]:
    """`ftr tokens --diff A B --templates ...` on multi-turn conversations on the family model: template -> verdict."""
    multi_turn(tiny_assets.data, tmp_path)
    recipe = tiny_recipe(tmp_path, tiny_assets, "tok-family", "extends: [lora-sft]", "multi_messages", "messages")
    text = recipe.read_text().replace(f"{tiny_assets.data}/multi_messages", f"{tmp_path}/multi_messages")
    recipe.write_text(text.replace(str(tiny_assets.model), str(family_model)).replace("max_length: 128",
                                                                                       "max_length: 400"))
    proc = ftr("tokens", recipe, "--diff", *pair, "--templates", ",".join(templates), "-n", 12,
               env=run_env, check=False, timeout=3000)
    verdicts = dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.split()[:1] in [[t] for t in
                                                                                                       templates])
    assert set(verdicts) == set(templates), proc.stdout + proc.stderr[-3000:]
    return verdicts


@pytest.mark.xdist_group("family-model")  # with pytest -n: the model is built once
def test_every_template_gives_identical_rows_or_its_documented_label_gap(family_model, tiny_assets, run_env,
                                                                         tmp_path):
    """Multi-turn conversations (with and without a system prompt) under each template: identical input_ids and
    labels on LLaMA-Factory and Axolotl, except where docs/templates.md names the label gap (the ids are identical
    there too)."""
    from ft_recipes.backends.axolotl.templates import reference
    from ft_recipes.recipe.templates import label_gap

    verdicts = family_verdicts(family_model, tiny_assets, tmp_path, run_env, ("llamafactory", "axolotl"), TEMPLATES)
    for name in TEMPLATES:
        if label_gap(reference(name)) is None:
            assert verdicts[name] == "identical", (name, verdicts[name])
        else:  # the documented exception: same token ids, the loss mask differs
            assert "loss mask differs" in verdicts[name], (name, verdicts[name])


# trl trains what LLaMA-Factory trains under every template (ftr's Jinja marks it with {% generation %}), the
# Axolotl label gaps included; the one exception: efficient_eos templates, whose later prompts start with a token
# LLaMA-Factory labels as the EOS (a label that is not the token itself, which trl's labels never are).
TRL_TEMPLATES = TEMPLATES + ["phi4", "default", "yi", "alpaca", "granite3", "smollm", "deepseekr1", "falcon", "glm4"]


@pytest.mark.xdist_group("family-model")  # with pytest -n: the model is built once
def test_every_template_gives_identical_rows_on_llamafactory_and_trl(family_model, tiny_assets, run_env, tmp_path):
    from ft_recipes.backends.axolotl.templates import reference

    verdicts = family_verdicts(family_model, tiny_assets, tmp_path, run_env, ("llamafactory", "trl"), TRL_TEMPLATES)
    for name in TRL_TEMPLATES:
        if reference(name).get("efficient_eos"):  # the documented exception, multi-turn rows only
            assert "differs at position" in verdicts[name] and "token ids" not in verdicts[name], (name, verdicts[name])
        else:
            assert verdicts[name] == "identical", (name, verdicts[name])


@pytest.mark.xdist_group("family-model")  # with pytest -n: the model is built once
def test_preference_pairs_per_template_on_llamafactory_and_trl(family_model, tiny_assets, run_env, tmp_path):
    """Chosen and rejected rows under templates with an empty thought (qwen3), text before the reply (mistral) and
    no newline after the end of turn (llama3): identical on LLaMA-Factory and trl."""
    recipe = tiny_recipe(tmp_path, tiny_assets, "tok-pref-family", "extends: [dpo-lora]", "preference", "preference")
    recipe.write_text(recipe.read_text().replace(str(tiny_assets.model), str(family_model)))
    names = ["llama3", "qwen3", "mistral"]
    proc = ftr("tokens", recipe, "--diff", "llamafactory", "trl", "--templates", ",".join(names), "-n", 10,
               env=run_env, check=False, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    table = [line.split(None, 1) for line in proc.stdout.splitlines() if line.split()[:1] in [[n] for n in names]]
    assert table == [[n, "identical"] for n in names], proc.stdout


LIMITS = {"one": [("messages", "messages", 3, "")],  # one limit: LLaMA-Factory's max_samples
          "two": [("messages", "messages", 3, ""),  # two limits: split slices; and the file's own role names
                  ("roles", "sharegpt", 2, ", columns: {user: prompter, assistant: bot}")]}


def with_train_entries(recipe: Path, entries: str) -> None:
    """Replace the one train dataset line of a `tiny_recipe` with ``entries`` (YAML list lines)."""
    text = recipe.read_text()
    start = text.index("    - {path:")
    recipe.write_text(text[:start] + entries + text[text.index("\n", start) + 1:])


def renamed_roles(data: Path, tmp: Path) -> Path:
    """sharegpt rows whose roles are called prompter/bot (OASST-like; LLaMA-Factory's user_tag/assistant_tag)."""
    rename = {"human": "prompter", "gpt": "bot"}
    rows = [json.loads(line) for line in (data / "sharegpt.jsonl").read_text().splitlines()]
    for row in rows:
        for turn in row["conversations"]:
            turn["from"] = rename.get(turn["from"], turn["from"])
    (tmp / "roles.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp / "roles.jsonl"


def limit_recipes(tmp_path: Path, assets) -> dict[Path, int]:
    """`num_samples: N` is the first N rows everywhere (LLaMA-Factory's dataset_info num_samples would draw N at
    random; Axolotl had no key and read every row), and a file's own role names (`columns: {user: prompter,
    assistant: bot}`) reach Axolotl (`roles`) and trl: recipe -> its rows (the sum of its limits)."""
    renamed_roles(assets.data, tmp_path)
    folders = {"roles": tmp_path}
    recipes = {}
    for case, limits in LIMITS.items():
        recipe = tiny_recipe(tmp_path, assets, f"limit-{case}", "extends: [lora-sft]")
        with_train_entries(recipe, "".join(f"    - {{path: {folders.get(data, assets.data)}/{data}.jsonl, "
                                           f"format: {fmt}, num_samples: {n}{extra}}}\n"
                                           for data, fmt, n, extra in limits))
        recipes[recipe] = sum(n for _, _, n, _ in limits)
    return recipes


def tool_rows(tmp: Path, n: int) -> Path:
    """sharegpt rows with a function call and its observation between the user and the answer."""
    tools = json.dumps([{"name": "weather", "description": "the weather in a city",
                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}])
    rows = [{"conversations": [{"from": "human", "value": f"What is the weather in city {i}?"},
                               {"from": "function_call", "value": json.dumps({"name": "weather",
                                                                              "arguments": {"city": str(i)}})},
                               {"from": "observation", "value": "sunny"},
                               {"from": "gpt", "value": f"It is sunny in city {i}."}], "tools": tools}
            for i in range(n)]
    (tmp / "tools.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp / "tools.jsonl"


def test_tool_turns_reach_llamafactory(tiny_assets, run_env, tmp_path):
    """Once dataset_info has `tags`, LLaMA-Factory takes every tag it does not name as None and drops each row with
    a turn no tag matches: the compiled entry names the observation and function tags, so tool rows are kept."""
    recipe = tiny_recipe(tmp_path, tiny_assets, "tools", "extends: [lora-sft]")
    with_train_entries(recipe,
        f"    - {{path: {tool_rows(tmp_path, 6)}, format: sharegpt, columns: {{tools: tools}}}}\n")
    recipe.write_text(recipe.read_text().replace("  val: {split: 0.2}\n", ""))
    proc = ftr("tokens", recipe, "-b", "llamafactory", "-n", 6, env=run_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("--- row ") == 6, proc.stdout[-3000:]
    assert "Tool Name: weather" in proc.stdout and 'Action Input: {"city": "5"}' in proc.stdout
