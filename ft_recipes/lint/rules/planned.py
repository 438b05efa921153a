"""Rules in the catalogue that `ftr lint` does not check (yet): documented here so `ftr rules` lists them."""

from __future__ import annotations

from ..registry import Rule, rule


@rule
class BackendCannotExpress(Rule):
    code = "FTR005"
    name = "backend-cannot-express"
    severity = "error"
    status = "run"
    summary = "The chosen backend cannot express this recipe (reported by `ftr compile` / `ftr run`)."
    what = "Reported when compiling for a backend that has no equivalent (GRPO on LLaMA-Factory, PPO on Axolotl ...)."


@rule
class DeprecatedKey(Rule):
    code = "FTR006"
    name = "deprecated-native-key"
    severity = "warning"
    status = "planned"
    summary = "A native key deprecated or renamed in the targeted backend version (native configs)."
    what = "Planned with linting of native LLaMA-Factory / Axolotl files."


@rule
class OutputDirInUse(Rule):
    code = "FTR501"
    name = "output-dir-in-use"
    severity = "error"
    status = "run"
    summary = "The output directory holds a previous run (reported by `ftr run`)."
    what = "Reported by `ftr run` when output.dir holds a run and neither --resume nor --force was given."


@rule
class NoCheckpoints(Rule):
    code = "FTR502"
    name = "no-checkpoints"
    severity = "warning"
    status = "planned"
    summary = "No checkpointing for a run longer than one epoch or 1000 steps (planned)."
    what = "Planned for `ftr run`."


@rule
class BackendEnvironment(Rule):
    code = "FTR503"
    name = "backend-environment"
    severity = "error"
    status = "run"
    summary = "The backend environment is missing or its version differs (reported by `ftr run`)."
    what = "Reported by `ftr run` when the backend's environment is not installed or has another version."
