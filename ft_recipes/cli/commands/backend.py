"""``ftr backend install|path|info``: the backends' own environments."""

from __future__ import annotations

import sys

import click

from ft_recipes.cli.commands import guard


def _spec(name: str, version: str | None = None):
    from ft_recipes.backends import get

    return get(name, version).env_spec()


VERSION = click.option("--version", "version", default=None, metavar="VERSION",
                       help="The backend version's environment (e.g. axolotl 0.21.0; default: ftr's default).")


@click.group("backend")
def backend() -> None:
    """Install and locate the backends' environments (one pinned virtualenv per backend, cached in
    $FTR_ENV_DIR or ~/.cache/ft-recipes/envs; FTR_<NAME>_PYTHON points ftr at an environment of your own)."""


@backend.command("install")
@click.argument("name")
@click.option("--force", is_flag=True, help="Rebuild even if a complete environment exists.")
@VERSION
@guard
def install_cmd(name: str, force: bool, version: str | None) -> None:
    """Build NAME's environment from its lock file (minutes; reused afterwards)."""
    from ft_recipes.backends.envs import install
    from ft_recipes.core.findings import FtrError

    spec = _spec(name, version)
    try:
        python = install(spec, force=force, log=lambda msg: click.echo(msg, err=True))
    except RuntimeError as exc:
        raise FtrError(str(exc), exit_code=1) from None
    click.echo(str(python))


@backend.command("path")
@click.argument("name")
@VERSION
@guard
def path_cmd(name: str, version: str | None) -> None:
    """Print the python of NAME's environment; exit 1 if it is not installed."""
    from ft_recipes.backends.envs import find_python

    spec = _spec(name, version)
    python = find_python(spec)
    if python is None:
        flag = f" --version {version}" if version else ""
        click.echo(f"error: the {name} {spec.version} environment is not installed; run `ftr backend install "
                   f"{name}{flag}`, or set {spec.env_var} to its python", err=True)
        sys.exit(1)
    click.echo(str(python))


@backend.command("info")
@guard
def info_cmd() -> None:
    """Each backend version ftr targets: environment path, installed or not."""
    from ft_recipes.backends import NAMES, get

    for name in NAMES:
        try:
            versions = get(name).versions or (get(name).version,)
        except (ImportError, AttributeError) as exc:
            click.echo(f"{name}: unavailable ({exc})")
            continue
        for version in versions:
            _info(name, _spec(name, version), default=version == versions[0])


def _info(name: str, spec, default: bool) -> None:
    import os

    from ft_recipes.backends.envs import env_dir, find_python

    flag = "" if default else f" --version {spec.version}"
    if not spec.lock.is_file():
        click.echo(f"{name} {spec.version}: no lock file ({spec.lock})")
        return
    python = find_python(spec)
    where = f"{spec.env_var}={os.environ[spec.env_var]}" if os.environ.get(spec.env_var) else str(env_dir(spec))
    state = f"installed ({python})" if python else f"not installed (ftr backend install {name}{flag})"
    click.echo(f"{name} {spec.version}: {where}: {state}")
