"""ftr's lint and convert measured against the backends' own verdicts on the real-world corpus.

    python scripts/realworld_report.py [--validate] [--json] [--list] [--corpus examples|users]

Lint is run from each backend's corpus folder as the working directory (as the frameworks' users run); a
user-repository file (tests/data/realworld/users/) from its own repository's run directory (its manifest).
- Precision: a backend-accepted file ("ok") with an error-level ftr finding outside the best-practice rules is a
  false error; counted per file and per cause (rule code + message without values). An error saying the backend
  ignores a value the file sets (IGNORED_VALUE) is true although the validator accepts the file; it is listed
  apart.
- Recall: of the refused files and those Axolotl drops keys from, the share with an error-level finding
  (for dropped keys: a finding at a dropped key).
- Conversion: `ftr convert --to OTHER` of each accepted file; with --validate (needs the environments) the
  converted file is checked by the other backend's validator.
Files whose verdict is "env" or "offline" (the validator could not judge them here) are left out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "realworld"
OTHER = {"llamafactory": "axolotl", "axolotl": "llamafactory"}


VERDICTS = {"examples": CORPUS / "verdicts.json", "users": CORPUS / "users" / "verdicts.json"}


def verdicts(corpus: str = "examples") -> dict:
    return json.loads(VERDICTS[corpus].read_text(encoding="utf-8"))


def locate(backend: str, path: str, corpus: str) -> tuple[Path, str]:
    """(the directory the backend runs the file from, the file's path relative to it)."""
    if corpus == "examples":
        return CORPUS / backend, path
    sys.path.insert(0, str(ROOT / "scripts"))
    from realworld_verdicts import run_dirs  # noqa: E402 - a sibling script

    run = run_dirs(backend)[path]
    return CORPUS / "users" / backend / run, os.path.relpath(path, run)


@contextlib.contextmanager
def working_dir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def cause(finding) -> str:
    """A finding's rule and message with the file's own values taken out, to group findings by cause."""
    message = re.sub(r"'[^']*'|\"[^\"]*\"|/\S+|[0-9][0-9.e+-]*", "_", finding.message)
    return f"{finding.code} {message[:90]}"


def best_practice(code: str) -> bool:
    """A best-practice rule: outside the structure rules (FTR0xx: facts about the file), one whose default
    severity is below error (a message or a rule pack may raise it)."""
    from ft_recipes.lint.registry import all_rules

    rule = all_rules().get(code)
    return not code.startswith("FTR0") and rule is not None and rule.severity != "error"


# Errors that are true on a file the validator accepts: the backend silently ignores a value the file sets
# (an error by the principle: "would silently do something the user did not write"), which a validator that
# accepts the file cannot see: num_epochs with max_steps; a value the backend overrides (Backend.native_checks,
# "has no effect"). Matched by rule and message.
IGNORED_VALUE = {"FTR007": ("max_steps silently wins", "has no effect")}


def ignored_value(finding) -> bool:
    return any(text in finding.message for text in IGNORED_VALUE.get(finding.code, ()))


def lint_errors(backend: str, path: str, corpus: str = "examples") -> list:
    """Error-level findings of `ftr lint` on one corpus file, run from its run directory, outside the
    best-practice rules."""
    from ft_recipes.lint.engine import lint_file
    from ft_recipes.lint.options import Options

    run, relative = locate(backend, path, corpus)
    with working_dir(run):
        findings = lint_file(relative, Options(), backend)
    return [f for f in findings if f.severity == "error" and not best_practice(f.code)]


def measure_lint(data: dict | None = None, corpus: str = "examples") -> dict:
    """{backend: {accepted, false_error_files, causes, judged_bad, found_bad, missed}}."""
    data = data or verdicts(corpus)
    out = {}
    for backend in ("llamafactory", "axolotl"):
        files = data.get(backend, {}).get("files", {})
        causes: Counter = Counter()
        ignored: Counter = Counter()
        false_files, found, missed, accepted, bad = [], [], [], 0, 0
        for path, entry in files.items():
            verdict = entry["verdict"]
            if verdict in ("env", "offline"):
                continue
            errors = lint_errors(backend, path, corpus)
            if verdict == "ok":
                accepted += 1
                ignored.update(cause(f) for f in errors if ignored_value(f))
                errors = [f for f in errors if not ignored_value(f)]
                if errors:
                    false_files.append(path)
                    causes.update({cause(f) for f in errors})
                continue
            bad += 1
            if verdict == "dropped":
                keys = {f.key.split(".")[0] for f in errors} | {f.key for f in errors}
                hit = all(d in keys or d.split(".")[0] in keys or d.split("[")[0] in keys
                          for d in entry["dropped"])
            else:
                hit = bool(errors)
            (found if hit else missed).append(path)
        out[backend] = {"accepted": accepted, "false_error_files": sorted(false_files),
                        "causes": dict(causes.most_common()),
                        "ignored_value_errors": dict(ignored.most_common()), "judged_bad": bad, "found_bad": len(found),
                        "missed": sorted(missed)}
    return out


def convert_one(backend: str, path: str, out_dir: Path, corpus: str = "examples") -> tuple[bool, str]:
    """(converted, reason) for `ftr convert PATH --to OTHER -o out_dir`, run from the file's run directory."""
    from click.testing import CliRunner

    from ft_recipes.cli.main import main

    run, relative = locate(backend, path, corpus)
    with working_dir(run):
        result = CliRunner().invoke(main, ["convert", relative, "--to", OTHER[backend], "-o", str(out_dir)])
    if result.exit_code == 0:
        return True, ""
    text = (result.output or "") + (str(result.exception) if result.exception else "")
    lines = [line for line in text.splitlines() if "error" in line or "FTR" in line] or text.splitlines()[-1:]
    return False, re.sub(r"^\S+:\d+:\d+: ", "", lines[0] if lines else "?")[:140]


def measure_convert(data: dict | None = None, validate: bool = False, corpus: str = "examples") -> dict:
    data = data or verdicts(corpus)
    out = {}
    with tempfile.TemporaryDirectory(prefix="ftr-realworld-convert-") as tmp:
        for backend in ("llamafactory", "axolotl"):
            files = [p for p, e in data.get(backend, {}).get("files", {}).items() if e["verdict"] == "ok"]
            reasons: Counter = Counter()
            converted = {}
            for i, path in enumerate(files):
                target = Path(tmp) / backend / str(i)
                ok, reason = convert_one(backend, path, target, corpus)
                if ok:
                    converted[path] = target
                else:
                    reasons[re.sub(r"'[^']*'", "_", reason)] += 1
            entry = {"accepted": len(files), "converted": len(converted), "refusals": dict(reasons.most_common())}
            if validate and converted:
                entry["accepted_by_target"] = _validate_converted(OTHER[backend], converted)
            out[backend] = entry
    return out


def _validate_converted(target: str, converted: dict[str, Path]) -> dict | None:
    """{"accepted": n, "refused": {source file: the target validator's error}}; None without its environment."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from realworld_verdicts import _helper, backend_python, classify  # noqa: E402 - a sibling script

    python = backend_python(target)
    if python is None:
        return None
    mains = {}
    for source, folder in converted.items():
        configs = sorted(folder.glob("*.yaml"))
        if configs:
            mains[source] = str(configs[0])
    records = _helper(python, target, Path(tempfile.gettempdir()), list(mains.values()))
    verdicts = {source: classify(records[p]) for source, p in mains.items()}
    refused = {source: records[p].get("error") or f"dropped {records[p].get('dropped')}"
               for source, p in mains.items() if verdicts[source] in ("refused", "dropped")}
    unjudged = sum(1 for v in verdicts.values() if v in ("env", "offline"))
    return {"accepted": sum(1 for v in verdicts.values() if v == "ok"), "refused": refused, "unjudged": unjudged}


def main(argv: list[str]) -> int:
    corpus = argv[argv.index("--corpus") + 1] if "--corpus" in argv else "examples"
    lint = measure_lint(corpus=corpus)
    conv = measure_convert(validate="--validate" in argv, corpus=corpus)
    if "--json" in argv:
        print(json.dumps({"lint": lint, "convert": conv}, indent=1))
        return 0
    for backend, m in lint.items():
        print(f"{backend}: {len(m['false_error_files'])} of {m['accepted']} accepted files get an ftr error; "
              f"{m['found_bad']} of {m['judged_bad']} refused/dropping files get an error")
        for text, count in m["causes"].items():
            print(f"   {count:4d}  {text}")
        for text, count in m["ignored_value_errors"].items():
            print(f"   {count:4d}  (true: the backend ignores a value the file sets) {text}")
        if "--list" in argv:
            for path in m["false_error_files"]:
                print(f"   false error: {path}")
            for path in m["missed"]:
                print(f"   missed: {path}")
    for backend, c in conv.items():
        target = c.get("accepted_by_target")
        extra = (f", {target['accepted']} accepted by {OTHER[backend]} ({target['unjudged']} not judged there: "
                 f"its environment lacks a package they need)") if target else ""
        print(f"convert {backend} -> {OTHER[backend]}: {c['converted']} of {c['accepted']}{extra}")
        for text, count in c["refusals"].items():
            print(f"   {count:4d}  {text}")
        for source, error in (target or {}).get("refused", {}).items():
            print(f"   refused by {OTHER[backend]}: {source}: {error[:160]}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
