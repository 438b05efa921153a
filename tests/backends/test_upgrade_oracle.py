"""`ftr upgrade` judged by the backends (scripts/upgrade_oracle.py): on the user corpus's Axolotl configs and the
frameworks' older example configs at pinned commits (tests/data/realworld/older/), the target version's own
validator accepts the upgraded file and the effective values are unchanged (read by the target's parser on the
original where it accepts it, by Axolotl 0.19.0's for the 0.21.0 target, and by the target's on the upgraded
file), or the file is refused with the reason. Figures: docs/commands/upgrade.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

# The figures measured (docs/commands/upgrade.md): {target: {source: accepted after, values kept}}. A change
# that accepts fewer fails; one that accepts more updates the table and the docs.
MEASURED = {
    "axolotl=0.19.0": {"users": 10, "0.8.0": 87, "0.12.0": 122},
    "axolotl=0.21.0": {"users": 10, "0.8.0": 88, "0.12.0": 124},
    "llamafactory=0.9.5": {"0.9.1": 29, "0.9.3": 31},
}


def _oracle():
    spec = importlib.util.spec_from_file_location("upgrade_oracle", ROOT / "scripts" / "upgrade_oracle.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# Axolotl 0.21.0 (about 8 minutes: its validator is run in chunks and 0.19.0 reads each original too) is marked
# slow for CI time; `pytest -m slow tests/backends/test_upgrade_oracle.py` runs it.
@pytest.mark.parametrize("target,fixtures", [("axolotl=0.19.0", ("ax_python",)),
                                             pytest.param("axolotl=0.21.0", ("ax_python", "ax21_python"),
                                                          marks=pytest.mark.slow),
                                             ("llamafactory=0.9.5", ("lf_python",))])
def test_upgraded_configs_are_accepted_with_their_effective_values(target, fixtures, request, tmp_path):
    for name in fixtures:  # the environments, installed when missing
        request.getfixturevalue(name)
    oracle = _oracle()
    cases = oracle.run_target(target, root=tmp_path, current=False)  # the 0.18+ examples: the script only
    print(oracle.report(target, cases))
    for case in cases:
        print(f"  {case.path}: {case.before} -> {case.after}{'' if case.kept else ' (values changed)'} "
              f"{case.reason()}")
    # An upgrade never breaks a file the target accepted, nor changes what the target reads from it (a value the
    # previous version reads otherwise, version_differences, is the version's doing and counts in the figures).
    broken = [c.path for c in cases if c.before == "ok" and (c.after != "ok" or c.differences)]
    assert not broken, broken
    # Every file the target does not accept after the upgrade is refused with a reason.
    assert all(c.reason() for c in cases if not c.accepted)
    figures = oracle.figures(cases)
    for source, floor in MEASURED[target].items():
        assert figures[source]["accepted after, values kept"] >= floor, (source, figures[source])
