"""Axolotl plugin written by ft-recipes next to axolotl.yaml (``ftr_continue_adapter.py``) for a preference
stage that continues an earlier stage's adapter (``lora_model_dir``).

Axolotl 0.19 reads ``lora_model_dir`` for SFT, ORPO and SimPO, but for DPO, IPO and KTO it passes only the LoRA
config to TRL, which starts a fresh adapter. This plugin copies the saved adapter's weights into that adapter
once the trainer exists, before the first step, after checking that the saved adapter has the same shape.
"""

import json
from pathlib import Path

from axolotl.integrations.base import BasePlugin

SHAPE = ("r", "lora_alpha", "use_rslora", "use_dora")


class ContinueAdapter(BasePlugin):
    def post_trainer_create(self, cfg, trainer):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        folder = Path(cfg.lora_model_dir)
        saved = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        active = trainer.model.peft_config["default"]
        for key in SHAPE:
            if saved.get(key, False) != getattr(active, key):
                raise ValueError(f"ftr: {folder} has {key}={saved.get(key)!r} but this stage's adapter has "
                                 f"{getattr(active, key)!r}; write the LoRA settings once for both stages")
        if set(saved.get("target_modules") or ()) != set(active.target_modules or ()):
            raise ValueError(f"ftr: {folder} targets {sorted(saved.get('target_modules') or ())} but this stage's "
                             f"adapter targets {sorted(active.target_modules or ())}")
        state = load_file(str(folder / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(trainer.model, state)
        missing = [k for k in result.missing_keys if "lora_" in k]
        if result.unexpected_keys or missing:
            raise ValueError(f"ftr: {folder} does not fit this stage's adapter (unexpected "
                             f"{result.unexpected_keys[:3]}, missing {missing[:3]})")
        print(f"ftr: continuing the adapter of {folder} ({len(state)} tensors)", flush=True)
