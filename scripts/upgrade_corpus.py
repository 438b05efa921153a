"""Extract the frameworks' older example configs at pinned release commits into tests/data/realworld/older/.

    python scripts/upgrade_corpus.py --axolotl GIT_DIR --llamafactory GIT_DIR

GIT_DIR is a git directory of the upstream repository (a mirror; no work tree is needed): every file is read
with `git show <commit>:<path>`. Kept, per pinned version (PINNED below): the example training configs
(Axolotl: `examples/**/*.y*ml` with a top-level `base_model`, not `examples/cloud/`; LLaMA-Factory:
`examples/**/*.y*ml` with a top-level `model_name_or_path`), verbatim, at their upstream paths, and the
DeepSpeed JSONs they name (Axolotl `deepspeed_configs/*.json`, LLaMA-Factory `examples/deepspeed/*.json`).
Where the commit's tree in the mirror lacks a support file (LLaMA-Factory's `data/dataset_info.json`, demo
data and DeepSpeed JSONs at 0.9.1-0.9.3), it is taken from the pinned 0.9.5 corpus (tests/data/realworld/
llamafactory/), and README.md says so. These are the inputs of scripts/upgrade_oracle.py.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "realworld" / "older"
CURRENT = ROOT / "tests" / "data" / "realworld"
PINNED = {
    "axolotl": {"0.8.0": "3877c5c69da81a7914ea02bbb36fcf101c409771",
                "0.12.0": "2c8497e489111176adfea5a88d5415ad28d72548"},
    "llamafactory": {"0.9.1": "57354fc9904fe36daa6ddd9010d4936d84188ddb",
                     "0.9.3": "ca75f1edf3cb50343ed1c98605141c3e22075b5f"},
}
REPOS = {"axolotl": "https://github.com/axolotl-ai-cloud/axolotl",
         "llamafactory": "https://github.com/hiyouga/LLaMA-Factory"}
MARKER = {"axolotl": "base_model", "llamafactory": "model_name_or_path"}
SUPPORT = {"axolotl": ("deepspeed_configs/",), "llamafactory": ("examples/deepspeed/", "data/dataset_info.json")}


def git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True).stdout


def is_config(backend: str, path: str, text: bytes) -> bool:
    if not path.startswith("examples/") or not path.endswith((".yaml", ".yml")) or path.startswith("examples/cloud/"):
        return False
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and MARKER[backend] in data


def extract(backend: str, version: str, commit: str, git_dir: str) -> tuple[int, list[str]]:
    out = OUT / f"{backend}-{version}"
    shutil.rmtree(out, ignore_errors=True)
    paths = git(git_dir, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
    configs, borrowed = 0, []
    for path in paths:
        support = any(path.startswith(p) or path == p for p in SUPPORT[backend]) and path.endswith(".json")
        try:
            text = git(git_dir, "show", f"{commit}:{path}") if support or path.startswith("examples/") else None
        except subprocess.CalledProcessError:
            continue  # listed, but its blob is not in the mirror
        if text is None or not (support or is_config(backend, path, text)):
            continue
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(text)
        configs += not support
    if backend == "llamafactory":  # support files the mirror's tree lacks: from the pinned 0.9.5 corpus
        for rel in ["data/" + p.name for p in (CURRENT / backend / "data").iterdir()] + \
                ["examples/deepspeed/" + p.name for p in (CURRENT / backend / "examples" / "deepspeed").iterdir()]:
            if not (out / rel).exists():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(CURRENT / backend / rel, out / rel)
                borrowed.append(rel)
    return configs, borrowed


def readme(rows: list[tuple[str, str, str, int, list[str]]]) -> str:
    lines = ["# Older framework example configs at pinned release commits", "",
             "The inputs of `ftr upgrade`'s acceptance check (scripts/upgrade_oracle.py,",
             "tests/backends/test_upgrade_oracle.py): the frameworks' own example training configs as they were at",
             "older releases, copied verbatim with `git show <commit>:<path>` from a mirror by",
             "`scripts/upgrade_corpus.py`. Both projects are licensed under the Apache License 2.0 (the `LICENSE` of",
             "each repository; the same licence as the pinned corpus in `../SOURCE.md`). Each folder mirrors the",
             "upstream layout, so the configs' relative paths (`deepspeed_configs/...`, `examples/deepspeed/...`,",
             "`data/dataset_info.json`) resolve from it.", "",
             "| folder | repository | commit | release | configs |", "|---|---|---|---|---|"]
    for backend, version, commit, count, _ in rows:
        lines.append(f"| `{backend}-{version}/` | {REPOS[backend]} | `{commit}` | tag `v{version}` | {count} |")
    lines += ["", "Kept: `examples/**/*.y*ml` with a top-level `base_model` (Axolotl; not `examples/cloud/`) or",
              "`model_name_or_path` (LLaMA-Factory), and the DeepSpeed JSONs of the same commit.", ""]
    for backend, version, _, _, borrowed in rows:
        if borrowed:
            lines += [f"Not from the commit (`{backend}-{version}/`): the mirror's tree at that commit lacks these",
                      "support files, so they are the pinned 0.9.5 corpus's copies (`../llamafactory/`, tag `v0.9.5`;",
                      "demo data truncated to 3 rows there): " + ", ".join(f"`{b}`" for b in sorted(borrowed)) + ".",
                      ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axolotl", required=True, metavar="GIT_DIR")
    parser.add_argument("--llamafactory", required=True, metavar="GIT_DIR")
    args = parser.parse_args(argv)
    rows = []
    for backend, versions in PINNED.items():
        for version, commit in versions.items():
            count, borrowed = extract(backend, version, commit, getattr(args, backend))
            rows.append((backend, version, commit, count, borrowed))
            print(f"{backend} {version}: {count} configs")
    (OUT / "README.md").write_text(readme(rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
