#!/usr/bin/env python3
"""Install ftr every way docs/install.md and docs/ci.md say, as written, and smoke-test each install.

In a clone of this checkout's HEAD (tagged as docs/install.md's release step does), each install goes into a
fresh virtual environment: the wheel and the sdist that `python -m build` writes, and the git URL line (the public
URL replaced by the clone's file:// URL). Each must give `ftr --version`, import jinja2 (FTR305), lint a bundled
example clean and compile it for both backends. The pre-commit example of docs/ci.md runs on a throwaway
repository and must fail on a recipe with an error and pass the clean one. Needs git and the package index.

Usage: python3 scripts/check_install.py [--keep]     (run by .ci/run; about a minute)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_URL = "https://github.com/ft-recipes/ft-recipes"
EXAMPLE = "lora-sft-alpaca.yaml"


class CheckFailed(Exception):
    pass


def version() -> str:
    text = (ROOT / "ft_recipes" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def fenced(path: Path, lang: str) -> list[str]:
    """The fenced ```lang blocks of a markdown file."""
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def block_with(path: Path, lang: str, needle: str) -> str:
    found = [b for b in fenced(path, lang) if needle in b]
    if len(found) != 1:
        raise CheckFailed(f"{path.relative_to(ROOT)}: expected one ```{lang} block with {needle!r}, found {len(found)}")
    return found[0]


def documented() -> dict:
    """The documented install lines and pre-commit config (checked to agree between the two pages)."""
    install, ci = ROOT / "docs" / "install.md", ROOT / "docs" / "ci.md"
    git_line = block_with(install, "bash", "git+").strip()
    workflow = block_with(ci, "yaml", "runs-on:")
    ci_line = next((line.split("run:", 1)[1].strip() for line in workflow.splitlines()
                    if "run:" in line and "pip install" in line), None)
    if ci_line != git_line:
        raise CheckFailed(f"docs/ci.md installs with {ci_line!r}, docs/install.md with {git_line!r}")
    return {"git": git_line, "wheel": block_with(install, "bash", "python -m build").strip().splitlines(),
            "pre-commit": block_with(ci, "yaml", "repos:")}


def run(argv, cwd: Path, env: dict, ok=(0,)) -> subprocess.CompletedProcess:
    began = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          shell=isinstance(argv, str))
    if os.environ.get("FTR_CHECK_TIMES"):
        print(f"  {time.monotonic() - began:5.1f} s  {str(argv)[:150]}", file=sys.stderr)
    if proc.returncode not in ok:
        shown = argv if isinstance(argv, str) else " ".join(map(str, argv))
        raise CheckFailed(f"`{shown}` (in {cwd}) exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc


def venv(path: Path) -> dict:
    """A fresh virtual environment; the environment variables that put it first on PATH."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(path))
    return env


def shell(line: str, cwd: Path, env: dict, url: str) -> None:
    """A documented line as written, the public URL replaced by ``url``."""
    run(["bash", "-c", "set -euo pipefail\n" + line.replace(PUBLIC_URL, url)], cwd, env)


def smoke(env: dict, work: Path) -> None:
    """ftr as installed in ``env`` (not this checkout): version, jinja2, lint and compile of a bundled example."""
    work.mkdir(parents=True)
    out = run(["ftr", "--version"], work, env).stdout
    if version() not in out:
        raise CheckFailed(f"ftr --version printed {out!r}, expected {version()}")
    where = run(["python", "-c", "import jinja2, ft_recipes.core.paths as p; print(p.data_dir('recipes'))"], work, env)
    examples = Path(where.stdout.strip()) / "examples"
    if ROOT in examples.parents:
        raise CheckFailed(f"the install reads this checkout ({examples}), not its own copy")
    shutil.copy(examples / EXAMPLE, work / EXAMPLE)
    shutil.copytree(examples / "data", work / "data")
    lint = run(["ftr", "lint", EXAMPLE], work, env).stdout
    if "All checks passed" not in lint:
        raise CheckFailed(f"ftr lint {EXAMPLE}: {lint}")
    for backend in ("llamafactory", "axolotl"):
        run(["ftr", "compile", EXAMPLE, "-b", backend, "-o", f"out-{backend}"], work, env)
        if not any((work / f"out-{backend}").glob("*.yaml")):
            raise CheckFailed(f"ftr compile -b {backend} wrote no config")


def check_wheel_and_sdist(tmp: Path, src: Path, docs: dict, url: str) -> str:
    env = venv(tmp / "venv-wheel")
    for line in docs["wheel"]:
        shell(line, src, env, url)
    smoke(env, tmp / "work-wheel")
    sdists = list((src / "dist").glob("ft_recipes-*.tar.gz"))
    if len(sdists) != 1:
        raise CheckFailed(f"python -m build wrote {len(sdists)} sdists")
    env = venv(tmp / "venv-sdist")
    run(["pip", "install", "--quiet", str(sdists[0])], tmp, env)
    smoke(env, tmp / "work-sdist")
    return "wheel and sdist"


def check_git(tmp: Path, docs: dict, url: str) -> str:
    env = venv(tmp / "venv-git")
    shell(docs["git"], tmp, env, url)
    smoke(env, tmp / "work-git")
    return "git URL"


def check_pre_commit(tmp: Path, docs: dict, url: str) -> str:
    env = venv(tmp / "venv-pre-commit")
    env["PRE_COMMIT_HOME"] = str(tmp / "pre-commit-home")
    run(["pip", "install", "--quiet", "pre-commit"], tmp, env)
    project = tmp / "project"
    (project / "recipes").mkdir(parents=True)
    (project / ".pre-commit-config.yaml").write_text(docs["pre-commit"].replace(PUBLIC_URL, url))
    example = (ROOT / "recipes" / "examples" / EXAMPLE).read_text(encoding="utf-8")
    shutil.copytree(ROOT / "recipes" / "examples" / "data", project / "recipes" / "data")
    (project / "recipes" / "good.yaml").write_text(example)
    (project / "recipes" / "bad.yaml").write_text(example.replace("template: llama3", "template: chatlm"))
    git = ["git", "-c", "user.name=ftr", "-c", "user.email=ftr@localhost"]
    run(["git", "init", "-q"], project, env)
    run([*git, "add", "."], project, env)
    failed = run(["pre-commit", "run", "--all-files"], project, env, ok=(1,))
    if "bad.yaml" not in failed.stdout or "good.yaml" in failed.stdout:
        raise CheckFailed(f"the pre-commit hook should name bad.yaml only:\n{failed.stdout}")
    (project / "recipes" / "bad.yaml").unlink()
    run([*git, "add", "-A"], project, env)
    run(["pre-commit", "run", "--all-files"], project, env)
    return "pre-commit hook"


def clone(tmp: Path) -> Path:
    """This checkout's HEAD, with the release tag docs/install.md says to create."""
    src = tmp / "ft-recipes"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(src)], check=True, timeout=300)
    tag = f"v{version()}"
    tags = subprocess.run(["git", "tag", "-l", tag], cwd=src, capture_output=True, text=True, check=True).stdout
    if not tags.strip():
        subprocess.run(["git", "-c", "user.name=ftr", "-c", "user.email=ftr@localhost", "tag", "-a", tag,
                        "-m", f"ft-recipes {version()}"], cwd=src, check=True)
    return src


def main(argv: list[str]) -> int:
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ftr-install-"))
    try:
        docs = documented()
        src = clone(tmp)
        url = f"file://localhost{src}"  # pip before 23.3 refuses "git+file:///path" (no host) in a requirement
        checks = [lambda: check_wheel_and_sdist(tmp, src, docs, url), lambda: check_git(tmp, docs, url),
                  lambda: check_pre_commit(tmp, docs, url)]
        with ThreadPoolExecutor(len(checks)) as pool:
            for done in [pool.submit(check) for check in checks]:
                print(f"check_install: {done.result()} ok ({time.monotonic() - start:.0f} s)", flush=True)
    except CheckFailed as exc:
        print(f"check_install: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if "--keep" in argv:
            print(f"check_install: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"check_install: every documented install works ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
