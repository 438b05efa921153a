"""How LLaMA-Factory is launched: ``llamafactory-cli train``; multi-GPU through its torchrun env vars."""

from __future__ import annotations

from pathlib import Path

from ft_recipes.backends.interface import Launch, LaunchOptions


def launch(python: Path, config: Path, opts: LaunchOptions) -> Launch:
    cli = python.parent / "llamafactory-cli"
    argv = [str(cli), "train", str(config), *opts.extra]
    env: dict[str, str] = {}
    if opts.gpus > 1 or opts.nnodes > 1 or opts.deepspeed:
        env["FORCE_TORCHRUN"] = "1"
        env["NNODES"] = str(opts.nnodes)
        env["NODE_RANK"] = str(opts.node_rank)
        env["NPROC_PER_NODE"] = str(max(opts.gpus, 1))  # the default is the device count: 0 on a CPU
        if opts.master_addr:
            env["MASTER_ADDR"] = opts.master_addr
        if opts.master_port:
            env["MASTER_PORT"] = str(opts.master_port)
    if opts.gpus == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return Launch(argv, env)


def run_overrides(opts: LaunchOptions, checkpoint: Path | None) -> dict:
    """Config keys ``ftr run`` sets on top of the compiled config."""
    keys: dict = {}
    if checkpoint is not None:
        keys["resume_from_checkpoint"] = str(checkpoint)
    if opts.fsdp:
        raise ValueError("LLaMA-Factory FSDP needs an accelerate launch; ftr supports DeepSpeed for it")
    return keys


def merge(python: Path, run_dir: Path, cfg: dict, out: Path) -> Launch:
    """``llamafactory-cli export`` with the adapter in the run directory."""
    import yaml

    merge_cfg = {"model_name_or_path": cfg["model_name_or_path"], "adapter_name_or_path": cfg["output_dir"],
                 "trust_remote_code": cfg.get("trust_remote_code", False), "finetuning_type": "lora",
                 "export_dir": str(out), "export_size": 5, "export_device": "cpu", "export_legacy_format": False}
    if cfg.get("template"):
        merge_cfg["template"] = cfg["template"]
    path = run_dir / "merge.yaml"
    path.write_text(yaml.safe_dump(merge_cfg, sort_keys=False), encoding="utf-8")
    return Launch([str(python.parent / "llamafactory-cli"), "export", str(path)], {})
