"""The backend registry: every backend is one folder here whose ``__init__`` defines ``BACKEND`` (a
``base.Backend``). Core modules and commands ask this registry; none imports a backend module itself."""

from __future__ import annotations

import importlib

from ..findings import UsageError

NAMES = ("llamafactory", "axolotl", "trl")  # the registered backend folders, in the order help lists them


def get(name: str):
    """The ``Backend`` registered as ``name``."""
    if name not in NAMES:
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(NAMES)}")
    return importlib.import_module(f"ft_recipes.backends.{name}").BACKEND


def all_backends() -> list:
    return [get(name) for name in NAMES]


def names(can: str | None = None) -> tuple[str, ...]:
    """Registered names; ``can='import'`` those with an importer, ``'launch'`` with a launcher, ``'tokens'``
    with a tokens helper (the choices of ``--from``, ``run`` and ``tokens``)."""
    if can is None:
        return NAMES
    test = {"import": lambda b: b.can_import, "launch": lambda b: b.launcher is not None,
            "tokens": lambda b: b.tokens_helper is not None}[can]
    return tuple(b.name for b in all_backends() if test(b))


def env_spec(name: str):
    return get(name).env_spec()


def launcher(name: str):
    """The backend's launch module: ``launch``, ``run_overrides``, ``merge``."""
    return get(name).launch_module()


def importer(name: str):
    """The backend's importer module: ``to_recipe(mapper, base_dir)``."""
    module = get(name).import_module()
    if module is None:
        raise UsageError(f"ftr cannot import {name} configs; it imports: {', '.join(names('import'))}")
    return module


def detect(data) -> str | None:
    """The dialect whose markers a native mapping uses most, or None."""
    best, score = None, 0
    for backend in all_backends():
        hits = sum(key in data for key in backend.markers)
        if hits and hits >= score:
            best, score = backend.name, hits
    return best
