"""SkyPilot: a task YAML (resources, ``num_nodes``, file mounts for the recipe and its data, ``setup`` installing
ftr and the backend's environment, ``run`` calling ``ftr run`` with SkyPilot's node rank and head IP);
``sky launch`` when SkyPilot is installed, else ftr says how."""

from __future__ import annotations

import shutil
from pathlib import Path

from ft_recipes import __version__
from ft_recipes.core.findings import UsageError
from ft_recipes.recipe.normalise import to_data
from ft_recipes.run.launchers.base import Job, State, call, comment, tool
from ft_recipes.run.plan import quote

FILE = "sky-task.yaml"
RECIPE = "sky-recipe.yaml"  # the recipe as the nodes see it: paths under ~/ftr
INSTALL = "pip install 'ft-recipes[skypilot]' (SkyPilot) and `sky check` a cloud"
REMOTE = "~/ftr"


def remote_recipe(job: Job) -> tuple[dict, dict[str, str]]:
    """The resolved recipe with its files moved under ~/ftr, and the file mounts (remote -> local) that put
    them there."""
    data = to_data(job.recipe)
    mounts: dict[str, str] = {}
    sets = [data["data"]["train"], data["data"].get("val", {}).get("datasets", [])]
    for i, dataset in enumerate(d for group in sets for d in group):
        if "path" in dataset:
            local = Path(dataset["path"])
            dataset["path"] = f"data/{i}-{local.name}"
            mounts[f"{REMOTE}/{dataset['path']}"] = str(local)
    if job.recipe.model.is_local:
        mounts[f"{REMOTE}/model"] = data["model"]["base"]
        data["model"]["base"] = "model"
    data["output"]["dir"] = "run"
    data["hardware"].pop("launcher", None)
    return data, mounts


def task(job: Job) -> dict:
    hw, opts = job.hardware, job.opts
    data, mounts = remote_recipe(job)
    resources: dict = {}
    if opts.gpus:
        if not hw.accelerator:
            raise UsageError(f"SkyPilot needs the GPU type for {opts.gpus} GPU(s) per node: set hardware.accelerator "
                             f"(e.g. A100, H100) or pass --gpus 0 for CPU nodes")
        resources["accelerators"] = f"{hw.accelerator}:{opts.gpus}"
    if hw.cpus_per_node:
        resources["cpus"] = f"{hw.cpus_per_node}+"
    if hw.cloud:
        resources["cloud"] = hw.cloud
    if hw.container:
        resources["image_id"] = f"docker:{hw.container}"
    mounts[f"{REMOTE}/recipe.yaml"] = str(job.run_dir / RECIPE)
    ftr_args = ["ftr", "run", "$HOME/ftr/recipe.yaml", "-b", job.backend, "--launcher", "local", "--gpus",
                str(opts.gpus)]
    if opts.deepspeed:
        if Path(opts.deepspeed).is_file():
            mounts[f"{REMOTE}/deepspeed.json"] = str(Path(opts.deepspeed).resolve())
            ftr_args += ["--deepspeed", "$HOME/ftr/deepspeed.json"]
        else:
            ftr_args += ["--deepspeed", opts.deepspeed]
    if opts.fsdp:
        ftr_args.append("--fsdp")
    command = " ".join(a if a.startswith("$HOME") else quote(a) for a in ftr_args)
    command += (' --nodes "$SKYPILOT_NUM_NODES" --node-rank "$SKYPILOT_NODE_RANK" --master-addr "$head"'
                f" --master-port {job.port}")
    if opts.extra:
        command += " -- " + " ".join(quote(a) for a in opts.extra)
    source = Path(__file__).resolve().parents[3]
    # ft-recipes is not on PyPI: an installed ftr installs its own release tag from git (docs/install.md)
    install = "pip install ." if (source / "pyproject.toml").is_file() else \
        f"pip install 'ft-recipes @ git+https://github.com/ft-recipes/ft-recipes@v{__version__}'"
    out: dict = {"name": job.name, "num_nodes": opts.nnodes, "resources": resources}
    if (source / "pyproject.toml").is_file():
        out["workdir"] = str(source)  # this ftr's source, synced to ~/sky_workdir (setup and run start there)
    out.update({"file_mounts": mounts,
                "setup": "\n".join(["set -euo pipefail", *hw.setup, install,
                    f"ftr backend install {quote(job.backend)}"]),
                "run": "\n".join(["set -euo pipefail", *hw.setup, 'head=$(echo "$SKYPILOT_NODE_IPS" | head -n 1)',
                                  command])})
    return out


def script(job: Job) -> str:
    from ft_recipes.backends.emitted import to_yaml

    return comment(f"{job.name}: written by ftr run --launcher skypilot; launch with sky launch") + "\n" + \
        to_yaml(task(job))


def write_recipe(job: Job) -> Path:
    from ft_recipes.backends.emitted import atomic_write, to_yaml

    path = job.run_dir / RECIPE
    atomic_write(path, to_yaml(remote_recipe(job)[0]))
    return path


def launch_command(job: Job, path: Path, sky: str = "sky") -> list[str]:
    return [sky, "launch", "--yes", "--detach-run", "--cluster", job.name, str(path)]


def ready(hardware) -> None:
    """Nothing to check: without SkyPilot ftr writes the task and says how to launch it."""


def submit(job: Job, path: Path) -> str | None:
    """``sky launch`` when SkyPilot is installed (the cluster name is the job id); None when it is not."""
    write_recipe(job)
    if shutil.which("sky") is None:
        return None
    call(launch_command(job, path, tool("sky", INSTALL)), "sky launch")
    return job.name


def status(manifest: dict) -> State:
    out = call([tool("sky", INSTALL), "queue", str(manifest["job_id"])], "sky queue")
    for state in ("FAILED", "CANCELLED", "SUCCEEDED", "RUNNING", "SETTING_UP", "PENDING"):
        if state in out:
            return State(state, done=state in ("FAILED", "CANCELLED", "SUCCEEDED"), ok=state == "SUCCEEDED")
    return State("UNKNOWN", done=False)


def cancel(manifest: dict) -> None:
    call([tool("sky", INSTALL), "cancel", "--yes", str(manifest["job_id"]), "--all"], "sky cancel")
