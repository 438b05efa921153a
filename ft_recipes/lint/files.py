"""Which files `ftr lint PATH...` reads: named files always; in directories, recipes found recursively."""

from __future__ import annotations

import glob
import os
import re
from functools import lru_cache
from pathlib import Path

from ft_recipes.core.findings import UsageError

SUFFIXES = (".yaml", ".yml")
SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache",
             ".pytest_cache", "build", "dist", "presets"}


@lru_cache(maxsize=1)
def _marks() -> re.Pattern:
    """``ftr:`` (a recipe) or the first marker of each importable backend (its model key) at a line start."""
    from ft_recipes import backends

    keys = ["ftr", *(backends.get(name).markers[0] for name in backends.names("import"))]
    return re.compile(r"^(" + "|".join(map(re.escape, keys)) + r")\s*:", re.MULTILINE)


def looks_like_recipe(path: Path) -> bool:
    """A YAML file ftr can lint: a recipe (``ftr:``) or a native LLaMA-Factory / Axolotl config.

    A YAML file that cannot be read counts as one, so that linting it reports the error instead of
    skipping it silently ("All checks passed (0 files)" on a folder of unreadable recipes)."""
    if path.is_fifo() or path.is_char_device() or path.is_block_device():
        return True  # never block reading one; lint reports it
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return bool(_marks().search(handle.read(200_000)))
    except OSError:
        return True


def wanted(path: Path) -> bool:
    """The directory filter: a .yaml/.yml recipe outside skipped folders such as presets/."""
    skipped = any(part in SKIP_DIRS for part in path.parent.parts)
    return path.suffix in SUFFIXES and not skipped and looks_like_recipe(path)


def _walk(root: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(root, onerror=_walk_error):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".#"):  # an editor's lock file (a dangling symlink), not a recipe
                continue
            path = Path(directory) / name
            if path.suffix in SUFFIXES and looks_like_recipe(path):
                found.append(path)
    return found


def _walk_error(exc: OSError) -> None:
    raise UsageError(f"{exc.filename}: cannot read the folder: {exc.strerror}")


def _one(arg: str) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        return _walk(path)
    if path.exists() or path.is_symlink():  # a broken link or a link loop: linting it reports what it is
        return [path]
    if glob.has_magic(arg):
        matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
        files = [m for m in matches if m.is_file()] + [f for m in matches if m.is_dir() for f in _walk(m)]
        if files:
            return files
        raise UsageError(f"{arg}: no file matches")
    raise UsageError(f"{arg}: no such file or directory")


def expand(args, only_recipes: bool = False) -> list[Path]:
    """The files to lint, in a stable order, each once; ``only_recipes`` filters named files as directories are,
    and a named preset (pre-commit passes the presets that changed) stands for the repository's recipes that
    extend it, directly or through other presets: a broken shared preset fails the recipes that use it."""
    if not args:
        raise UsageError("no path given; e.g. `ftr lint recipe.yaml` or `ftr lint recipes/`")
    seen, out, presets = set(), [], []
    for arg in args:
        for path in _one(str(arg)):
            key = os.path.normpath(str(path))
            if key in seen:
                continue
            if only_recipes and path.suffix in SUFFIXES and is_preset(path):
                presets.append(path)
            elif not only_recipes or wanted(path):
                seen.add(key)
                out.append(path)
    roots = sorted({repository_root(p.parent) for p in presets})  # each preset's own repository
    for path in (found for root in roots for found in extending(presets, root)):
        key = os.path.normpath(str(path))
        if key not in seen:
            seen.add(key)
            out.append(path)
    _refuse_unreadable(out)
    return out


def is_preset(path: Path) -> bool:
    """A file of a preset library: under a ``presets/`` folder, or in a folder that FTR_PRESET_PATH or the nearest
    pyproject.toml's [tool.ftr] preset-paths names."""
    if "presets" in path.parent.parts:
        return True
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.presets import libraries

    try:
        roots = {lib.root.resolve() for lib in libraries(path.parent) if lib.name != "builtin"}
    except (FtrError, OSError):  # FTR_PRESET_PATH naming no folder: `ftr lint` warns of it
        return False
    return path.parent.resolve() in roots


def repository_root(start: Path) -> Path:
    """The folder holding ``.git`` at or above ``start`` (the repository pre-commit runs in), relative to the
    working directory when inside it (as pre-commit names files); outside any repository, the working directory."""
    start, here = start.resolve(), Path.cwd().resolve()
    root = next((folder for folder in (start, *start.parents) if (folder / ".git").exists()), here)
    return Path(os.path.relpath(root, here)) if root == here or here in root.parents else root


EXTENDS = re.compile(r"^extends\s*:", re.MULTILINE)


def extending(presets: list[Path], root: Path) -> list[Path]:
    """The recipes under ``root`` whose ``extends`` chain reaches one of ``presets``, and those whose chain cannot
    be resolved because of one of them (a preset that no longer parses: linting the recipe reports it)."""
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.load import load_file
    from ft_recipes.recipe.resolve import extends_layers

    targets = {p.resolve() for p in presets}
    stems = {p.stem for p in presets}
    found = []
    for candidate in _walk(root):
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if not EXTENDS.search(text) or is_preset(candidate):
            continue
        try:
            doc = load_file(candidate)
            layers = extends_layers(doc)
        except FtrError as exc:  # a broken chain: ours if it names a changed preset, or the recipe extends one
            said = " ".join([str(exc), *(f"{f.file} {f.message}" for f in exc.findings)])
            if any(str(target) in said for target in targets) or stems & _extends_names(candidate):
                found.append(candidate)
            continue
        if any(Path(layer.file).resolve() in targets for layer in layers[:-1]):
            found.append(candidate)
    return found


def _extends_names(path: Path) -> set[str]:
    """The preset names in ``path``'s own ``extends`` (``lib:name`` -> name, a path -> its stem)."""
    from ft_recipes.core.findings import FtrError
    from ft_recipes.recipe.load import load_file

    try:
        data = load_file(path).data
    except FtrError:
        return set()
    refs = data.get("extends") if isinstance(data, dict) else None
    refs = [refs] if isinstance(refs, str) else refs if isinstance(refs, list) else []
    return {Path(ref.rpartition(":")[2]).stem for ref in refs if isinstance(ref, str)}


def _refuse_unreadable(paths: list[Path]) -> None:
    """A UsageError naming every file that is not a readable regular file (a broken link, a symlink loop,
    a FIFO), not just the first one met."""
    from ft_recipes.recipe.load import file_kind

    problems = [f"{path}: {kind}" for path in paths for kind in [file_kind(path)] if kind != "file"]
    if problems:
        raise UsageError("; ".join(problems) + "; ftr reads YAML from regular files" if len(problems) == 1 else
                         f"{len(problems)} files cannot be read (ftr reads YAML from regular files):\n  "
                         + "\n  ".join(problems))
