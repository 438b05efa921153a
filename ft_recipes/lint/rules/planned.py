"""Rules whose findings come from elsewhere than a lint rule's check (compile, run, the key catalogues), or that
are planned: documented here so `ftr rules` lists them."""

from __future__ import annotations

from ft_recipes.lint.rule import Rule, rule


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
    reported_by = "catalogue"
    summary = ("A native key deprecated, renamed or removed in the targeted backend version, or read by no version "
               "(native configs).")
    what = ("Reported for LLaMA-Factory and Axolotl files whose keys the backend's key catalogue "
            "(schemas/backends/<backend>-<version>.json, generated from its sources) marks as deprecated or removed, "
            "and for keys `ftr upgrade`'s rename table (schemas/backends/renames-<backend>.json) names: renamed "
            "(with the version and the new key), removed with no successor (with the version), or read by no "
            "version of the backend (with the key that asks for it). A key the targeted version no longer has is an "
            "error: LLaMA-Factory refuses the file, Axolotl drops the key silently. Each finding names the "
            "`ftr upgrade` command that rewrites the file.")
    why = ("A deprecated key still works today and silently stops working in a later backend version; a renamed one "
           "already has: the backend refuses it, or trains without it.")
    bad = "# llamafactory.yaml\nnew_special_tokens: <think>\n"
    good = "# llamafactory.yaml\nadd_special_tokens: <think>\n"
    fix = "Use the replacement key the finding names, or run `ftr upgrade FILE --to BACKEND=VERSION`."


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
