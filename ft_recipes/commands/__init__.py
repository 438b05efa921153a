"""One module per command; ``guard`` turns ftr errors into messages and exit codes."""

from __future__ import annotations

import functools
import os
import sys

import click

from ..findings import FtrError


def guard(func):
    """Run a command body: FtrError -> its findings on stderr and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FtrError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt, SystemExit):
            raise
        except BrokenPipeError:  # `ftr rules | head`: the reader left; not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except RecursionError:
            click.echo("error: input nested too deeply", err=True)
            sys.exit(1)
        except Exception as exc:  # a bug in ftr: say so plainly, keep the exit code CI-safe
            if os.environ.get("FTR_DEBUG"):
                raise
            click.echo(f"error: internal error in ftr: {type(exc).__name__}: {exc} "
                       f"(set FTR_DEBUG=1 for a traceback, and please report it)", err=True)
            sys.exit(2)

    return wrapper


def emit_text(text: str, output, force: bool) -> None:
    """Write ``text`` to stdout, or atomically to ``output`` (never over an existing file without force)."""
    from ..emit import atomic_write

    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise FtrError(f"{output} exists; use --force to overwrite", exit_code=2)
    atomic_write(output, text)
    click.echo(f"wrote {output}", err=True)
