"""Backend environments: one virtual environment per backend, built from the backend's pinned lock file.

Stdlib only. An environment lives in ``cache_root()/<name>-<sha256(lock)[:12]>``, so a changed lock file
gives a new directory and an old one is never half-updated. It is built in a temp dir next to its final place
and renamed into place only once ``.complete`` is written; a crashed install leaves nothing that looks usable.

Where ``ftr`` finds a backend's python, first match wins:
  1. ``$FTR_<NAME>_PYTHON`` (e.g. ``FTR_LLAMAFACTORY_PYTHON``), when it exists;
  2. the cached environment, when complete;
  3. nothing (``ftr backend install NAME`` builds it).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from ft_recipes.backends.interface import EnvSpec

COMPLETE = ".complete"
# hashlib and subprocess (about 20 M instructions of import) are imported where used.


def cache_root() -> Path:
    """``$FTR_ENV_DIR``, else ``~/.cache/ft-recipes/envs``."""
    value = os.environ.get("FTR_ENV_DIR")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ft-recipes" / "envs"


def lock_hash(spec: EnvSpec) -> str:
    import hashlib

    return hashlib.sha256(Path(spec.lock).read_bytes()).hexdigest()


# Part of each environment's cache key, bumped when the way environments are built changes what they hold, so
# that no environment built the old way is reused. 2: uv asks the package index before pip's extra indexes (1 took
# multiprocess's Python 3.10 wheel from a partial local mirror into 3.11 environments: every process pool failed).
BUILD_SCHEME = b"2"
PYPI = "https://pypi.org/simple"


def env_dir(spec: EnvSpec) -> Path:
    import hashlib

    key = hashlib.sha256(Path(spec.lock).read_bytes() + BUILD_SCHEME).hexdigest()
    return cache_root() / f"{spec.name}-{key[:12]}"


def _venv_python(root: Path) -> Path:
    return root / "Scripts" / "python.exe" if os.name == "nt" else root / "bin" / "python"


def _is_complete(root: Path) -> bool:
    return (root / COMPLETE).is_file() and _venv_python(root).exists()


def find_python(spec: EnvSpec) -> Path | None:
    """The backend's interpreter: ``$FTR_<NAME>_PYTHON`` if it exists, else the complete cached env, else None."""
    value = os.environ.get(spec.env_var)
    if value:
        path = Path(value).expanduser()
        return path if path.exists() else None
    root = env_dir(spec)
    return _venv_python(root) if _is_complete(root) else None


def _python_version(python: Path | str) -> str | None:
    import subprocess

    try:
        out = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_interpreter(version: str) -> Path:
    """A python of ``version`` ("3.11"): this one, ``python3.11`` on PATH, or a pyenv install; else an error."""
    import subprocess

    if "%d.%d" % sys.version_info[:2] == version:
        return Path(sys.executable)
    candidates: list[str] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    roots = [os.environ.get("PYENV_ROOT")]
    if shutil.which("pyenv"):
        try:
            roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    roots.append(str(Path.home() / ".pyenv"))
    for root in filter(None, roots):
        found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")), reverse=True)
        candidates += [p for p in found if re.search(rf"/{re.escape(version)}\.\d+/bin/python$", p)]
    for candidate in candidates:  # a pyenv shim on PATH may exist yet refuse to run: ask each one
        if _python_version(candidate) == version:
            return Path(candidate)
    raise RuntimeError(f"no Python {version} found (looked for python{version} on PATH and in pyenv's "
                       f"versions/{version}.*); install Python {version}, e.g. `pyenv install {version}`")


def _requirements(lock: Path) -> list[str]:
    lines = []
    for raw in Path(lock).read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _req_name(line: str) -> str:
    return re.split(r"[\s=<>!~\[;@]", line, maxsplit=1)[0].lower().replace("_", "-")


def _run_logged(argv: list[str], logfile: Path, what: str) -> None:
    import subprocess

    with open(logfile, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "".join(logfile.read_text(encoding="utf-8", errors="replace").splitlines(True)[-25:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}); last lines of {logfile}:\n{tail}")


def _relocate_scripts(root: Path, old: Path, new: Path) -> None:
    """Console scripts and activate files hold the venv's absolute path: point them at its final place."""
    bindir = _venv_python(root).parent
    # a path with a quote is written inside '...' with each ' as '"'"' (uv's and pip's shebangs, activate)
    pairs = [(str(old), str(new)), (_in_quotes(str(old)), _in_quotes(str(new)))]
    pairs = [(a.encode(), b.encode()) for a, b in dict(pairs).items()]
    for path in bindir.iterdir():
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        data = original = path.read_bytes()
        for old_b, new_b in pairs:
            data = data.replace(old_b, new_b)
        if data != original:
            mode = path.stat().st_mode
            path.write_bytes(data)
            os.chmod(path, mode)
    cfg = root / "pyvenv.cfg"
    if cfg.exists():
        cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(old), str(new)), encoding="utf-8")


def _in_quotes(path: str) -> str:
    """``path`` as it stands inside a shell '...' string."""
    return path.replace("'", "'\"'\"'")


def _site_packages(python: Path) -> Path:
    import subprocess

    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _pip(python: Path) -> list[str]:
    return [str(python), "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check"]


def _uv(python: Path) -> list[str] | None:
    """``uv pip install`` with pip's own package sources (find-links, extra indexes: uv does not read pip's
    configuration), when uv is on PATH; it downloads and unpacks in parallel (the 6.5 GB Axolotl 0.21
    environment in under a minute, against twelve with pip). Both install exactly the lock's pins."""
    import subprocess

    beside = Path(sys.executable).with_name("uv")  # installed with ftr's test extra, maybe not on PATH
    uv = shutil.which("uv") or (str(beside) if beside.is_file() else None)
    if not uv or os.environ.get("FTR_NO_UV") == "1":
        return None
    sources: dict[str, list[str]] = {"index-url": [], "extra-index-url": [], "find-links": []}
    out = subprocess.run([str(python), "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        key, _, value = line.partition("=")
        for item in value.strip().strip("'\"").split() if key.rpartition(".")[2] in sources else ():
            if item not in sources[key.rpartition(".")[2]]:
                sources[key.rpartition(".")[2]].append(item)
    # pip picks the best wheel of a version among all indexes; uv takes a version's wheels from the first index
    # that has it, extra indexes first. The package index goes first, so a partial mirror only fills gaps.
    indexes = (sources["index-url"] or [PYPI]) + sources["extra-index-url"]
    # copies, not hardlinks into uv's cache: damage to one environment's file must not survive a reinstall
    argv = [uv, "pip", "install", "--no-deps", "--python", str(python), "--index-strategy", "unsafe-best-match",
            "--link-mode", "copy"]
    for index in dict.fromkeys(indexes):
        argv += ["--extra-index-url", index]
    for links in sources["find-links"]:
        argv += ["--find-links", links]
    return argv


def _install_reqs(python: Path, uv: list[str] | None, args: list[str], logfile: Path, what: str,
                  log: Callable[[str], None]) -> None:
    """uv when it can, pip otherwise or when uv fails (the log keeps both)."""
    if uv is not None:
        try:
            _run_logged(uv + args, logfile, what)
            return
        except RuntimeError:
            log("uv failed (see the install log); installing with pip")
    _run_logged(_pip(python) + args, logfile, what)


def _remove_dead_builds(target: Path, log: Callable[[str], None]) -> None:
    """Remove the build folders of installs whose process is gone (killed with SIGKILL: no cleanup ran). A build
    folder is named .<env>-<pid>-<random>; one whose pid still runs is another install, left alone."""
    for folder in target.parent.glob(f".{target.name}-*-*"):
        pid = folder.name[len(target.name) + 2:].split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            log(f"removing {folder} (an install that was killed)")
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def install(spec: EnvSpec, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Build the backend's environment from its lock file (or reuse a complete one); returns its python."""
    target = env_dir(spec)
    if _is_complete(target) and not force:
        log(f"{spec.name} {spec.version}: environment already installed at {target}")
        return _venv_python(target)
    if not Path(spec.lock).is_file():
        raise RuntimeError(f"{spec.name}: lock file {spec.lock} is missing")
    target.parent.mkdir(parents=True, exist_ok=True)
    interpreter = find_interpreter(spec.python)
    _remove_dead_builds(target, log)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the env is a shared cache entry
    logfile = target.parent / f"{tmp.name.lstrip('.')}.install.log"  # outside tmp: kept when the install fails
    started = time.monotonic()
    try:
        with _stopped_by_signals():
            return _build(spec, target, tmp, interpreter, logfile, started, force, log)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-built is left behind (SIGTERM and SIGHUP included)
        log(f"{spec.name}: the install did not finish; its log is kept at {logfile}")
        raise


@contextlib.contextmanager
def _stopped_by_signals():
    """SIGTERM and SIGHUP end an install as Ctrl-C does (its cleanup runs); only in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _build(spec: EnvSpec, target: Path, tmp: Path, interpreter: Path, logfile: Path, started: float, force: bool,
           log: Callable[[str], None]) -> Path:
    log(f"{spec.name} {spec.version}: creating a Python {spec.python} environment ({interpreter})")
    _run_logged([str(interpreter), "-m", "venv", str(tmp)], logfile, "creating the virtual environment")
    python = _venv_python(tmp)
    reqs = _requirements(spec.lock)
    first = [r for r in reqs if _req_name(r) == "torch"]  # torch first, so an on-disk wheel is used
    uv = _uv(python)  # pip's configuration read once per environment
    if first:
        log(f"{spec.name}: installing {', '.join(first)}")
        _install_reqs(python, uv, first, logfile, f"pip install {' '.join(first)}", log)
    log(f"{spec.name}: installing {len(reqs)} pinned packages from {spec.lock.name} (log: {logfile})")
    _install_reqs(python, uv, ["-r", str(spec.lock)], logfile, f"pip install -r {spec.lock}", log)
    if spec.prune:
        site = _site_packages(python)
        for pattern in spec.prune:
            for hit in glob.glob(str(site / pattern)):
                log(f"{spec.name}: removing {Path(hit).relative_to(site)}")
                shutil.rmtree(hit) if os.path.isdir(hit) else os.remove(hit)
    _run_logged([str(python), "-c", f"import {spec.import_name}"], logfile, f"import {spec.import_name}")
    _relocate_scripts(tmp, tmp, target)
    seconds = round(time.monotonic() - started, 1)
    (tmp / COMPLETE).write_text(json.dumps({
        "name": spec.name, "version": spec.version, "lock_sha256": lock_hash(spec), "seconds": seconds,
        "installed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}) + "\n", encoding="utf-8")
    old = None
    if target.exists():
        if _is_complete(target) and not force:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            logfile.unlink(missing_ok=True)
            return _venv_python(target)
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.rename(target, old / "env")
    try:
        os.rename(tmp, target)
    except OSError:
        if _is_complete(target):
            shutil.rmtree(tmp, ignore_errors=True)
            logfile.unlink(missing_ok=True)
            return _venv_python(target)
        raise
    os.replace(logfile, target / "install.log")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log(f"{spec.name} {spec.version}: installed in {seconds} s at {target}")
    return _venv_python(target)


def installed_version(python: Path, spec: EnvSpec) -> str | None:
    """The backend's distribution version inside ``python``'s environment, or None."""
    import subprocess

    code = ("import importlib.metadata as m, sys\n"
            "for n in sys.argv[1:]:\n"
            "    try:\n        print(m.version(n)); break\n"
            "    except m.PackageNotFoundError:\n        pass\n")
    try:
        out = subprocess.run([str(python), "-c", code, spec.import_name, spec.name],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and version else None
