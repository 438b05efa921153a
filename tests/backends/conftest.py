"""Fixtures for tests against the real backends (marked ``backends``; run by .ci/run with everything else).

The backend environments are built from their lock files on first use (ft_recipes.backends.envs.install) and cached in
$FTR_ENV_DIR (default ~/.cache/ft-recipes/envs); FTR_<NAME>_PYTHON points at an existing one instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TINY = ROOT / "tests" / "fixtures" / "tiny.py"


def pytest_collection_modifyitems(config, items):
    """Every test under tests/backends is a `backends` test."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.backends)


def _backend_python(name: str) -> Path:
    from ft_recipes.backends import env_spec
    from ft_recipes.backends.envs import find_python, install

    spec = env_spec(name)
    python = find_python(spec)
    if python is None:
        python = install(spec, log=lambda msg: print(msg, file=sys.stderr))
    return python


def offline_env(home: Path) -> dict[str, str]:
    """Environment for backend subprocesses: no hub access, no telemetry, no GPU, caches under ``home``."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(home / "hf"), "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": "",
                "WANDB_DISABLED": "true", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1",
                "AXOLOTL_DO_NOT_TRACK": "1", "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2")})
    return env


@pytest.fixture(scope="session")
def backend_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backend-home")


@pytest.fixture(scope="session")
def backend_env(backend_home) -> dict[str, str]:
    """os.environ plus offline_env(): pass as env= to every backend subprocess."""
    return offline_env(backend_home)


# --- LLaMA-Factory -------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lf_python() -> Path:
    """The LLaMA-Factory 0.9.5 environment's python; installs it (about 80 s, 1.6 GB) when missing."""
    return _backend_python("llamafactory")


# --- Axolotl -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ax_python() -> Path:
    """The Axolotl 0.19.0 environment's python; installs it from its lock (about 2-3 min, 3.5 GB) when missing."""
    return _backend_python("axolotl")


@pytest.fixture(scope="session")
def ax21_python() -> Path:
    """The Axolotl 0.21.0 environment's python (Python 3.12), always ftr's own cached one (FTR_AXOLOTL_PYTHON
    may hold another version); installs it from lock-0.21.0.txt when missing (see docs/backends/axolotl.md)."""
    from ft_recipes.backends import get
    from ft_recipes.backends.envs import install

    return install(get("axolotl", "0.21.0").env_spec(), log=lambda msg: print(msg, file=sys.stderr))


# --- trl ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def trl_python() -> Path:
    """The trl backend's environment (transformers + peft + trl pinned in its lock); installs it when missing."""
    return _backend_python("trl")


# --- lm-eval (ftr eval) ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def eval_python() -> Path:
    """The lm-eval environment's python; built from ft_recipes/run/evaluation/lock.txt when missing (about 20 s)."""
    from ft_recipes.backends.envs import find_python, install
    from ft_recipes.run.evaluation import SPEC

    return find_python(SPEC) or install(SPEC, log=lambda msg: print(msg, file=sys.stderr))


# --- shared test assets ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TinyAssets:
    model: Path  # tiny ChatML Llama (tokenizer with chat template, safetensors weights)
    data: Path  # alpaca/sharegpt/messages/preference/preference_messages/text .jsonl, 50 rows each


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory, lf_python, backend_env) -> TinyAssets:
    """Build the tiny model and the datasets once per session, with the LF environment's python
    (any backend env has torch + transformers + tokenizers)."""
    root = tmp_path_factory.mktemp("tiny")
    model, data = root / "model", root / "data"
    proc = subprocess.run([str(lf_python), str(TINY), str(model), str(data)], capture_output=True, text=True,
                          env=backend_env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return TinyAssets(model=Path(info["model"]), data=Path(info["data"]))
