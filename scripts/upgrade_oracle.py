"""`ftr upgrade` judged by the backends: the target version's validator and the effective values.

    python scripts/upgrade_oracle.py [axolotl=0.19.0] [axolotl=0.21.0] [llamafactory=0.9.5] [--drop] [--json OUT]

Corpora (one figure per source version): the user corpus's Axolotl configs (tests/data/realworld/users/,
source version unknown: "users"), the frameworks' older example configs at pinned release commits
(tests/data/realworld/older/, scripts/upgrade_corpus.py: Axolotl 0.8.0 and 0.12.0, LLaMA-Factory 0.9.1 and
0.9.3) and, for axolotl=0.21.0, the current Axolotl examples (tests/data/realworld/axolotl/, 0.18+).

For each target, in a copy of the corpora, each config is upgraded (`ftr upgrade`, written next to it as
NAME.ftr-upgraded.EXT, so that it runs from the same directory), then:

- **accepted**: the target version's own validator (validate_helper.py, with the start-up checks of
  scripts/realworld_verdicts.py: DeepSpeed file, LLaMA-Factory's dataset resolution) gives verdict "ok" (accepted,
  no key silently dropped), before (on the original) and after (on the upgraded file);
- **effective values kept**: the backend's parser (compare_helper.py, one process per environment) reads
  (a) the original with the target's parser, when the target accepts it, and (b) for axolotl=0.21.0 the original
  with Axolotl 0.19.0's parser (the previous version ftr knows, the source version of the current examples),
  and the upgraded file with the target's parser. Every value equal, except the keys an upgrade change touched,
  and each of those holds the value the change documents (a renamed key its old value, a legacy attention flag
  its attn_implementation, ...). A key removed although it asked for something (`--drop`) is a changed value.
  The parsers of older source versions (Axolotl < 0.19, LLaMA-Factory < 0.9.5) are not installed: for those
  files (a) and the documented values are what is judged.

A file that is not both is "refused", with the reason: the upgrade's error findings, else the validator's error
or the keys it drops silently, else the first changed value. tests/backends/test_upgrade_oracle.py runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
import conversion_oracle as oracle  # noqa: E402 - a sibling script
import realworld_verdicts as rv  # noqa: E402 - a sibling script

OLDER = ROOT / "tests" / "data" / "realworld" / "older"
TARGETS = ("axolotl=0.19.0", "axolotl=0.21.0", "llamafactory=0.9.5")
SOURCE_PARSER = {("axolotl", "0.21.0"): "0.19.0"}  # a second reading of the original: the previous version's
SUFFIX = ".ftr-upgraded"
# Files per backend process: Axolotl 0.21's validator, run on some hundreds of configs in one process, starts
# failing with RecursionError (state its patches leave behind), which is not a verdict on the file.
CHUNK = 120
# Keys whose effective value is the process's or the machine's, not the file's.
BOOKKEEPING = {"capabilities", "env_capabilities", "world_size", "local_rank", "device", "device_map", "ddp",
               "n_gpu", "_n_gpu", "process_index", "distributed_state", "is_preprocess"}


# Keys no Axolotl version reads: `git log --all -G'(cfg\.|cfg\["|\.get\("|^ +)KEY\b' -- src` over the
# axolotl-ai-cloud/axolotl history (v0.1.0 to 0.21) finds no commit. The validator drops them in every version, so
# a file it accepts with only these dropped is read as its source version read it (the second figure).
NEVER_READ = {"adam_eps", "push_to_hub", "data_seed", "test_value", "push_adapter_to_hub", "hub_private_repo"}


@dataclass
class Case:
    backend: str
    source: str  # the source version ("users" for the user corpus, "0.18+" for the current examples)
    path: str  # relative to the work folder
    run: str  # its run directory, relative to the work folder
    changes: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    before: str = ""
    after: str = ""
    before_record: dict = field(default_factory=dict)
    after_record: dict = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)  # what the upgrade changed (target on both, documented)
    version_differences: list[str] = field(default_factory=list)  # the previous version's reading vs the target's
    readings: list[str] = field(default_factory=list)

    @property
    def upgraded(self) -> str:
        stem, dot, ext = self.path.rpartition(".")
        return f"{stem}{SUFFIX}.{ext}"

    @property
    def errors(self) -> list:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def kept(self) -> bool:
        return not self.differences and not self.version_differences

    @property
    def accepted(self) -> bool:
        return self.after == "ok" and self.kept

    @property
    def accepted_never_read_dropped(self) -> bool:
        """Accepted with values kept, or accepted with only keys no version reads dropped."""
        dropped = set(self.after_record.get("dropped") or [])
        return self.accepted or (self.after == "dropped" and self.kept and dropped <= NEVER_READ)

    def reason(self) -> str:
        if self.accepted:
            return ""
        if self.errors:
            return "ftr upgrade: " + "; ".join(f"{f.key}: {f.message}" for f in self.errors)[:300]
        if self.after != "ok":
            record = self.after_record
            if record.get("dropped"):
                return f"{self.after}: the target drops {', '.join(record['dropped'])} silently"
            return f"{self.after}: {rv._first_lines(record.get('error') or '')[:300]}"
        return "effective value changed: " + "; ".join(self.differences + self.version_differences)[:300]


def corpora(backend: str, version: str, current: bool = True) -> list[tuple[str, Path, dict[str, str]]]:
    """(source label, folder, {config: run dir} relative to the folder) of every corpus for ``backend``."""
    out = []
    if backend == "axolotl":
        out.append(("users", rv.corpus_dir("axolotl", "users"), rv.run_dirs("axolotl")))
    for folder in sorted(OLDER.glob(f"{backend}-*"), key=lambda p: oracle_version(p.name.split("-", 1)[1])):
        files = sorted(str(p.relative_to(folder)) for p in (folder / "examples").rglob("*")
                       if p.suffix in (".yaml", ".yml"))
        out.append((folder.name.split("-", 1)[1], folder, {f: "." for f in files}))
    if backend == "axolotl" and version == "0.21.0" and current:
        files = rv.corpus_files("axolotl")
        out.append(("0.18+", rv.corpus_dir("axolotl"), {f: "." for f in files}))
    return out


def oracle_version(text: str) -> tuple:
    from ft_recipes.backends.upgrade import version_key

    return version_key(text)


def python_for(backend: str, version: str) -> str:
    from ft_recipes.backends import get
    from ft_recipes.backends.envs import find_python

    python = find_python(get(backend, version).env_spec())
    if python is None:
        raise SystemExit(f"{backend} {version}: no environment (ftr backend install {backend})")
    return str(python)


# --- the validator ----------------------------------------------------------------------------------------------

def verdicts(backend: str, python: str, work: Path, files: list[str], dirs: dict[str, str]) -> dict[str, dict]:
    """{file: record} of the target validator and its start-up checks, as scripts/realworld_verdicts.py runs them;
    a file refused only for an optional package the environment lacks is checked again without that key."""
    records = {}
    for start in range(0, len(files), CHUNK):
        records.update(rv._helper(python, backend, work, files[start:start + CHUNK], dirs))
    saved: dict[str, str] = {}
    for _ in range(len(rv.OPTIONAL_KEYS)):
        again = [p for p, r in records.items() if rv._missing_package(r) in rv.OPTIONAL_KEYS]
        if not again:
            break
        for path in again:
            saved.setdefault(path, (work / path).read_text(encoding="utf-8"))
            rv._without(work / path, [rv.OPTIONAL_KEYS[rv._missing_package(records[path])]])
        records.update(rv._helper(python, backend, work, again, dirs))
    for path, text in saved.items():
        (work / path).write_text(text, encoding="utf-8")
    for script in rv.RUNTIME_CHECKS[backend]:
        rv._runtime_check(python, script, work, records, dirs)
    if backend == "axolotl":
        rv._renamed_not_dropped(python, records)
    return records


# --- the effective values ---------------------------------------------------------------------------------------

def parse(backend: str, python: str, work: Path, items: list[tuple[str, str]]) -> list[dict]:
    """compare_helper.py's records of (run dir, config) items relative to ``work``, in one process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
    jobs = [(work / run, Path(os.path.relpath(work / path, work / run))) for run, path in items]
    return [record for start in range(0, len(jobs), CHUNK)
            for record in oracle.parse_all(jobs[start:start + CHUNK], backend, Path(python), env)]


def values(backend: str, record: dict | None) -> dict | None:
    if not record or not record.get("ok"):
        return None
    flat = oracle.normalised(backend, record["effective"], evaluates=True)
    return {k: v for k, v in flat.items() if k not in BOOKKEEPING}


def compare(case: Case, name: str, before: dict | None, after: dict | None, versions_differ: bool = False) -> None:
    """Differences of one reading pair, apart from the keys the upgrade touched. Between two versions'
    parsers (``versions_differ``) only the keys both have and both set are compared: a field one version lacks,
    or leaves None where the other writes its default out, has no reading to compare."""
    if before is None or after is None:
        return
    case.readings.append(name)
    touched = {k for c in case.changes for k in c.keys}
    keys = set(before) | set(after)
    if versions_differ:  # a section both versions write out: the fields both have and set
        before, after = _common(before, after), _common(after, before)
        keys = set(before)
    where = case.version_differences if versions_differ else case.differences
    for key in sorted(keys):
        if key in touched or oracle.same(before.get(key), after.get(key)):
            continue
        where.append(f"{key} ({name}): {_short(before.get(key))} -> {_short(after.get(key))}")


def _common(mine: dict, theirs: dict) -> dict:
    """``mine`` on the keys both mappings have and set, nested mappings alike."""
    out = {}
    for key, value in mine.items():
        other = theirs.get(key)
        if value is None or other is None:
            continue
        out[key] = _common(value, other) if isinstance(value, dict) and isinstance(other, dict) else value
    return out


def documented(case: Case, after: dict | None) -> None:
    """Each value a change documents is what the target reads; a key dropped with its meaning is a change."""
    for change in case.changes:
        for key, want in change.expect:
            got = None if after is None else after.get(key)
            if after is not None and not (oracle.same(_set(want), _set(got)) or str(want) == str(got)):
                case.differences.append(f"{key}: the upgrade wrote {_short(want)}, the target reads {_short(got)}")
    for finding in case.findings:
        if finding.code == "FTR006" and finding.severity == "warning" and "asked for is gone" in finding.message:
            case.differences.append(f"{finding.key}: removed with what it asked for (--drop)")


def _set(value):
    """A mapping without its None entries (a parser writes out the fields nobody set)."""
    return {k: _set(v) for k, v in value.items() if v is not None} if isinstance(value, dict) else value


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# --- one target -------------------------------------------------------------------------------------------------

def run_target(target: str, drop: bool = False, root: Path | None = None, current: bool = True) -> list[Case]:
    from ft_recipes.backends.upgrade import parse_target, upgrade_file

    backend, version = parse_target(target)
    python = python_for(backend, version)
    with tempfile.TemporaryDirectory(prefix="ftr-upgrade-oracle-", dir=root) as tmp:
        work = Path(tmp)
        cases = []
        for label, folder, dirs in corpora(backend, version, current):
            shutil.copytree(folder, work / label.replace("+", "plus"))
            base = label.replace("+", "plus")
            cases += [Case(backend, label, f"{base}/{f}", os.path.normpath(f"{base}/{run}")) for f, run in dirs.items()]
        for case in cases:
            result = upgrade_file(work / case.path, backend, version, drop)
            case.changes, case.findings = result.changes, result.findings
            (work / case.upgraded).write_text(result.new_text, encoding="utf-8")
        dirs = {c.path: c.run for c in cases} | {c.upgraded: c.run for c in cases}
        files = [c.path for c in cases] + [c.upgraded for c in cases]
        records = verdicts(backend, python, work, files, dirs)
        parsed = parse(backend, python, work, [(c.run, c.path) for c in cases] + [(c.run, c.upgraded) for c in cases])
        source_python = SOURCE_PARSER.get((backend, version))
        source = parse(backend, python_for(backend, source_python), work, [(c.run, c.path) for c in cases]) \
            if source_python else [None] * len(cases)
        for i, case in enumerate(cases):
            case.before_record, case.after_record = records[case.path], records[case.upgraded]
            case.before, case.after = rv.classify(case.before_record), rv.classify(case.after_record)
            original, upgraded = values(backend, parsed[i]), values(backend, parsed[len(cases) + i])
            documented(case, upgraded)
            compare(case, f"{backend} {version} on the original", original, upgraded)
            if source_python:
                compare(case, f"{backend} {source_python} on the original", values(backend, source[i]), upgraded,
                        versions_differ=True)
    return cases


def figures(cases: list[Case]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for case in cases:
        row = out.setdefault(case.source, Counter())
        row["configs"] += 1
        row["accepted before"] += case.before == "ok"
        row["accepted after"] += case.after == "ok"
        row["accepted after, values kept"] += case.accepted
        row["no verdict (env)"] += case.after == "env"
        row["or only never-read keys dropped"] += case.accepted_never_read_dropped
        if case.source == "users" and case.before != "ok":
            row["rejected before"] += 1
            row["rejected before, accepted after, values kept"] += case.accepted
        if case.readings:
            row["read twice (values compared)"] += 1
    return {k: dict(v) for k, v in out.items()}


def report(target: str, cases: list[Case]) -> str:
    lines = [f"## {target}", "", "| source | configs | no verdict (env) | accepted before | accepted after | "
             "after, values kept | or only never-read keys dropped |", "|---|---|---|---|---|---|---|"]
    for source, row in figures(cases).items():
        lines.append(f"| {source} | {row['configs']} | {row['no verdict (env)']} | {row['accepted before']} | "
                     f"{row['accepted after']} | {row['accepted after, values kept']} | "
                     f"{row['or only never-read keys dropped']} |")
    users = figures(cases).get("users")
    if users:
        lines.append(f"\nusers the target rejects before: {users['rejected before']}; of them accepted after, values "
                     f"kept: {users['rejected before, accepted after, values kept']}")
    lines.append("")
    causes = Counter(_cause(c.reason()) for c in cases if not c.accepted)
    lines += [f"- {n} x {cause}" for cause, n in causes.most_common()]
    return "\n".join(lines)


def _cause(reason: str) -> str:
    import re

    return re.sub(r"'[^']*'|\"[^\"]*\"|/\S+|input_value=\{.*", "_", reason)[:140]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    parser.add_argument("--drop", action="store_true")
    parser.add_argument("--json", default=None, help="write every case's verdicts and reasons here")
    args = parser.parse_args(argv)
    dump = {}
    for target in args.targets:
        cases = run_target(target, args.drop)
        print(report(target, cases), flush=True)
        dump[target] = {"figures": figures(cases), "files": {
            c.path: {"source": c.source, "before": c.before, "after": c.after, "kept": c.kept,
                     "readings": c.readings, "differences": c.differences, "reason": c.reason(),
                     "version_differences": c.version_differences,
                     "dropped": c.after_record.get("dropped") or [], "changes": [ch.text for ch in c.changes]}
                for c in cases}}
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
