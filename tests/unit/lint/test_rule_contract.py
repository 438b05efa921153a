"""Rules declare their messages and options; packs, reports and documented examples are checked against them; the
lint cases pin every finding's text and line:col in snapshot files (UPDATE_SNAPSHOTS=1 rewrites them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from test_lint_rules import CASES_DIR, write_case

from ft_recipes.core.findings import FtrError
from ft_recipes.lint import Options, lint_file
from ft_recipes.lint.examples import checked_rules, problems
from ft_recipes.lint.pack import default_pack, load_pack
from ft_recipes.lint.registry import Context, UndeclaredMessage, all_rules

SNAPSHOTS = CASES_DIR / "snapshots"


def test_the_default_pack_holds_exactly_what_each_rule_declares():
    for code, section in default_pack()["rules"].items():
        rule = all_rules()[code]
        assert tuple(section.get("messages", {})) == rule.messages, code
        assert tuple(k for k in section if k not in ("messages", "sources")) == rule.options, code
    for code, rule in all_rules().items():
        if rule.messages:
            assert code in default_pack()["rules"], f"{code} declares messages the default pack does not hold"


def test_a_report_of_an_undeclared_kind_is_an_error():
    rule = all_rules()["FTR102"]
    ctx = Context(recipe=None, rule=rule, pack=default_pack()["rules"]["FTR102"])
    with pytest.raises(UndeclaredMessage, match="'too_hihg'"):
        ctx.report(("method", "lora", "r"), "too_hihg", r=64)


@pytest.mark.parametrize("section,complaint", [
    ({"FTR102": {"messages": {"too_hihg": {"severity": "error"}}}}, "FTR102 reports no message 'too_hihg'"),
    ({"FTR102": {"maximum": 32}}, "FTR102 has no option 'maximum'"),
    ({"FTR102": {"messages": {"too_high": {"colour": "red"}}}}, "messages.too_high.colour: not one of"),
])
def test_a_pack_naming_an_unknown_kind_or_option_is_refused(tmp_path, section, complaint):
    pack = tmp_path / "team.yaml"
    pack.write_text(yaml.safe_dump({"version": 1, "rules": section}), encoding="utf-8")
    with pytest.raises(FtrError, match=complaint):
        load_pack((str(pack),))


def test_a_pack_with_declared_kinds_and_options_loads(tmp_path):
    pack = tmp_path / "team.yaml"
    pack.write_text("rules:\n  FTR102: {max: 32, messages: {too_high: {severity: error}}}\n", encoding="utf-8")
    assert load_pack((str(pack),))["rules"]["FTR102"]["max"] == 32


@pytest.mark.parametrize("rule", checked_rules(), ids=lambda r: r.code)
def test_documented_examples_do_what_they_say(rule):
    assert problems(rule) == []


# --- snapshots: message text and position of every lint case --------------------------------------------------

def _snapshot(path: Path, tmp_path: Path) -> str:
    out = []
    for i, case in enumerate(yaml.safe_load(path.read_text())["cases"]):
        directory = tmp_path / str(i)
        directory.mkdir()
        out.append(f"## {case['name']}")
        for f in sorted(lint_file(write_case(case, directory), Options()), key=lambda f: (f.line, f.col, f.code)):
            where = Path(f.file).relative_to(directory).as_posix() if Path(f.file).is_relative_to(directory) else f.file
            text = f"{where}:{f.line}:{f.col}: {f.code} [{f.severity}] {f.message}" + (f" ({f.hint})" if f.hint else "")
            out.append(text.replace(str(directory.resolve()), "<case>").replace(str(directory), "<case>"))
        out.append("")
    return "\n".join(out)


@pytest.mark.parametrize("path", sorted(CASES_DIR.glob("FTR*.yaml")), ids=lambda p: p.stem)
def test_lint_case_snapshots(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    got = _snapshot(path, tmp_path)
    snapshot = SNAPSHOTS / f"{path.stem}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(got, encoding="utf-8")
    assert got == snapshot.read_text(encoding="utf-8"), f"review, then UPDATE_SNAPSHOTS=1: {snapshot}"
