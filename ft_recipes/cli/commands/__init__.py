"""One module per command; ``guard`` turns ftr errors into messages and exit codes."""

from __future__ import annotations

import errno
import functools
import os
import sys

import click

from ft_recipes.core.findings import FtrError

OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def backend_version_option(func):
    """``--backend-version``: the backend version to target (``0.21.0``, or ``axolotl=0.21.0`` for a pipeline's
    other backends); see ``targets``."""
    return click.option("--backend-version", "backend_versions", multiple=True, metavar="[BACKEND=]VERSION",
                        help="Target this backend version (e.g. 0.21.0 for axolotl; default: [tool.ftr] "
                             "backend-versions, else the version of $FTR_<NAME>_PYTHON, else ftr's default).")(func)


def targets(values, backend: str | None, recipe: str | None = None):
    """The context in which ``backends.get`` returns the chosen versions (command line over the pyproject.toml
    nearest ``recipe`` (default: the working directory) over environment; UsageError for a version ftr cannot
    target)."""
    from pathlib import Path

    from ft_recipes.backends import chosen_versions, parse_versions, targeting

    start = Path(recipe).parent if recipe else None
    return targeting(chosen_versions(parse_versions(values, "--backend-version", backend), start))


def guard(func):
    """Run a command body: FtrError -> its findings on stderr and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FtrError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:  # Ctrl-C: the shell's 128 + SIGINT, not 1 (which means invalid input here)
            click.echo("ftr: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # `ftr rules | head`: the reader left; not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except RecursionError:
            click.echo("error: input nested too deeply", err=True)
            sys.exit(1)
        except OSError as exc:  # I/O the command did not handle itself: full disk, permissions, special files
            _io_failure(exc)
        except RuntimeError as exc:
            if not str(exc).startswith("Symlink loop"):  # pathlib's resolve() on Python < 3.13
                raise _internal(exc)
            click.echo(f"error: {str(exc).removeprefix('Symlink loop from ').strip(chr(39))}: symlink loop "
                       f"(a link that points back at itself; fix or remove it)", err=True)
            sys.exit(2)
        except Exception as exc:  # a bug in ftr: say so plainly, keep the exit code CI-safe
            raise _internal(exc)

    return wrapper


def _internal(exc: Exception):
    if os.environ.get("FTR_DEBUG"):
        return exc
    click.echo(f"error: internal error in ftr: {type(exc).__name__}: {exc} "
               f"(set FTR_DEBUG=1 for a traceback, and please report it)", err=True)
    return SystemExit(2)


def _io_failure(exc: OSError) -> None:
    """One line for an I/O error; output that cannot be written (stdout on a full disk) is dropped."""
    if exc.filename is not None:
        click.echo(f"error: {exc.filename}: {exc.strerror or exc}", err=True)
    elif exc.errno in OUTPUT_ERRNOS:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        click.echo(f"error: cannot write the output: {exc.strerror or exc}", err=True)
    else:
        click.echo(f"error: {exc.strerror or exc}", err=True)
    sys.exit(2)


def emit_text(text: str, output, force: bool, protected=()) -> None:
    """Write ``text`` to stdout, or atomically to ``output`` (never over an existing file without force,
    never over a special file or one of the command's ``protected`` inputs)."""
    from ft_recipes.backends.emitted import atomic_write
    from ft_recipes.core.writes import check_protected

    if output is None:
        click.echo(text, nl=False)
        return
    if (output.exists() or output.is_symlink()) and not force:
        raise FtrError(f"{output} exists; use --force to overwrite", exit_code=2)
    check_protected(output, protected)
    atomic_write(output, text)  # refuses devices, FIFOs, symlinks and folders even with --force
    click.echo(f"wrote {output}", err=True)
