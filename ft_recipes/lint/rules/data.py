"""FTR2xx: data and evaluation."""

from __future__ import annotations

from ...recipe import Dataset
from ..registry import Context, Rule, rule


@rule
class NoValidation(Rule):
    code = "FTR201"
    name = "no-validation-data"
    messages = ('none',)
    severity = "warning"
    summary = "No validation data: neither a validation split nor a validation dataset."
    what = "Reports a recipe with neither `data.val.split` nor `data.val.datasets`."
    why = ("Without a validation loss, overfitting and a broken data pipeline look exactly like a good run "
           "(project seed rule: never train without a validation set; 9:1 is the usual split).")
    bad = "data:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n"
    good = "data:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n  val: {split: 0.1}\n"
    fix = "Add `data.val: {split: 0.1}`, or a separate `data.val.datasets` list."

    def check(self, ctx: Context) -> None:
        if not ctx.recipe.data.has_validation:
            ctx.report(("data",), "none")


@rule
class ValidationNeverRuns(Rule):
    code = "FTR202"
    name = "validation-never-runs"
    messages = ('never', 'after_end', 'empty_split')
    severity = "warning"
    summary = "Validation data is configured but never evaluated."
    what = ("Reports validation data with `eval.every: no`, `eval.steps` larger than `train.max_steps`, and a "
            "fractional split that yields no example when every training dataset declares `num_samples`.")
    why = ("LLaMA-Factory users report `val_size` without `eval_strategy` as a silent failure: the split is held out "
           "from training and the validation loss is never computed.")
    bad = "data:\n  val: {split: 0.1}\neval: {every: 'no'}\n"
    good = "data:\n  val: {split: 0.1}\neval: {every: epoch}\n"
    fix = "Set `eval.every: epoch`, or `eval.steps` below the run length."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        if not recipe.data.has_validation:
            return
        ev = recipe.eval
        if ev.strategy == "no":
            ctx.report(("eval", "every"), "never")
        elif ev.strategy == "steps" and ev.steps and recipe.train.max_steps and ev.steps > recipe.train.max_steps:
            ctx.report(("eval", "steps"), "after_end", steps=ev.steps, max_steps=recipe.train.max_steps)
        rows = [ds.num_samples for ds in recipe.data.train]
        split = recipe.data.val_split
        if 0 < split < 1 and not recipe.data.val and rows and all(rows) and sum(rows) * split < 1:
            ctx.report(("data", "val", "split"), "empty_split", split=split, rows=sum(rows))


@rule
class ValidationSplitSize(Rule):
    code = "FTR203"
    name = "validation-split-size"
    messages = ('small', 'large')
    options = ('min', 'max')
    severity = "info"
    summary = "Validation split fraction outside 0.05-0.2."
    what = "Checks a fractional `data.val.split` (below 1) against `min` and `max`; row counts are not checked."
    why = "A tiny split gives a noisy validation loss; a large one takes training data away (9:1 is usual)."
    bad = "data:\n  val: {split: 0.5}\n"
    good = "data:\n  val: {split: 0.1}\n"
    fix = "Use `split: 0.1`, or a row count (e.g. `split: 500`) for large datasets."

    def check(self, ctx: Context) -> None:
        split = ctx.recipe.data.val_split
        if not 0 < split < 1:
            return
        if split < ctx["min"]:
            ctx.report(("data", "val", "split"), "small", split=split)
        elif split > ctx["max"]:
            ctx.report(("data", "val", "split"), "large", split=split)


def format_known(ds: Dataset) -> bool:
    """False for a native file's dataset that could not be resolved here (its format is a placeholder)."""
    from ...datasets import path_note

    return ds.path is None or not (path_note(ds.path, "unchecked") or path_note(ds.path, "undefined")
                                  or path_note(ds.path, "no_registry"))


def _turns_problem(turns, role: str, content: str) -> tuple[str, str] | None:
    if not isinstance(turns, list) or not turns:
        return "the conversation is not a non-empty list", "messages"
    for turn in turns:
        if not isinstance(turn, dict) or role not in turn or content not in turn:
            return f"a turn lacks {role!r}/{content!r}", ("role" if isinstance(turn, dict) and role not in turn
                                                          else "content")
    return None


def row_problem(row: dict, ds: Dataset) -> tuple[str, str] | None:
    """(problem, standard column to map) when ``row`` does not fit ``ds.format``, else None."""
    mapped = dict(ds.columns)
    if ds.format in ("sharegpt", "messages"):
        default = "conversations" if ds.format == "sharegpt" else "messages"
        column = mapped.get("messages", default)
        if column not in row:
            return f"no {column!r} column", "messages"
        tags = ("from", "value") if ds.format == "sharegpt" else ("role", "content")
        return _turns_problem(row[column], mapped.get("role", tags[0]), mapped.get("content", tags[1]))
    required = {"alpaca": ("instruction", "output"), "preference": ("chosen", "rejected"), "text": ("text",)}
    for std in required.get(ds.format, ()):
        if ds.column(std) not in row:
            return f"no {ds.column(std)!r} column", std
    if ds.format == "preference" and ds.column("prompt") not in row and ds.column("instruction") not in row:
        return "no prompt: neither 'prompt' nor 'instruction' column", "prompt"
    return None


@rule
class DatasetRows(Rule):
    code = "FTR204"
    name = "dataset-rows-invalid"
    messages = ('unreadable', 'empty', 'columns')
    options = ('rows',)
    severity = "error"
    summary = "A local dataset is unreadable, empty, or its rows do not fit the declared format."
    what = ("Reads the first `rows` rows of each local .jsonl/.json dataset and checks them against the format: "
            "alpaca instruction/output, sharegpt conversations of from/value turns, messages of role/content turns, "
            "preference chosen/rejected with a prompt or instruction, text. Other file types, directories and hub "
            "datasets are not read.")
    why = ("A column mismatch fails in the backend only after the model is loaded, or worse, trains on empty prompts "
           "(a missing column is read as empty by some loaders).")
    bad = ('# data/train.jsonl: {"question": "...", "answer": "..."}\n'
           "data:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n")
    good = ('# data/train.jsonl: {"question": "...", "answer": "..."}\n'
            "data:\n  train:\n    - path: data/train.jsonl\n      format: alpaca\n"
            "      columns: {instruction: question, output: answer}\n")
    fix = "Fix the rows, pick the right `format`, or map the file's names with `columns:`."

    def check(self, ctx: Context) -> None:
        from ...datasets import path_note

        for ds in ctx.recipe.data.train + ctx.recipe.data.val:
            if ds.path is not None and ds.path.is_file() and ds.path.suffix in (".jsonl", ".json") and \
                    not path_note(ds.path, "rows"):
                self._check_file(ctx, ds)

    def _check_file(self, ctx: Context, ds: Dataset) -> None:
        from ...datasets import iter_rows

        path = ds.key_path + ("path",)
        try:
            rows = list(iter_rows(ds.path, ctx["rows"]))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            ctx.report(path, "unreadable", path=ds.path.name, reason=str(exc))
            return
        if not rows:
            ctx.report(path, "empty", path=ds.path.name)
        for number, row in enumerate(rows, 1):
            problem = row_problem(row, ds) if isinstance(row, dict) else ("not a JSON object", "messages")
            if problem:
                ctx.report(path, "columns", path=ds.path.name, row=number, problem=problem[0], std=problem[1],
                           format=ds.format)
                return


@rule
class PreferenceData(Rule):
    code = "FTR205"
    name = "preference-stage-without-pairs"
    messages = ('not_preference',)
    options = ('stages',)
    severity = "error"
    summary = "A preference stage (dpo/orpo/simpo/rm) with a dataset that is not a preference dataset."
    what = ("Reports each training or validation dataset whose `format` is not `preference` when the stage is one "
            "of `stages` (KTO is not checked: it trains on unpaired, labelled answers).")
    why = "DPO, ORPO, SimPO and reward modelling learn from chosen/rejected pairs; without them there is no signal."
    bad = "stage: dpo\ndata:\n  train:\n    - {path: data/sft.jsonl, format: alpaca}\n"
    good = "stage: dpo\ndata:\n  train:\n    - {path: data/pairs.jsonl, format: preference}\n"
    fix = "Use `format: preference` data (prompt or instruction, chosen, rejected), or `stage: sft`."

    def check(self, ctx: Context) -> None:
        recipe = ctx.recipe
        if recipe.stage not in ctx["stages"]:
            return
        for ds in recipe.data.train + recipe.data.val:
            if not ds.is_preference and format_known(ds):
                ctx.report(ds.key_path + ("format",), "not_preference", stage=recipe.stage, format=ds.format)


@rule
class MaxLength(Rule):
    code = "FTR206"
    name = "max-length-out-of-range"
    messages = ('short', 'over_context', 'packing')
    options = ('min_length',)
    severity = "warning"
    summary = "max_length below 256 or above the model's context; packing with a preference stage."
    what = ("Checks `data.max_length` against `min_length` and, when the model's config is known, against its "
            "`max_position_embeddings`; reports packing for preference stages.")
    why = ("Short limits truncate most chat examples (the answer is cut, so the model learns to stop mid-sentence); "
           "lengths beyond the context break position embeddings. Chosen/rejected pairs cannot be packed.")
    bad = "data: {max_length: 128}\n"
    good = "data: {max_length: 2048}\n"
    fix = "Use 1024-4096 tokens, within the model's context."

    def check(self, ctx: Context) -> None:
        from ...modelinfo import read_json

        recipe = ctx.recipe
        length = recipe.data.max_length
        context = read_json(recipe.model.base, "config.json").get("max_position_embeddings")
        if length < ctx["min_length"]:
            ctx.report(("data", "max_length"), "short", length=length, min=ctx["min_length"])
        elif isinstance(context, int) and length > context:
            ctx.report(("data", "max_length"), "over_context", length=length, context=context)
        if recipe.data.packing and recipe.is_preference:
            ctx.report(("data", "packing"), "packing", stage=recipe.stage)
