"""How Axolotl is launched: ``axolotl train`` with its launcher (accelerate / torchrun / python)."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.interface import Launch, LaunchOptions


def launch(python: Path, config: Path, opts: LaunchOptions) -> Launch:
    env = {"AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1"}
    if opts.gpus == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""
        return Launch([str(python), "-m", "axolotl.cli.train", str(config), *opts.extra], env)
    argv = [str(python.parent / "axolotl"), "train", str(config)]
    if opts.gpus <= 1 and opts.nnodes <= 1:
        return Launch(argv + ["--launcher", "python", *opts.extra], env)
    return Launch(argv + ["--launcher", "torchrun", "--", *_torchrun(opts, opts.gpus)] + list(opts.extra), env)


def _torchrun(opts: LaunchOptions, nproc: int) -> list[str]:
    args = [f"--nproc_per_node={nproc}", f"--nnodes={opts.nnodes}", f"--node_rank={opts.node_rank}"]
    if opts.master_addr:
        args.append(f"--rdzv_endpoint={opts.master_addr}:{opts.master_port or 29500}")
    return args


def run_overrides(opts: LaunchOptions, checkpoint: Path | None) -> dict:
    if opts.gpus == 0 and opts.nnodes > 1:  # tried: tests/backends/test_scaleout_slurm.py, docs/scale-out.md
        raise ValueError("Axolotl 0.19 cannot train across nodes on the CPU (under torchrun it loads the model onto "
                         "the local rank's GPU: 'Cannot access accelerator device when none is available'); pass "
                         "--gpus 1 or more, or --nodes 1")
    keys: dict = {}
    if checkpoint is not None:
        keys["resume_from_checkpoint"] = str(checkpoint)
    if opts.fsdp:
        keys["fsdp_version"] = 2
        keys["fsdp_config"] = {"offload_params": False, "state_dict_type": "FULL_STATE_DICT",
                               "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "reshard_after_forward": True}
    return keys


def merge(python: Path, run_dir: Path, cfg: dict, out: Path) -> Launch:
    """``axolotl merge-lora``; Axolotl writes into {output_dir}/merged, which ftr then moves to ``out``."""
    env = {"AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1"}
    return Launch([str(python), "-m", "axolotl.cli.merge_lora", str(run_dir / "axolotl.yaml"),
                   f"--lora-model-dir={cfg['output_dir']}"], env, produces=Path(cfg["output_dir"]) / "merged")
