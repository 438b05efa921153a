"""Validate native Axolotl configs with Axolotl's own code; run INSIDE the Axolotl environment.

    python validate_helper.py [--cpu] CONFIG.yaml...

Each file is loaded the way ``axolotl.cli.config.load_cfg`` loads it (``yaml.safe_load`` into a
``DictDefault``), then ``prepare_plugins`` and ``validate_config`` run on it.  ``--cpu`` validates with
the capabilities of a host without a GPU (what ``axolotl train`` passes on such a host), so that e.g.
``bf16: true`` is checked against "no bf16".

Axolotl ignores unknown keys silently (pydantic ``extra="ignore"``), at the top level, inside dataset
entries (which for ``rl: dpo`` become ``DPODataset`` and lose every SFT-only field) and inside nested
sections.  This helper therefore also walks the input against the validated pydantic model instance and
reports each input key that no field or alias of the model that received it accepts ("dropped").

Prints one JSON line per file: {"path", "ok", "error", "dropped"}.  Exit status 0 when every file is ok
and nothing was dropped, else 1.  Imports Axolotl once, validates many files.
"""

from __future__ import annotations

import copy
import json
import os
import sys

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CPU_CAPABILITIES = {"bf16": False, "fp8": False, "tf32": False, "n_gpu": 1, "compute_capability": None}


def _accepted_names(model_cls) -> set[str]:
    """Input keys a pydantic model accepts: field names (when allowed) plus every alias spelling."""
    cfg = getattr(model_cls, "model_config", {}) or {}
    by_name = bool(cfg.get("populate_by_name") or cfg.get("validate_by_name"))
    names: set[str] = set()
    for name, info in model_cls.model_fields.items():
        aliases: set[str] = set()
        if isinstance(info.alias, str):
            aliases.add(info.alias)
        va = info.validation_alias
        if isinstance(va, str):
            aliases.add(va)
        elif va is not None:  # AliasChoices / AliasPath
            for choice in getattr(va, "choices", [va]):
                path = getattr(choice, "path", [choice])
                if path and isinstance(path[0], str):
                    aliases.add(path[0])
        names |= aliases
        if by_name or not aliases:
            names.add(name)
    return names


def _walk(inp, inst, prefix: str, out: list[str]) -> None:
    """Record input keys that the pydantic instance ``inst`` had no field for, recursing into submodels."""
    from pydantic import BaseModel

    if isinstance(inst, BaseModel) and isinstance(inp, dict):
        cls = type(inst)
        extra = (getattr(cls, "model_config", {}) or {}).get("extra")
        if extra == "allow":
            return  # kept as model_extra, nothing is dropped here
        accepted = _accepted_names(cls)
        by_key = {}
        for name, info in cls.model_fields.items():
            by_key[name] = name
            if isinstance(info.alias, str):
                by_key[info.alias] = name
        for key, val in inp.items():
            dotted = f"{prefix}{key}"
            if key not in accepted:
                out.append(dotted)
                continue
            field = by_key.get(key)
            if field is not None:
                _walk(val, getattr(inst, field, None), dotted + ".", out)
    elif isinstance(inst, (list, tuple)) and isinstance(inp, list) and len(inst) == len(inp):
        for i, (a, b) in enumerate(zip(inp, inst)):
            _walk(a, b, f"{prefix.rstrip('.')}[{i}].", out)


def main(argv: list[str]) -> int:
    cpu = False
    paths: list[str] = []
    for a in argv:
        if a == "--cpu":
            cpu = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            paths.append(a)
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2

    import logging

    logging.disable(logging.WARNING)
    import axolotl.utils.config as axcfg
    import yaml
    from axolotl.cli.config import prepare_plugins
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    captured: list = []
    orig = getattr(axcfg, "_model_with_inherited_default_fallback", None)
    if orig is not None:
        def _capture(model_cls, data):
            inst = orig(model_cls, data)
            captured.append(inst)
            return inst

        axcfg._model_with_inherited_default_fallback = _capture

    env_caps = None
    if cpu:
        import torch

        env_caps = {"torch_version": str(torch.__version__).split("+", maxsplit=1)[0]}

    all_ok = True
    for path in paths:
        rec = {"path": path, "ok": False, "error": None, "dropped": []}
        try:
            with open(path, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh)
            if not isinstance(raw, dict):
                raise ValueError("config is not a mapping")
            original = copy.deepcopy(raw)
            cfg = DictDefault(raw)
            # the plugin manager is a process-wide singleton: start each file with no plugins registered
            PluginManager.get_instance().plugins.clear()
            sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # plugins written next to the config
            prepare_plugins(cfg)
            sys.path.pop(0)
            captured.clear()
            if cpu:
                validate_config(cfg, capabilities=dict(CPU_CAPABILITIES), env_capabilities=dict(env_caps))
            else:
                validate_config(cfg)
            rec["ok"] = True
            if captured:
                dropped: list[str] = []
                _walk(original, captured[-1], "", dropped)
                # the capabilities model receives these two itself; they are not user input
                rec["dropped"] = [d for d in dropped if d not in ("capabilities", "env_capabilities")]
        except Exception as exc:  # noqa: BLE001  (every failure is a finding, never a crash)
            msg = str(exc).strip() or repr(exc)
            rec["error"] = f"{type(exc).__name__}: {msg}"
        if not rec["ok"] or rec["dropped"]:
            all_ok = False
        print(json.dumps(rec), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
