"""The backend registry: every backend is one folder here whose ``__init__`` defines ``BACKEND`` (a
``base.Backend``). Core modules and commands ask this registry; none imports a backend module itself."""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ft_recipes.core.findings import UsageError

NAMES = ("llamafactory", "axolotl", "trl")  # the registered backend folders, in the order help lists them

# backend name -> the version a command targets (``targeting``); absent: the backend's default version
_TARGETS: ContextVar[dict] = ContextVar("ftr_backend_versions", default={})


def get(name: str, version: str | None = None):
    """The ``Backend`` registered as ``name``, at ``version``, else at the version the running command targets
    (``targeting``), else at its default version."""
    if name not in NAMES:
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(NAMES)}")
    backend = importlib.import_module(f"ft_recipes.backends.{name}").BACKEND
    return backend.at(version or _TARGETS.get().get(name))


@contextmanager
def targeting(versions: dict[str, str]):
    """Within the block, ``get(name)`` is the backend at ``versions[name]`` (checked here: UsageError for a
    version ftr cannot target)."""
    for name, version in versions.items():
        get(name, version)
    token = _TARGETS.set({**_TARGETS.get(), **versions})
    try:
        yield
    finally:
        _TARGETS.reset(token)


def parse_versions(values, where: str, backend: str | None = None) -> dict[str, str]:
    """``NAME=VERSION`` values (or a bare ``VERSION`` for ``backend``) -> {name: version}."""
    out: dict[str, str] = {}
    for value in values or ():
        name, sep, version = str(value).rpartition("=")
        name = name if sep else backend
        if name not in NAMES or not version:
            raise UsageError(f"{where}: expected VERSION or BACKEND=VERSION (e.g. axolotl=0.21.0), got {value!r}")
        out[name] = version
    return out


def chosen_versions(asked: dict[str, str], start=None) -> dict[str, str]:
    """The version each backend targets: ``asked`` (the command line), else ``[tool.ftr] backend-versions``
    in the nearest pyproject.toml, else the version of the environment ``FTR_<NAME>_PYTHON`` points at (when
    ftr can target it); backends with none of these are left out (their default version)."""
    from ft_recipes.core.project import project_settings

    pinned = project_settings(start).get("backend-versions") or {}
    if not isinstance(pinned, dict) or not all(isinstance(v, str) and k in NAMES for k, v in pinned.items()):
        raise UsageError(f"[tool.ftr] backend-versions must be a table of backend versions such as "
                         f"{{axolotl = \"0.21.0\"}} (backends: {', '.join(NAMES)}), got {pinned!r}")
    out = {**pinned, **asked}
    for name in (n for n in NAMES if n not in out):
        found = _env_var_version(name)
        if found:
            out[name] = found
    return out


def _env_var_version(name: str) -> str | None:
    """The backend version installed where ``FTR_<NAME>_PYTHON`` points, when ftr can target it."""
    import os
    from pathlib import Path

    from ft_recipes.backends.envs import installed_version

    backend = importlib.import_module(f"ft_recipes.backends.{name}").BACKEND
    if len(backend.versions) < 2:
        return None  # one version: nothing to choose (and no subprocess to start)
    spec = backend.env_spec()
    if spec is None or not os.environ.get(spec.env_var):
        return None
    version = installed_version(Path(os.environ[spec.env_var]).expanduser(), spec)
    return version if version in backend.versions else None


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


def unused_values(recipe) -> list[tuple[str, tuple, str]]:
    """(dotted, key path, why) for every written value that no registered backend would use for this recipe: a
    section its stage or method does not use, or a field every backend with a row for it uses only under a
    condition the recipe does not meet (``preference.simpo_gamma`` in a DPO recipe)."""
    from ft_recipes.backends.base import dropped_values
    from ft_recipes.backends.base import unused_values as unused_by

    out = [(dotted, path, f"stage {recipe.stage} with method {recipe.method.type} does not use it")
           for dotted, path in dropped_values(recipe)]
    registered = all_backends()
    by_backend = [{row.path: (path, row.needs) for row, path, fate in unused_by(b, recipe) if fate == "refuse"}
                  for b in registered]
    for dotted in sorted(set().union(*by_backend)):
        with_row = [unused for b, unused in zip(registered, by_backend) if b.keys.row(dotted) is not None]
        if all(dotted in unused for unused in with_row):
            path, needs = with_row[0][dotted]
            out.append((dotted, path, f"it is used only with {needs}"))
    return out


def backend_python(name: str) -> Path:
    """The interpreter of the backend's environment, or FTR503 with the command that installs it."""
    from ft_recipes.backends.envs import find_python
    from ft_recipes.core.findings import Finding, FtrError

    backend = get(name)
    spec = backend.env_spec()
    python = find_python(spec)
    flag = f" --version {spec.version}" if backend.versions[1:] and spec.version != backend.versions[0] else ""
    if python is None:
        raise FtrError(f"no {name} environment", [Finding(
            "<environment>", 1, 1, "FTR503", "error", f"the {name} {spec.version} environment is not installed",
            f"run `ftr backend install {name}{flag}`, or point {spec.env_var} at its python")])
    _check_env_version(python, spec, backend)
    return python


def _check_env_version(python: Path, spec, backend) -> None:
    """FTR503 when ``$FTR_<NAME>_PYTHON`` holds another of the versions ftr targets than ``spec.version``, the
    one the config was compiled for (a version ftr does not target, e.g. a patch release, is the user's call)."""
    import os

    from ft_recipes.backends.envs import installed_version
    from ft_recipes.core.findings import Finding, FtrError

    if len(backend.versions) < 2 or not os.environ.get(spec.env_var):
        return
    found = installed_version(python, spec)
    if found in backend.versions and found != spec.version:
        raise FtrError(f"{spec.env_var} holds {backend.name} {found}", [Finding(
            "<environment>", 1, 1, "FTR503", "error",
            f"{spec.env_var} points at {backend.title} {found}, but the run targets {spec.version}",
            f"pass --backend-version {found}, or unset {spec.env_var} to use ftr's {spec.version} environment")])
