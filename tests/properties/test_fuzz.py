"""Hypothesis fuzzing: random and mutated recipes and native configs never produce a traceback;
every command exits 0, 1 or 2 with a message."""

import os
import random
import string

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paths import EXAMPLES, ROOT

from ft_recipes.cli.main import main

NATIVE = sorted((ROOT / "tests" / "data" / "native").glob("*.yaml"))
SEEDS = [p.read_text() for p in EXAMPLES + NATIVE]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=40), st.just("1e-5"), st.just(""), st.just("\u202e\u0000"))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=20)

COMMANDS = [["validate"], ["lint"], ["lint", "--format", "sarif"], ["compile", "-b", "axolotl"], ["compile", "-b",
    "llamafactory"], ["import"],
            ["convert", "--to", "axolotl"], ["convert", "--to", "llamafactory"], ["explain"]]
# In CI the examples are derived from the test names (derandomize) so a landing never depends on luck;
# locally each run explores new inputs.
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=bool(os.environ.get("CI")))


def _run(tmp_path, text: str | bytes, command: list[str]):
    path = tmp_path / "fuzz.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    args = command[:1] + [str(path)] + command[1:]
    if command[0] in ("import", "convert", "compile"):
        args += ["-o", str(tmp_path / "out"), "--force"] if command[0] != "import" else []
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    assert "internal error" not in result.output, result.output
    if result.exit_code:
        assert result.output.strip(), "a failure must say why"
    return result


def _mutate(data, rnd: random.Random, value):
    if isinstance(data, dict) and data:
        key = rnd.choice(list(data))
        action = rnd.random()
        if action < 0.3:
            data[key] = value
        elif action < 0.5:
            data[key + rnd.choice(string.ascii_lowercase)] = data.pop(key)
        elif action < 0.6:
            del data[key]
        else:
            _mutate(data[key], rnd, value)
    elif isinstance(data, list) and data:
        i = rnd.randrange(len(data))
        if rnd.random() < 0.5:
            data[i] = value
        else:
            _mutate(data[i], rnd, value)
    return data


@FAST
@given(seed=st.integers(0, 10**6), value=values, command=st.sampled_from(COMMANDS))
def test_mutated_configs(tmp_path, seed, value, command):
    rnd = random.Random(seed)
    data = yaml.safe_load(rnd.choice(SEEDS))
    text = yaml.safe_dump(_mutate(data, rnd, value), allow_unicode=True)
    _run(tmp_path, text, command)


@FAST
@given(data=values, command=st.sampled_from(COMMANDS))
def test_random_documents(tmp_path, data, command):
    _run(tmp_path, yaml.safe_dump(data, allow_unicode=True), command)


@FAST
@given(blob=st.binary(max_size=300), command=st.sampled_from(COMMANDS))
def test_binary_junk(tmp_path, blob, command):
    _run(tmp_path, blob, command)


@pytest.mark.parametrize("text", [
    "",                                                   # empty file
    "a: &a [*a]\n",                                      # recursive alias
    "\n".join(f"l{i}: &l{i} [" + ",".join([f"*l{i-1}"] * 9) + "]" if i else "l0: &l0 [x,x,x,x,x,x,x,x,x]"
              for i in range(10)) + "\n",                # billion laughs
    "a:" + " [" * 200 + " ]" * 200 + "\n",               # deep nesting
    "model: {base: " + "x" * 1_000_00 + "}\n",          # long string
    "ftr: 1\nmodel: {base: m}\ndata: {train: [{path: ../../../../etc/passwd, format: alpaca}]}\n",
    "!!python/object/apply:os.system ['echo pwned']\n",
    "\ufeffftr: 1\n",
])
@pytest.mark.parametrize("command", COMMANDS)
def test_hostile_inputs(tmp_path, text, command):
    _run(tmp_path, text, command)
