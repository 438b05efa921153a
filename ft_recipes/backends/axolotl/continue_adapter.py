"""Axolotl plugin written by ft-recipes next to axolotl.yaml (``ftr_continue_adapter.py``) for a preference
stage that continues an earlier stage's adapter (``lora_model_dir``).

Axolotl 0.19 reads ``lora_model_dir`` for SFT, ORPO and SimPO, but for DPO, IPO and KTO it passes only the LoRA
config to TRL, which starts a fresh adapter. This plugin copies the saved adapter's weights into that adapter
once the trainer exists, before the first step, after checking that the saved adapter has the same shape.

It also adds a frozen copy named "ref", which TRL (1.9) uses as the reference model when present: the reference
is then the continued (SFT) policy, as in the DPO paper, not the base model with the adapter disabled.
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
        _add_reference(trainer.model, active)
        if getattr(trainer.args, "disable_dropout", False):  # the trainer did this before "ref" existed
            from trl.trainer import disable_dropout_in_model

            disable_dropout_in_model(trainer.model)
        print(f"ftr: continuing the adapter of {folder} ({len(state)} tensors; reference: the same adapter, "
              f"frozen)", flush=True)


def _add_reference(model, config) -> None:
    """A frozen "ref" adapter equal to "default" (what TRL itself does for a model with a pretrained adapter)."""
    model.add_adapter("ref", config)
    model.set_adapter("default")
    for name, param in model.named_parameters():
        if ".ref." in name:
            param.data.copy_(model.get_parameter(name.replace(".ref.", ".default.")).data)
            param.requires_grad_(False)
