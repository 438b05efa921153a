"""Safe file writes: never replace what is not a regular file ftr wrote, one writer per folder at a time.

Every output of ftr goes through here (``emit.atomic_write`` / ``emit.write_outputs`` delegate):

- the target must be absent or a regular file: a symlink, FIFO, device, socket or directory is never
  replaced, with or without ``--force``;
- a folder's ``.ftr-outputs.json`` manifest lists the files ftr wrote there; other existing files are
  only replaced with ``--force``; protected files (the recipe, its data) never;
- writers into one folder hold an exclusive flock on the folder for the whole set, so concurrent
  compiles leave one consistent set;
- I/O errors (full disk, read-only folder, permissions) become one-line FtrErrors, exit 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

from ft_recipes.core.findings import FtrError

MANIFEST = ".ftr-outputs.json"

KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def io_error(path: Path | str, exc: OSError, doing: str = "cannot write") -> FtrError:
    return FtrError(f"{path}: {doing}: {exc.strerror or exc}", exit_code=2)


def special_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file ("a FIFO", ...); None otherwise."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise io_error(path, exc, "cannot inspect") from None
    return next((name for test, name in KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def check_target(path: Path) -> None:
    kind = special_kind(path)
    if kind is not None:
        raise FtrError(f"{path}: is {kind}; ftr only replaces regular files it wrote (remove it or choose "
                       f"another output)", exit_code=2)


def check_protected(path: Path, protected) -> None:
    for other in protected:
        if _same(path, Path(other)):
            raise FtrError(f"{path}: is the input {other} itself; ftr never overwrites its inputs, even with "
                           f"--force (choose another output)", exit_code=2)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FtrError(f"{path}: exists and is not a directory; choose another output folder", exit_code=2) from None
    except OSError as exc:
        raise io_error(path, exc, "cannot create the folder") from None


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path`` (a regular file or none)."""
    _commit([_stage(Path(path), text)])


def _stage(path: Path, text: str) -> tuple[Path, str]:
    """Write ``text`` into a temporary file beside ``path``; (path, temporary name). Nothing else changes."""
    check_target(path)
    make_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise io_error(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        _default_mode(tmp)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise io_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, tmp


def _commit(staged: list[tuple[Path, str]]) -> None:
    """Rename staged files over their targets; on a failure the renames not yet done are dropped."""
    try:
        for path, tmp in staged:
            check_target(path)
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise io_error(path, exc) from None
    finally:
        for _, tmp in staged:
            Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def folder_lock(folder: Path):
    """Hold an exclusive flock on ``folder`` itself (blocking) while writing a set of files there.

    Locking the directory leaves no lock file behind and cannot race with a lock file's removal."""
    make_dir(folder)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise io_error(folder, exc, "cannot open the folder") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def owned(folder: Path) -> set[str]:
    """Names ftr wrote into ``folder`` (its manifest); a missing or damaged manifest owns nothing."""
    check_target(folder / MANIFEST)  # never read (block on) a FIFO or device put in its place
    try:
        names = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _differs(path: Path, text: str) -> bool:
    try:
        return path.read_bytes() != text.encode("utf-8")
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise io_error(path, exc, "cannot read") from None


def write_set(folder: Path, texts: dict[str, str], force: bool = False, protected=()) -> list[Path]:
    """Write ``texts`` (name -> text) into ``folder`` as one locked set and record them in its manifest.

    Files listed in the manifest are replaced; other existing files only with ``force`` (identical content
    is no clash); special files and ``protected`` inputs never.
    """
    folder = Path(folder)
    with folder_lock(folder):
        ours = owned(folder)
        for name in texts:
            check_target(folder / name)
            check_protected(folder / name, protected)
        clashes = [name for name in texts if name not in ours and _differs(folder / name, texts[name])]
        if clashes and not force:
            if len(clashes) == 1:
                raise FtrError(f"{folder / clashes[0]}: exists and ftr did not write it; use --force to overwrite",
                               exit_code=2)
            raise FtrError(f"{folder}: would overwrite {', '.join(sorted(clashes))}, which ftr did not write; "
                           f"use --force to overwrite", exit_code=2)
        staged: list[tuple[Path, str]] = []
        try:  # every file written in full before any is renamed into place: a full disk changes nothing
            for name, text in {**texts, MANIFEST: json.dumps(sorted(ours | set(texts)), indent=1) + "\n"}.items():
                staged.append(_stage(folder / name, text))
        except BaseException:
            for _, tmp in staged:
                Path(tmp).unlink(missing_ok=True)
            raise
        _commit(staged)
    return [folder / name for name in texts]


def write_one(path: Path, text: str, force: bool = False, protected=()) -> Path:
    """One output file (``lint -o``) under the same rules as a set, but with no manifest beside it: a report
    written into a repository root leaves nothing else there. What ftr wrote is recorded in the user's cache
    (``remember``); a folder manifest that lists the name (a compile folder) counts too."""
    path = Path(path)
    with folder_lock(path.parent):
        check_target(path)
        check_protected(path, protected)
        if _differs(path, text):
            check_may_replace(path, force)
        _commit([_stage(path, text)])
    remember(path)
    return path


def _ledger(path: Path) -> Path:
    """The cache file that holds the digest of what ftr last wrote to ``path`` (one per absolute path)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return cache / "ft-recipes" / "outputs" / key


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def remember(path: Path) -> None:
    """Record that ftr wrote ``path`` as it is now. Best effort: an unwritable cache only means the next write
    over it asks for --force."""
    digest = _digest(path)
    ledger = _ledger(path)
    try:
        ledger.parent.mkdir(parents=True, exist_ok=True)
        ledger.write_text(f"{digest}\n", encoding="utf-8")
    except OSError:
        pass


def wrote(path: Path) -> bool:
    """Whether ``path`` holds what ftr last wrote there (changed since, it is the user's)."""
    path = Path(path)
    if path.name in owned(path.parent):
        return True
    try:
        recorded = _ledger(path).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return recorded == _digest(path)


def check_may_replace(path: Path, force: bool) -> None:
    """Refuse to replace an existing regular file that ftr did not write, unless ``force``."""
    path = Path(path)
    check_target(path)
    if not force and path.exists() and not wrote(path):
        raise FtrError(f"{path}: exists and ftr did not write it; use --force to overwrite", exit_code=2)


@contextlib.contextmanager
def atomic_path(path: Path):
    """A temporary path beside ``path`` for a writer that wants a file name (a plot); renamed over
    ``path`` (absent or a regular file) when the block succeeds, removed when it fails."""
    path = Path(path)
    check_target(path)
    make_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise io_error(path, exc) from None
    os.close(fd)
    try:
        yield Path(tmp)
        _default_mode(tmp)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise io_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _commit([(path, tmp)])


def _default_mode(path: str) -> None:
    """The mode a plain open() would have given (mkstemp makes files private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
