"""An environment whose folder has a space or a quote works after it is moved into place: the console scripts and
activate files are written with the path inside '...' (each ' as '"'"'), as uv and pip write them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ft_recipes.backends.envs import _in_quotes, _relocate_scripts


def _venv(root: Path) -> Path:
    bindir = root / "bin"
    bindir.mkdir(parents=True)
    os.symlink(sys.executable, bindir / "python")
    (root / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n")
    return bindir


def test_a_quoted_path_is_relocated_in_console_scripts_and_activate(tmp_path):
    build, final = tmp_path / "build sp'ace" / "env", tmp_path / "final sp'ace" / "env"
    bindir = _venv(build)
    # the shebang uv wrote for /tmp/sp ace'q/env (observed: uv venv + uv pip install pyflakes)
    script = bindir / "hello"
    script.write_text(f"#!/bin/sh\n'''exec' '{_in_quotes(str(build))}/bin/python' \"$0\" \"$@\"\n' '''\n"
                      "print('hello from the env')\n")
    script.chmod(0o755)
    (bindir / "activate").write_text(f"VIRTUAL_ENV='{_in_quotes(str(build))}'\n")
    _relocate_scripts(build, build, final)
    build.parent.rename(final.parent)
    moved = final / "bin"
    assert f"'{_in_quotes(str(final))}/bin/python'" in (moved / "hello").read_text()
    assert (moved / "activate").read_text() == f"VIRTUAL_ENV='{_in_quotes(str(final))}'\n"
    out = subprocess.run([str(moved / "hello")], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from the env\n"
