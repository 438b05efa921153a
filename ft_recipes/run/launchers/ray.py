"""Ray: a Ray job (submitted through the dashboard's Jobs REST API, as ``ray job submit`` does) whose entrypoint places one worker per node and runs ``launchers.node``
in each; the backend's own torchrun/accelerate launch does the rendezvous (Ray is the scheduler only)."""  # noqa: E501

from __future__ import annotations

import os
from pathlib import Path

from ft_recipes.core.findings import FtrError
from ft_recipes.recipe.model import Hardware
from ft_recipes.run.launchers.base import Job, State, comment
from ft_recipes.run.plan import quote

FILE = "ray-job.sh"
DRIVER = Path(__file__).with_name("ray_driver.py")
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED"}


def address(hardware: Hardware) -> str:
    found = hardware.ray_address or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS
    return found if "://" in found else f"http://{found}"


def script(job: Job) -> str:
    """The job's entrypoint; ``python`` is the Ray cluster's (it has ray), the nodes run this ftr's."""
    package_root = Path(__file__).resolve().parents[3]
    driver = ["python", str(DRIVER), f"--nodes={job.opts.nnodes}", f"--gpus={job.opts.gpus}",
              f"--cpus={job.hardware.cpus_per_node or 1}", f"--port={job.port}", f"--pythonpath={package_root}",
              "--", *job.node_command()]
    header = comment(f"{job.name}: written by ftr run --launcher ray; the Ray job's entrypoint")
    return "\n".join(["#!/bin/bash", header,
                      "set -euo pipefail", *job.hardware.setup,
                      "exec " + " ".join(quote(arg) for arg in driver)]) + "\n"


def _api(address: str, path: str, body: dict | None = None) -> dict:
    """One call of the Ray Jobs REST API (the dashboard's /api/jobs/); ftr needs no Ray installed for it."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{address.rstrip('/')}/api/jobs/{path}", data=data,
                                     headers={"Content-Type": "application/json"},
                                         method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        said = exc.read().decode("utf-8", "replace").strip().splitlines()
        raise FtrError(f"Ray at {address}: {exc.code} {said[-1] if said else exc.reason}", exit_code=1) from None
    except (urllib.error.URLError, OSError) as exc:
        raise FtrError(f"cannot reach the Ray dashboard at {address} ({getattr(exc, 'reason', exc)}); start a "
                       f"cluster (`ray start --head`) or pass --ray-address http://HEAD:8265", exit_code=2) from None
    except ValueError:
        raise FtrError(f"{address} did not answer as a Ray dashboard (no JSON); check --ray-address",
            exit_code=2) from None


def submit(job: Job, path: Path) -> str:
    import datetime as dt

    job_id = f"{job.name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    _api(address(job.hardware), "", {"entrypoint": f"bash {quote(str(path))}", "submission_id": job_id})
    return job_id


def ready(hardware: Hardware) -> None:
    """Before anything is written: the cluster's dashboard answers."""
    _api(address(hardware), "")


def status(manifest: dict) -> State:
    state = _api(manifest["ray_address"], quote_id(manifest["job_id"])).get("status", "UNKNOWN")
    return State(state, done=state in FINISHED, ok=state == "SUCCEEDED" if state in FINISHED else None)


def cancel(manifest: dict) -> None:
    _api(manifest["ray_address"], f"{quote_id(manifest['job_id'])}/stop", {})


def quote_id(job_id: str) -> str:
    import urllib.parse

    return urllib.parse.quote(str(job_id), safe="")
