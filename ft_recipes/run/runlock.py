"""One owner per run folder: an exclusive ``flock`` on ``RUN_DIR/.ftr.lock``, held by the ftr process that
trains (or merges) there for as long as it does. The kernel drops the lock with its last open descriptor, so a
killed owner (kill -9, a closed terminal) frees the folder; the file keeps the owner's pid, host and start so
that a refusal can name it. ``held`` tells ``ftr status`` whether a run without an end still has an owner."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import platform
import sys
import time
from pathlib import Path

from ft_recipes.core.findings import FtrError

LOCK = ".ftr.lock"
TRIES = 5  # a probe by `ftr status` holds the lock for an instant; try a few times before refusing


class RunLock:
    """An acquired lock; ``release`` (or the process's end) gives the folder back."""

    def __init__(self, folder: Path, fd: int, owner: dict):
        self.folder, self.fd, self.owner = folder, fd, owner

    def moved(self) -> bool:
        """The locked file is no longer the folder's lock file (``--force`` renamed the folder aside)."""
        try:
            return os.stat(self.folder / LOCK).st_ino != os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return True

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def owner_record(what: str) -> dict:
    return {"pid": os.getpid(), "host": platform.node(), "what": what,
            "start": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)}


def acquire(folder: Path, what: str = "run") -> RunLock:
    """Own ``folder`` (created if missing), or FtrError naming the process that owns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(TRIES):
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if _try_lock(fd, fcntl.LOCK_EX):
            if os.stat(folder / LOCK).st_ino == os.fstat(fd).st_ino:  # not replaced while we waited
                owner = owner_record(what)
                _write_owner(fd, owner)
                return RunLock(folder, fd, owner)
        os.close(fd)
        time.sleep(0.05 * (attempt + 1))
    raise busy(folder)


def acquire_existing(folder: Path, what: str, kind: int = fcntl.LOCK_SH) -> RunLock | None:
    """Share ``folder`` with other readers (merges run side by side; a run, which locks it exclusively, is
    refused meanwhile) where it already has a lock file (opened read-only: a read-only folder works); None
    when it has none (a run folder of an older ftr, or one copied without it)."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    for attempt in range(TRIES):
        if _try_lock(fd, kind):
            return RunLock(folder, fd, owner_record(what))
        time.sleep(0.05 * (attempt + 1))
    os.close(fd)
    raise busy(folder)


def held(folder: Path) -> bool | None:
    """Whether a live process owns ``folder``; None when it has no lock file."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return not _try_lock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)  # closing drops a shared lock taken by the probe


def read_owner(folder: Path) -> dict:
    try:
        owner = json.loads((folder / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def busy(folder: Path) -> FtrError:
    owner = read_owner(folder)
    if owner.get("host") == platform.node() and not _alive(owner.get("pid")):  # the lock file names its last run
        return FtrError(f"{folder} is in use by another ftr process (a merge of it); wait for it to end, then "
                        f"run again", exit_code=1)
    who = (f"ftr pid {owner.get('pid', '?')} on {owner.get('host', '?')} ({owner.get('what', 'run')} since "
           f"{owner.get('start', '?')})")
    return FtrError(f"{folder} is in use: {who} owns it; wait for it to end or stop it (kill -TERM "
                    f"{owner.get('pid', 'PID')} on {owner.get('host', 'its host')}; checkpoints stay), then run "
                    f"again (--resume continues from its last checkpoint)", exit_code=1)


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_owner(fd: int, owner: dict) -> None:
    """Best effort: the lock itself is what counts; a full disk only loses the owner's name."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
    except OSError:
        pass
