"""``ftr backend install|path|info``: the backends' own environments."""

from __future__ import annotations

import sys

import click

from . import guard


def _spec(name: str):
    from ..backends import env_spec

    return env_spec(name)


@click.group("backend")
def backend() -> None:
    """Install and locate the backends' environments (one pinned virtualenv per backend, cached in
    $FTR_ENV_DIR or ~/.cache/ft-recipes/envs; FTR_<NAME>_PYTHON points ftr at an environment of your own)."""


@backend.command("install")
@click.argument("name")
@click.option("--force", is_flag=True, help="Rebuild even if a complete environment exists.")
@guard
def install_cmd(name: str, force: bool) -> None:
    """Build NAME's environment from its lock file (minutes; reused afterwards)."""
    from ..envs import install
    from ..findings import FtrError

    spec = _spec(name)
    try:
        python = install(spec, force=force, log=lambda msg: click.echo(msg, err=True))
    except RuntimeError as exc:
        raise FtrError(f"error: {exc}", exit_code=1) from None
    click.echo(str(python))


@backend.command("path")
@click.argument("name")
@guard
def path_cmd(name: str) -> None:
    """Print the python of NAME's environment; exit 1 if it is not installed."""
    from ..envs import find_python

    spec = _spec(name)
    python = find_python(spec)
    if python is None:
        click.echo(f"error: the {name} {spec.version} environment is not installed; run `ftr backend install "
                   f"{name}`, or set {spec.env_var} to its python", err=True)
        sys.exit(1)
    click.echo(str(python))


@backend.command("info")
@guard
def info_cmd() -> None:
    """Each backend: version, environment path, installed or not."""
    import os

    from ..backends import NAMES
    from ..envs import env_dir, find_python

    for name in NAMES:
        try:
            spec = _spec(name)
        except (ImportError, AttributeError) as exc:
            click.echo(f"{name}: unavailable ({exc})")
            continue
        if not spec.lock.is_file():
            click.echo(f"{name} {spec.version}: no lock file ({spec.lock})")
            continue
        python = find_python(spec)
        where = f"{spec.env_var}={os.environ[spec.env_var]}" if os.environ.get(spec.env_var) else str(env_dir(spec))
        state = f"installed ({python})" if python else f"not installed (ftr backend install {name})"
        click.echo(f"{name} {spec.version}: {where}: {state}")
