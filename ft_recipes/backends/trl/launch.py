"""How the trl backend is launched: the emitted script, with accelerate for several GPUs."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.interface import Launch, LaunchOptions


def launch(python: Path, config: Path, opts: LaunchOptions) -> Launch:
    script = config.with_name("train.py")
    env = {"CUDA_VISIBLE_DEVICES": ""} if opts.gpus == 0 else {}
    if opts.gpus > 1 or opts.nnodes > 1:
        argv = [str(python), "-m", "accelerate.commands.launch", f"--num_processes={max(opts.gpus, 1) * opts.nnodes}",
                f"--num_machines={opts.nnodes}", f"--machine_rank={opts.node_rank}",
                    *(["--cpu"] if not opts.gpus else [])]
        if opts.master_addr:
            argv += [f"--main_process_ip={opts.master_addr}", f"--main_process_port={opts.master_port or 29500}"]
        return Launch(argv + [str(script), str(config), *opts.extra], env)
    return Launch([str(python), str(script), str(config), *opts.extra], env)


def run_overrides(opts: LaunchOptions, checkpoint: Path | None) -> dict:
    if checkpoint is not None or opts.fsdp or opts.deepspeed:
        raise ValueError("the trl backend supports neither --resume, --fsdp nor --deepspeed yet")
    return {}


def merge(python: Path, run_dir: Path, cfg: dict, out: Path) -> Launch:
    code = ("import sys; from peft import AutoPeftModelForCausalLM; from transformers import AutoTokenizer; "
            "m = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1]).merge_and_unload(); m.save_pretrained(sys.argv[2]); "  # noqa: E501
            "AutoTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])")
    return Launch([str(python), "-c", code, cfg["args"]["output_dir"], str(out)], {})
