"""Real engines for the scale-out tests: a single-node SLURM cluster (Debian's slurmctld/slurmd/munge) and a
local Ray cluster on 127.0.0.1, both started and stopped by the tests (by PID); the Ray + SkyPilot tools
environment is built from infra/tools-lock.txt into the ftr env cache when missing (keyed by the lock's hash).

    python tests/backends/scaleout.py tools      # build (or find) the tools environment; prints its python
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
INFRA = HERE / "infra"
ROOT = HERE.parent.parent


def tools_python() -> Path:
    """The python of the Ray 2.60.0 + SkyPilot 0.14.1 environment (installed when missing, about 1-2 min)."""
    sys.path.insert(0, str(ROOT))
    from ft_recipes.backends.envs import EnvSpec, find_python, install

    spec = EnvSpec(name="scaleout-tools", version="ray-2.60.0+skypilot-0.14.1", python="3.11",
                   lock=INFRA / "tools-lock.txt", import_name="ray, sky", cli="ray")
    return find_python(spec) or install(spec, log=lambda msg: print(msg, file=sys.stderr))


@dataclass(frozen=True)
class Slurm:
    dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.dir / "slurm.conf")}


def start_slurm(directory: Path) -> Slurm:
    """One-node cluster under ``directory`` (installs the packages when missing); AssertionError with the
    reason when it cannot come up: the tests that need it fail, they are not skipped."""
    proc = subprocess.run(["bash", str(INFRA / "slurm-start.sh"), str(directory)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"SLURM did not start: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return Slurm(directory)


def stop_slurm(cluster: Slurm) -> None:
    subprocess.run(["bash", str(INFRA / "slurm-stop.sh"), str(cluster.dir)], capture_output=True, timeout=120)


@dataclass
class Ray:
    process: subprocess.Popen
    address: str
    bin: Path
    temp: Path  # Ray's own --temp-dir, removed by stop_ray


def start_ray(directory: Path, env: dict[str, str], port: int = 6380, dashboard: int = 8265) -> Ray:
    """``ray start --head --block`` on 127.0.0.1 (2 CPUs, no GPU) in its own process group; stop_ray ends it."""
    python = tools_python()
    ray = python.parent / "ray"
    env = {**env, "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    log = (directory / "ray-start.log").open("wb")
    # Ray's sockets live under its temp dir and a socket path has at most 107 bytes: pytest's own folders (deeper
    # still under pytest -n) are too long for it
    temp = Path(tempfile.mkdtemp(prefix="ray-"))
    argv = [str(ray), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", f"--port={port}",
            "--num-cpus=2", "--num-gpus=0", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
            "--disable-usage-stats", f"--temp-dir={temp}"]
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.time() + 180
    while time.time() < deadline:
        assert process.poll() is None, f"ray start exited {process.returncode}: " + \
            (directory / "ray-start.log").read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=5):
                return Ray(process, address, ray, temp)
        except OSError:
            time.sleep(1)
    stop_ray(Ray(process, address, ray, temp))
    raise AssertionError("the Ray dashboard did not answer in 180 s: "
                         + (directory / "ray-start.log").read_text(errors="replace")[-3000:])


def stop_ray(cluster: Ray) -> None:
    """SIGTERM to the ``ray start --block`` process group (it stops the daemons it started; about 40 s here),
    then SIGKILL to whatever of that group is left."""
    for sig, wait in ((signal.SIGTERM, 90), (signal.SIGKILL, 30)):
        try:
            os.killpg(cluster.process.pid, sig)
        except ProcessLookupError:
            break
        try:
            cluster.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    shutil.rmtree(cluster.temp, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:] == ["tools"]:
    print(tools_python())
