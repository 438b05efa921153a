"""ftr's own lines on the console, which a closed or full stream (``| head``, ``>&-``) never stops."""

from __future__ import annotations

import os
import sys


class Sink:
    """One place the backend's output goes (the log file, the console). Its first write error (a closed pipe,
    a full disk, a closed descriptor) turns it off and is kept: the training never dies of ftr's own output."""

    def __init__(self, name: str, stream, console: bool = False):
        self.name, self.stream, self.console = name, stream, console
        self.error = None if stream is not None else "closed"

    def write(self, data) -> None:
        if self.error is not None:
            return
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed file object
            self.error = getattr(exc, "strerror", None) or str(exc)
            if self.console:
                silence(self.stream)


def silence(stream) -> None:
    """Point a console stream's descriptor at /dev/null, so that later writes and the flush at exit succeed."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def note(text: str) -> None:
    """A line of ftr's own on stderr; a broken or closed stderr loses it and nothing else."""
    Sink("stderr", sys.stderr, console=True).write(text + "\n")


def _console_stdout():
    return getattr(sys.stdout, "buffer", None)
