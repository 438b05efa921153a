"""The conversion oracle on real files: `ftr convert` of every config a backend accepts in the real-world corpora
(tests/data/realworld: the frameworks' examples and user configs), judged by the backends' own parsers.

Round trip (a file converted to its own backend) and cross (LLaMA-Factory <-> Axolotl): every training-relevant
effective value is the same for the source and the converted file, each parsed by its backend from the directory
it runs in (scripts/conversion_oracle.py, one parsing process per backend for all files). A difference passes
only when the conversion was refused with a finding, `convert` reported the key as approximated, or it is in
the script's KNOWN table (a reason each). Run with -s to see the figures (docs/accuracy.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.backends, pytest.mark.xdist_group("conversion-oracle")]


def _script(name: str = "conversion_oracle"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def oracle(tmp_path_factory, lf_python, ax_python, backend_env):
    script = _script()
    cases = script.run(tmp_path_factory.mktemp("conversion-oracle"),
                       {"llamafactory": lf_python, "axolotl": ax_python}, backend_env)
    return script, cases


def test_every_accepted_config_is_checked(oracle):
    script, cases = oracle
    for backend in script.BACKENDS:
        for corpus in script.CORPORA:
            sources = [c for c in cases if c.source == backend and c.corpus == corpus]
            assert len(sources) == 2 * len(script.accepted(backend, corpus))
            unparsed = [c.path for c in sources if not c.source_eff["ok"] and not _offline(c.source_eff["error"])]
            assert not unparsed, f"{backend} no longer accepts: {unparsed[:5]}"


def _offline(error: str) -> bool:
    """The parser needed the hub (not reachable here), not a verdict on the file."""
    return "LocalEntryNotFound" in error or "offline" in error.lower()


def test_a_refused_conversion_names_a_finding(oracle):
    _, cases = oracle
    silent = [f"{c.direction}: {c.path}" for c in cases if not c.converted and not c.reason]
    assert not silent, "\n".join(silent)


def test_converted_files_keep_every_effective_value(oracle, capsys):
    script, cases = oracle
    rows = script.figures(cases)
    with capsys.disabled():
        print("\n" + script.table(rows) + "\n" + script.details(rows))
    problems = script.unexplained(cases)
    assert not problems, f"{len(problems)} unexplained differences:\n" + "\n".join(problems[:40])


def test_the_known_differences_still_occur(oracle):
    """A KNOWN entry that no longer excuses anything is removed from the table (it only hides new ones)."""
    script, cases = oracle
    used = {(c.direction, key) for c in cases for key, why in c.excused if not why.startswith("approximated")}
    used |= {(c.direction, f"{key} {c.path}") for c in cases for key, _ in c.excused}
    stale = sorted(set(script.KNOWN) - used)
    assert not stale, f"KNOWN entries that no longer occur: {stale}"


# --- the data: the first rows of source and result through each backend's own preprocessing -------------------

@pytest.fixture(scope="module")
def token_pairs(oracle, tiny_assets, lf_python, ax_python, backend_env, tmp_path_factory):
    _, cases = oracle
    tokens = _script("conversion_tokens")
    pairs = tokens.run(cases, {"llamafactory": lf_python, "axolotl": ax_python}, backend_env, tiny_assets.model,
                       tmp_path_factory.mktemp("conversion-tokens"))
    return tokens, pairs


def test_converted_data_tokenizes_to_the_same_ids_and_labels(token_pairs, capsys):
    tokens, pairs = token_pairs
    with capsys.disabled():
        print("\n" + tokens.table(pairs) + "\n" + tokens.reasons(pairs))
    problems = tokens.unexplained(pairs)
    assert not problems, f"{len(problems)} unexplained token differences:\n" + "\n".join(problems[:40])


def test_the_data_check_compares_rows_in_both_directions_of_each_backend_with_local_data(token_pairs):
    """The corpora's local stand-in rows (LLaMA-Factory's data/ demo files) are compared, not only counted."""
    _, pairs = token_pairs
    for direction in ("round trip LF", "LF -> Axolotl"):
        assert sum(p.status == "identical" for p in pairs if p.direction == direction) >= 8, direction


def test_a_source_the_backend_cannot_tokenize_is_never_its_conversions_fault(token_pairs):
    """What keeps a pair from being compared is the machine (hub data offline, media not copied), not ftr."""
    tokens, pairs = token_pairs
    for pair in pairs:
        if pair.status == "source not tokenized":
            assert any(why in pair.detail for why in tokens.NOT_HERE), f"{pair.path}: {pair.detail}"
