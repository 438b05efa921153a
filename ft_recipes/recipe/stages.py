"""Multi-stage pipelines: a recipe's ``stages:`` expanded into one resolved, validated recipe per stage.

Each stage merges, the way ``extends`` merges: the top level's presets, the stage's own ``extends`` presets, the
top level's keys, then the stage's keys (a value written in the recipe beats a preset's; the stage's beats the
top level's). Its run directory is ``output.dir/<name>``. ``from:`` (default:
the previous stage; the first stage starts from ``base``) decides what it trains on top of: an earlier stage's
adapter (``model.adapter``), or its merged model (``model.base``) when that stage says ``merge: true`` or is a
``stage: merge`` step. A ``stage: eval`` step trains nothing: it evaluates its ``from:`` stage's result against
the base model (``ftr eval``) with the ``eval:`` settings, and the stages after it start from what it evaluated.
See docs/pipelines.md.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ft_recipes.core.findings import Finding, FtrError
from ft_recipes.recipe.load import Document, load_file
from ft_recipes.recipe.loaded import Loaded
from ft_recipes.recipe.model import ADAPTER_METHODS, Recipe
from ft_recipes.recipe.resolve import Resolved, extends_layers, merge_layers, resolve

STAGE_KEYS = ("name", "from", "backend", "merge")  # pipeline keys: not recipe fields
SECTIONS = ("extends", "description", "model", "stage", "method", "preference", "data", "train", "eval", "output",
            "hardware", "backends", "lint")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
BASE = "base"
EVAL_KEYS = ("name", "from", "stage", "eval", "description")  # what an eval step may hold
EVAL_RESULT = "eval.json"  # an eval step's result, in its run directory


@dataclass
class Stage:
    name: str
    index: int
    source: str  # "base" or the name of an earlier stage
    backend: str | None  # None: the command line's --backend
    merge: bool  # merge the adapter into the base after training
    run_dir: Path
    loaded: Loaded | None  # None for a ``stage: merge`` or ``stage: eval`` step
    where: tuple[str, int, int]  # the stage entry's position
    kind: str = "train"  # train, merge (``stage: merge``) or eval (``stage: eval``)
    evaluation: Any = None  # an eval step's settings: the recipe's ``eval:`` section (recipe.Eval)
    evaluates: str | None = None  # an eval step: the training stage whose recipe (held-out rows, base) it uses

    @property
    def is_merge_step(self) -> bool:
        return self.kind == "merge"

    @property
    def is_eval_step(self) -> bool:
        return self.kind == "eval"

    @property
    def recipe(self) -> Recipe | None:
        return self.loaded.recipe if self.loaded else None

    def backend_for(self, default: str) -> str:
        return self.backend or default

    @property
    def result(self) -> Path:
        """Where this stage's result lies: the adapter (run dir), the merged model, or an eval step's eval.json."""
        if self.is_eval_step:
            return self.run_dir / EVAL_RESULT
        if self.is_merge_step:
            return self.run_dir
        return self.run_dir / "merged" if self.merge else self.run_dir

    @property
    def result_kind(self) -> str:
        if self.is_eval_step:
            return "eval"
        if self.is_merge_step or self.merge:
            return "merged"
        return "adapter" if self.recipe.method.saves_adapter else "model"


@dataclass
class Pipeline:
    file: str
    stages: list[Stage]
    dir: Path  # the top level's output.dir: holds every stage's run directory and pipeline.json

    def get(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise FtrError(f"{self.file}: no stage {name!r}; the stages are {', '.join(self.names)}", exit_code=2)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def source(self, stage: Stage) -> Stage | None:
        return None if stage.source == BASE else self.get(stage.source)

    def backend_of(self, stage: Stage, default: str) -> str:
        """The backend a stage runs on; a merge step uses its input stage's backend (its merge tool), an eval step
        its input's (it runs lm-eval, in its own environment, whatever the backend)."""
        if stage.is_merge_step or stage.is_eval_step:
            return self.backend_of(self.source(stage), default)
        return stage.backend_for(default)


def has_stages(path: str | Path) -> bool:
    """True when the file is a recipe with a ``stages:`` list (read without resolving)."""
    doc = load_file(path)
    return isinstance(doc.data, dict) and "stages" in doc.data


def load_pipeline(path: str | Path) -> Pipeline:
    """Every stage resolved, validated and normalised; FtrError with every finding (stage named) if invalid."""
    doc = load_file(path)
    top = resolve(doc)
    findings = _check_entries(doc, top.data.get("stages")) or _check_top(top)
    if findings:
        raise FtrError(f"{path}: invalid stages ({len(findings)} problem(s))", findings)
    entries = top.data.pop("stages")
    out_dir = _top_output_dir(top)
    stages: list[Stage] = []
    for index, entry in enumerate(entries):
        previous = entries[index - 1]["name"] if index else BASE
        stage, stage_findings = _stage(doc, top, index, entry, previous, stages, out_dir)
        findings += stage_findings
        if stage is not None:
            stages.append(stage)
    if findings:
        raise FtrError(f"{path}: invalid pipeline ({len(findings)} problem(s))", _once(findings))
    return Pipeline(doc.file, stages, out_dir)


def _once(findings: list[Finding]) -> list[Finding]:
    """A problem at a line outside the stages (the top level, a preset) is reported once, for its first stage."""
    seen, out = set(), []
    for f in findings:
        key = (f.file, f.line, f.col, f.code, f.message.split(": ", 1)[-1])
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def in_stage(finding: Finding, name: str) -> Finding:
    """The finding with the stage named in its message (its position already points into the stage)."""
    if finding.message.startswith(f"stage {name}: "):
        return finding
    return replace(finding, message=f"stage {name}: {finding.message}")


# --- the stage list ---------------------------------------------------------------------------------------

def _finding(doc: Document, path: tuple, code: str, message: str, hint: str) -> Finding:
    line, col = doc.pos(path)
    return Finding(doc.file, line, col, code, "error", message, hint, ".".join(map(str, path)))


def _check_entries(doc: Document, entries) -> list[Finding]:
    from ft_recipes.backends import NAMES
    from ft_recipes.recipe.validate import suggest

    if not isinstance(entries, list) or not entries:
        return [_finding(doc, ("stages",), "FTR002", "stages must be a non-empty list of mappings",
                         "e.g. stages: [{name: sft}, {name: dpo, stage: dpo}]")]
    findings, seen = [], []
    for i, entry in enumerate(entries):
        at = ("stages", i)
        if not isinstance(entry, dict):
            findings.append(_finding(doc, at, "FTR002", f"stages[{i}] is not a mapping", "write {name: NAME, ...}"))
            seen.append(None)
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            findings.append(_finding(doc, at + ("name",), "FTR003" if name is None else "FTR002",
                                     f"stages[{i}] needs a name of letters, digits, '.', '_' or '-'",
                                     "e.g. name: sft (it becomes the folder output.dir/sft)"))
        elif name in seen or name == BASE:
            findings.append(_finding(doc, at + ("name",), "FTR002", f"stage name {name!r} is "
                                     f"{'reserved' if name == BASE else 'used twice'}",
                                         "give every stage its own name"))
        for key in MAPPINGS:
            if key in entry and not isinstance(entry[key], dict):
                findings.append(_finding(doc, at + (key,), "FTR002", f"stage {name}: {key} must be a mapping",
                                         "see `ftr schema`"))
        for key in entry:
            if key not in STAGE_KEYS + SECTIONS:
                findings.append(_finding(doc, at + (key,), "FTR001", f"unknown key {key!r} in stage {name}",
                                         suggest(str(key), STAGE_KEYS + SECTIONS)))
        source = entry.get("from")
        if source is not None and source != BASE and source not in seen:
            later = source in [e.get("name") for e in entries if isinstance(e, dict)]
            findings.append(_finding(doc, at + ("from",), "FTR002",
                                     f"stage {name}: from {source!r} is {'not an earlier stage' if later else 'no stage'}",  # noqa: E501
                                     f"name an earlier stage ({', '.join(s for s in seen if s) or 'none yet'}) or base"))  # noqa: E501
        if "backend" in entry and entry["backend"] not in NAMES:
            findings.append(_finding(doc, at + ("backend",), "FTR002", f"stage {name}: unknown backend "
                                     f"{entry['backend']!r}", f"one of: {', '.join(NAMES)}"))
        if "merge" in entry and not isinstance(entry["merge"], bool):
            findings.append(_finding(doc, at + ("merge",), "FTR002", f"stage {name}: merge must be true or false",
                                     "merge: true merges the adapter into the base after training"))
        if isinstance(entry.get("output"), dict) and "dir" in entry["output"]:
            findings.append(_finding(doc, at + ("output", "dir"), "FTR002", f"stage {name}: a stage's run directory "
                                     "is output.dir/<name>", "set output.dir at the top level of the recipe"))
        seen.append(name if isinstance(name, str) else None)
    return findings


MAPPINGS = ("model", "method", "preference", "data", "train", "eval", "output", "hardware", "backends", "lint")


def _check_top(top: Resolved) -> list[Finding]:
    """The shapes ``stages.py`` relies on before merging (the merged stages are validated in full)."""
    doc, data = top.document, top.data
    findings = [_finding(doc, (key,), "FTR002", f"{key} must be a mapping", "see `ftr schema`")
                for key in ("model", "output") if key in data and not isinstance(data[key], dict)]
    out_dir = data.get("output", {}).get("dir") if isinstance(data.get("output"), dict) else None
    if out_dir is not None and not isinstance(out_dir, str):
        findings.append(_finding(doc, ("output", "dir"), "FTR002", "output.dir must be a path",
                                 "e.g. output: {dir: runs/my-pipeline}"))
    return findings


def _top_output_dir(top: Resolved) -> Path:
    from ft_recipes.recipe.normalise import _output

    return _output(top).dir


def _stage_document(doc: Document, index: int, entry: dict) -> Document:
    """The stage entry as a document of its own, its positions those of the recipe file."""
    prefix = ("stages", index)

    def shift(table: dict) -> dict:
        return {path[2:]: pos for path, pos in table.items() if path[:2] == prefix}

    data = {k: v for k, v in entry.items() if k not in STAGE_KEYS}
    return Document(doc.file, data, shift(doc.positions), shift(doc.key_positions), doc.lines)


def _stage(doc: Document, top: Resolved, index: int, entry: dict, previous: str, earlier: list[Stage],
           out_dir: Path) -> tuple[Stage | None, list[Finding]]:
    name = entry["name"]
    source = entry.get("from", previous)
    line, col = doc.pos(("stages", index))
    run_dir = out_dir / name
    parent = next((s for s in earlier if s.name == source), None)
    if parent is None and source != BASE:  # the stage it starts from is invalid: its findings say why
        return None, []
    while parent is not None and parent.is_eval_step:  # an eval step passes on what it evaluated
        parent = next(s for s in earlier if s.name == parent.source)
    common = dict(name=name, index=index, source=parent.name if parent else BASE, backend=entry.get("backend"),
                  merge=bool(entry.get("merge", False)), run_dir=run_dir, where=(doc.file, line, col))
    if entry.get("stage") == "eval":
        return _eval_step(doc, index, entry, parent, earlier, common)
    if entry.get("stage") == "merge":
        problem = _merge_step_problem(parent)
        if problem:
            return None, [_finding(doc, ("stages", index, "stage"), "FTR002", f"stage {name}: {problem}",
                                   "a merge step merges an earlier LoRA stage: from: <that stage>")]
        return Stage(**common, loaded=None, kind="merge"), []
    stage_doc = _stage_document(doc, index, entry)
    try:
        own = extends_layers(stage_doc)
        resolved = merge_layers(doc, top.layers[:-1] + own[:-1] + [top.layers[-1], own[-1]])
    except FtrError as exc:
        return None, [in_stage(f, name) for f in exc.findings] or [_finding(doc, ("stages", index), "FTR004",
                                                                            f"stage {name}: {exc}", "")]
    resolved.data.pop("stages", None)
    resolved.data.setdefault("output", {})["dir"] = _relative(run_dir, Path(resolved.document.file).resolve().parent)
    _start_from(resolved, parent, doc.pos(("stages", index, "from")) if "from" in entry else (line, col))
    return _normalised(resolved, name, parent, common)


def _merge_step_problem(parent: Stage | None) -> str | None:
    if parent is None:
        return "stage: merge needs from: an earlier stage"
    if parent.is_merge_step or parent.merge:
        return f"{parent.name} is already merged"
    if not parent.recipe.method.saves_adapter:
        return f"{parent.name} trains {parent.recipe.method.type}, not an adapter: there is nothing to merge"
    return None


def _eval_step(doc: Document, index: int, entry: dict, parent: Stage | None, earlier: list[Stage],
               common: dict) -> tuple[Stage | None, list[Finding]]:
    """A ``stage: eval`` step: the result of ``parent`` (an adapter, a merged model, a full model) against the base
    model, with the ``eval:`` settings of the training stage it evaluates, the step's own ``eval:`` keys over
    them; the held-out rows and the base model are that training stage's."""
    name, at = common["name"], ("stages", common["index"])
    findings = [_finding(doc, at + (key,), "FTR002", f"stage {name}: an eval step takes name, from, eval and "
                         f"description, not {key}", "it evaluates the from: stage's result; write training "
                         "settings in a training stage") for key in entry if key not in EVAL_KEYS]
    if parent is None:
        first = "starts from base" if "from" in entry else "is the first stage"
        findings.append(_finding(doc, at + ("from" if "from" in entry else "stage",), "FTR002",
                                 f"stage {name}: stage: eval has nothing to evaluate: it {first}",
                                 "put it after a training or merge stage, or name one with from:; it evaluates "
                                 "that stage's result against the base model"))
        return None, findings
    trained = parent if parent.recipe else next(s for s in earlier if s.name == parent.source)
    if trained.recipe.stage == "rm":
        findings.append(_finding(doc, at + ("stage",), "FTR002", f"stage {name}: {trained.name} trains a reward "
                                 "model (stage: rm), which lm-eval cannot score as a language model",
                                 "evaluate a stage that trains a language model (sft, dpo, ...)"))
    settings, problems = _eval_settings(doc, index, entry, trained, name)
    findings += problems
    if not findings and not settings.tasks and not holds_out(trained.recipe):
        findings.append(_finding(doc, at + ("eval",) if "eval" in entry else at + ("stage",), "FTR002",
                                 f"stage {name}: nothing to evaluate: no eval.tasks, and {trained.name} holds no "
                                 "validation rows (data.val)", "give eval: {tasks: [...]} (lm-eval task names or "
                                 f"task YAML files), or data.val to {trained.name}"))
    if findings:
        return None, findings
    return Stage(**common, loaded=None, kind="eval", evaluation=settings, evaluates=trained.name), []


def _eval_settings(doc: Document, index: int, entry: dict, trained: Stage, name: str):
    """The evaluated stage's ``eval:`` section with the step's own ``eval:`` keys merged over it, validated (a
    finding points at the step's line) and normalised (task files relative to the file that names them)."""
    from ft_recipes.recipe.normalise import normalise
    from ft_recipes.recipe.resolve import _record, deep_merge
    from ft_recipes.recipe.validate import validate

    own = entry.get("eval")
    if not own:
        return trained.recipe.eval, []
    base = trained.loaded.resolved
    stage_doc = _stage_document(doc, index, {"eval": own})
    provenance = dict(base.provenance)
    _record({"eval": own}, (), stage_doc, provenance)
    resolved = Resolved(deep_merge(base.data, {"eval": own}), base.document, [*base.layers, stage_doc], provenance)
    findings = validate(resolved)
    if findings:
        return None, [in_stage(f, name) for f in findings]
    return normalise(resolved).eval, []


def holds_out(recipe: Recipe) -> bool:
    """The recipe holds validation rows ``ftr eval`` can read: a local ``data.val`` dataset, or a split of local
    training rows."""
    data = recipe.data
    if data.val:
        return any(ds.path is not None for ds in data.val)
    return data.val_split > 0 and any(ds.path is not None for ds in data.train)


def _relative(path, here: Path) -> str:
    """A path written relative to the recipe's folder (normalise makes it absolute again), so that the stage's
    recipe, and its hash, do not depend on where the checkout lies."""
    text = os.path.relpath(Path(path), here)
    return text if text.startswith("..") else f"./{text}"


def _start_from(resolved: Resolved, parent: Stage | None, pos: tuple[int, int]) -> None:
    """Point the stage at its input: the parent's adapter on the same base, or its (merged) model as the base."""
    from ft_recipes.recipe.resolve import Source

    if parent is None:
        return
    model = resolved.data.setdefault("model", {})
    source = Source(resolved.document.file, *pos)
    here = Path(resolved.document.file).resolve().parent
    if parent.result_kind == "adapter":
        base = parent.recipe.model.base
        model["base"] = _relative(base, here) if parent.recipe.model.is_local else base
        model["adapter"] = _relative(parent.result, here)
        resolved.provenance[("model", "adapter")] = source
    else:
        model["base"] = _relative(parent.result, here)
        model.pop("adapter", None)
        resolved.provenance[("model", "base")] = source


def _normalised(resolved: Resolved, name: str, parent: Stage | None, common: dict):
    from ft_recipes.recipe.normalise import normalise
    from ft_recipes.recipe.validate import validate

    findings = validate(resolved)
    if findings:
        return None, [in_stage(f, name) for f in findings]
    recipe = replace(normalise(resolved), stage_name=name, parent=parent.recipe if parent else None)
    if parent is not None and parent.result_kind == "adapter" and not _same_adapter(parent.recipe, recipe):
        file, line, col = recipe.where(("method", "type"))
        kinds = "lora or qlora" if parent.recipe.method.is_adapter else parent.recipe.method.type
        return None, [Finding(file, line, col, "FTR002", "error", f"stage {name}: starts from {parent.name}'s "
                              f"adapter but trains {recipe.method.type}", f"use method.type {kinds}, or give "
                              f"{parent.name} merge: true", "method.type")]
    return Stage(**common, loaded=Loaded(resolved, recipe)), []


# --- lint ----------------------------------------------------------------------------------------------------

def _same_adapter(parent: Recipe, child: Recipe) -> bool:
    """A continued adapter keeps its kind: LoRA (lora/qlora) on LoRA, OFT on OFT."""
    if parent.method.is_adapter:
        return child.method.type in ADAPTER_METHODS
    return child.method.type == parent.method.type
