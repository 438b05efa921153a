"""The backend catalogue: every backend is one folder here, registered by name.

Each ``ft_recipes.backends.<name>`` module defines ``ENV`` (its environment spec) and ``BACKEND``
(an object with ``name``, ``version``, ``emit(recipe) -> Emitted``, ``templates``)."""

from __future__ import annotations

import importlib

from ..findings import UsageError

NAMES = ("llamafactory", "axolotl", "trl")


def _module(name: str):
    if name not in NAMES:
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(NAMES)}")
    return importlib.import_module(f"ft_recipes.backends.{name}")


def get(name: str):
    """The backend object (emitter and catalogue facts) for ``name``."""
    return _module(name).BACKEND


def env_spec(name: str):
    return _module(name).ENV


def launcher(name: str):
    """The backend's launch module: ``launch``, ``run_overrides``, ``merge``."""
    return _module(name).LAUNCH


def importer(name: str):
    """The backend's importer module: ``to_recipe(mapper, base_dir)``."""
    return importlib.import_module(f"ft_recipes.backends.{_module(name).__name__.rsplit('.', 1)[-1]}.importer")
