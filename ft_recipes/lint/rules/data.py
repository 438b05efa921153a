"""FTR2xx: data and evaluation."""

from __future__ import annotations

from ft_recipes.lint.rule import Context, Rule, rule
from ft_recipes.recipe.model import Dataset


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
    from ft_recipes.recipe.datasets import path_note

    return ds.path is None or not (path_note(ds.path, "unchecked") or path_note(ds.path, "undefined")
                                  or path_note(ds.path, "no_registry"))


def local_datasets(recipe, datasets: tuple | None = None, keyed: bool = False):
    """(dataset, its FileScan) for every local .jsonl/.json dataset ftr reads (default: training and validation);
    a file that cannot be opened is left to FTR004. ``keyed``: row keys comparable across files (datacheck.scan)."""
    from ft_recipes.backends.datacheck import scan
    from ft_recipes.recipe.datasets import path_note

    for ds in recipe.data.train + recipe.data.val if datasets is None else datasets:
        if ds.path is None or not ds.path.is_file() or ds.path.suffix not in (".jsonl", ".json") \
                or path_note(ds.path, "rows"):
            continue
        try:
            yield ds, scan(ds, keyed=keyed)
        except OSError:
            continue


@rule
class DatasetRows(Rule):
    code = "FTR204"
    name = "dataset-rows-invalid"
    messages = ('unreadable', 'empty', 'not_json', 'not_object', 'columns', 'types', 'empty_answer')
    severity = "error"
    summary = "A local dataset has lines that are not JSON, rows in another format, or fields of the wrong type."
    what = ("Reads every row of each local .jsonl/.json dataset, streamed, and checks it against the format: "
            "alpaca instruction/output, sharegpt conversations of from/value turns, messages of role/content turns, "
            "preference chosen/rejected with a prompt or instruction, text; every text field a string (alpaca's "
            "input and system may be null or absent). Reports each kind of problem once, with its count and the "
            "file:line of the first rows, and the format the rows fit when they fit another. Rows with an empty "
            "answer are a warning. Other file types, directories and hub datasets are not read.")
    why = ("The backends read the whole file with pyarrow before training: one truncated line or one number where a "
           "string was fails the job at load time, after it was queued; a column mismatch trains on empty prompts "
           "(a missing column is read as empty by some loaders).")
    bad = ('# data/train.jsonl: {"question": "...", "answer": "..."}\n'
           "data:\n  train:\n    - {path: data/train.jsonl, format: alpaca}\n")
    good = ('# data/train.jsonl: {"question": "...", "answer": "..."}\n'
            "data:\n  train:\n    - path: data/train.jsonl\n      format: alpaca\n"
            "      columns: {instruction: question, output: answer}\n")
    fix = "Fix the rows at the lines named, pick the right `format`, or map the file's names with `columns:`."

    def check(self, ctx: Context) -> None:
        for ds, scanned in local_datasets(ctx.recipe):
            self._report(ctx, ds, scanned)

    def _report(self, ctx: Context, ds: Dataset, scanned) -> None:
        path, name = ds.key_path + ("path",), ds.path.name
        if scanned.unreadable:
            ctx.report(path, "unreadable", path=name, reason=scanned.unreadable)
            return
        for kind in ("not_json", "not_object", "types", "empty_answer"):
            issue = scanned.issues.get(kind)
            if issue:
                line, detail = issue.first
                ctx.report(path, kind, path=name, count=issue.count, where=scanned.where(line), problem=detail,
                           lines=issue.lines())
        columns = scanned.issues.get("columns")
        if columns:
            self._columns(ctx, ds, scanned, columns)
        if not scanned.rows and not scanned.issues:
            ctx.report(path, "empty", path=name)

    def _columns(self, ctx: Context, ds: Dataset, scanned, issue) -> None:
        line, detail = issue.first
        guess, rows = scanned.formats.most_common(1)[0]
        if guess and guess != ds.format and rows == issue.count:
            fix = f"these rows are format {guess}: fix them, or set format: {guess} if the whole file is"
        else:
            fix = "fix the rows, or map the file's names with columns: {<standard name>: <name in the file>}"
        ctx.report(ds.key_path + ("path",), "columns", path=ds.path.name, count=issue.count,
                   where=scanned.where(line), problem=detail, format=ds.format, fix=fix, lines=issue.lines())


@rule
class BackendDropsRows(Rule):
    code = "FTR207"
    name = "rows-a-backend-drops"
    messages = ('tags', 'mixed', 'order', 'no_reply')
    severity = "warning"
    summary = ("Conversation rows a backend would skip: role tags it does not read, or turns out of order; rows with "
               "no assistant turn, which stop a trl run.")
    what = ("For sharegpt/messages datasets, reads every conversation as each backend with its own reader does "
            "(LLaMA-Factory: the role tags of dataset_info.json, defaults human/gpt for sharegpt; a first system turn, "
            "then user and assistant turns alternating, an even number of them). Reports, per backend, the rows it "
            "would skip: on a native file, rows whose role names are not the tags it declares (`tags`); in a recipe, "
            "rows with a second spelling of a role (`mixed`: ftr writes the spelling most rows use); and rows whose "
            "turns are out of order or end on a user turn (`order`). For the trl backend, when it trains the "
            "assistant turns of whole conversations (a template with generation markers): rows with no assistant "
            "turn at all (`no_reply`; gpt, assistant or the dataset's own assistant name).")
    why = ("LLaMA-Factory logs \"Invalid role tag\" and skips such a row; when none is left it fails with \"Cannot "
           "find valid samples\". Axolotl accepts both human/gpt and user/assistant, so the same file trains on one "
           "backend and not on the other. trl's SFTTrainer with `assistant_only_loss` stops the whole run on a row "
           "with no assistant turn (\"at least one example has no assistant tokens\"), where LLaMA-Factory skips it "
           "and Axolotl trains nothing on it.")
    bad = ('# data/chat.jsonl: {"conversations": [{"from": "human", "value": "hi"}, {"from": "human", "value": "hi?"}, '
           '{"from": "gpt", "value": "hello"}]}\n'
           "data:\n  train:\n    - {path: data/chat.jsonl, format: sharegpt}\n")
    good = ('# data/chat.jsonl: {"conversations": [{"from": "user", "value": "hi"}, {"from": "assistant", "value": '
            '"hello"}]}\n'
            "data:\n  train:\n    - {path: data/chat.jsonl, format: sharegpt}   # ftr writes LLaMA-Factory the tags "
            "user/assistant\n")
    fix = ("Declare the file's role names (dataset_info.json `tags`; in a recipe `columns: {user: ..., assistant: "
           "...}`), write one spelling per role, and keep the turns alternating, ending on an assistant turn.")

    def check(self, ctx: Context) -> None:
        from ft_recipes.backends.datacheck import _readers

        readers = _readers()
        for ds, scanned in local_datasets(ctx.recipe):
            for backend, reader in readers.items():
                if ctx.is_native and ctx.dialect != backend:
                    continue
                self._report(ctx, ds, scanned, reader, scanned.drops.get(backend, {}))
        self._replies(ctx)

    def _replies(self, ctx: Context) -> None:
        """Rows with no assistant turn, for each backend whose run such a row stops."""
        from ft_recipes import backends

        for backend in backends.all_backends():
            if backend.replies_required is None or (ctx.is_native and ctx.dialect != backend.name):
                continue
            names = backend.replies_required(ctx.recipe)
            for ds, scanned in local_datasets(ctx.recipe) if names else ():
                missing = rows_without_reply(ds, scanned, names)
                if missing.count:
                    ctx.report(ds.key_path + ("path",), "no_reply", backend=backend.title, path=ds.path.name,
                               count=missing.count, where=scanned.where(missing.first[0]), lines=missing.lines())

    def _report(self, ctx: Context, ds: Dataset, scanned, reader, drops: dict) -> None:
        path, native = ds.key_path + ("path",), ctx.is_native
        tags = reader.declared_tags(ds)
        wanted = {**tags, **reader.file_tags(ds, scanned.spellings)}
        if native and "tags" in drops:
            issue = drops["tags"]
            ctx.report(path, "tags", backend=reader.TITLE, path=ds.path.name, count=issue.count, rows=scanned.rows,
                       where=scanned.where(issue.first[0]), user=tags["user_tag"], assistant=tags["assistant_tag"],
                       fix_user=wanted["user_tag"], fix_assistant=wanted["assistant_tag"])
        elif not native:
            dropped = reader.rows_dropped(scanned.spellings, wanted)
            if dropped:
                ctx.report(path, "mixed", backend=reader.TITLE, path=ds.path.name, count=dropped,
                           user=wanted["user_tag"], assistant=wanted["assistant_tag"])
        if "order" in drops or "count" in drops:
            issue = drops.get("order") or drops["count"]
            count = sum(drops[k].count for k in ("order", "count") if k in drops)
            ctx.report(path, "order", backend=reader.TITLE, path=ds.path.name, count=count,
                       where=scanned.where(issue.first[0]))


def rows_without_reply(ds: Dataset, scanned, names: tuple[str, ...]):
    """The conversation rows of ``ds`` with no turn a backend reads as an assistant turn (``names``, and the
    dataset's own assistant name); such a row has an empty answer, so the file is read again only when the scan
    found empty answers."""
    from ft_recipes.backends.datacheck import FileScan, Issue, _turn_keys, row_problem, rows_of

    found = Issue()
    if ds.format not in ("sharegpt", "messages") or "empty_answer" not in scanned.issues:
        return found
    column, role, _ = _turn_keys(ds)
    names = {*names, ds.column("assistant")}
    for number, row in rows_of(ds.path, FileScan(ds.path)):
        if isinstance(row, dict) and not row_problem(row, ds) and not any(
                isinstance(turn, dict) and turn.get(role) in names for turn in row[column]):
            found.add(number)
    return found


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
        from ft_recipes.recipe.modelinfo import read_json

        recipe = ctx.recipe
        length = recipe.data.max_length
        context = read_json(recipe.model.base, "config.json").get("max_position_embeddings")
        if length < ctx["min_length"]:
            ctx.report(("data", "max_length"), "short", length=length, min=ctx["min_length"])
        elif isinstance(context, int) and length > context:
            ctx.report(("data", "max_length"), "over_context", length=length, context=context)
        if recipe.data.packing and recipe.is_preference:
            ctx.report(("data", "packing"), "packing", stage=recipe.stage)


@rule
class ValidationLeak(Rule):
    code = "FTR208"
    name = "validation-rows-in-training"
    messages = ('leak',)
    options = ('max_rows',)
    severity = "warning"
    summary = "Validation rows that are also training rows (exact match after normalising whitespace and case)."
    what = ("Compares every row of each local validation dataset (`data.val.datasets`) with every row of the local "
            "training datasets: prompt and answer, whitespace runs as one space, lower case. Reports more than "
            "`max_rows` such rows, with their file:line and the training row they repeat.")
    why = "A validation loss measured on rows the model trained on says nothing about overfitting."
    bad = ('# data/val.jsonl: {"instruction": "Say  TEA", "input": "", "output": "tea"}\n'
           "data:\n  train: [{path: data/train.jsonl, format: alpaca}]\n"
           "  val: {datasets: [{path: data/val.jsonl, format: alpaca}]}\n")
    good = ('# data/val.jsonl: {"instruction": "say moon", "output": "moon"}\n'
            "data:\n  train: [{path: data/train.jsonl, format: alpaca}]\n"
            "  val: {datasets: [{path: data/val.jsonl, format: alpaca}]}\n")
    fix = "Remove the repeated rows from the validation file (or from training)."

    def check(self, ctx: Context) -> None:
        from ft_recipes.backends.datacheck import leaks

        train = [scanned for _, scanned in local_datasets(ctx.recipe, ctx.recipe.data.train, keyed=True)]
        for ds, scanned in local_datasets(ctx.recipe, ctx.recipe.data.val, keyed=True) if train else ():
            issue = leaks(train, scanned)
            if issue.count > ctx["max_rows"]:
                line, origin = issue.first
                ctx.report(ds.key_path + ("path",), "leak", path=ds.path.name, count=issue.count, rows=scanned.rows,
                           where=scanned.where(line), origin=origin, lines=issue.lines())


@rule
class ValidationNearLeak(Rule):
    code = "FTR213"
    name = "validation-rows-near-training"
    messages = ('near',)
    options = ('similarity', 'max_rows')
    severity = "warning"
    summary = "Validation rows that nearly repeat training rows (MinHash-style near-duplicates)."
    what = ("Compares the word 3-grams (lower case) of every row of each local validation dataset with those of every "
            "training row: a validation row sharing `similarity` (Jaccard) or more of them with a training row is a "
            "near-duplicate; more than `max_rows` such rows are reported, with their file:line, the first training "
            "row that alike and how alike. Exact repeats are FTR208's and not counted again. The validation rows are "
            "indexed by their 8 smallest 3-gram hashes (a bottom-k MinHash sketch; 3-grams in more than 64 "
            "validation rows, a template's, index none) and the training files streamed once, so memory follows the "
            "validation data, not the training data; a candidate is confirmed with the exact Jaccard similarity.")
    why = ("A validation row that differs from a training row by a word or two measures memorisation, not "
           "generalisation: the validation loss looks better than the model is.")
    bad = ('# data/val.jsonl: {"instruction": "say tea", "output": "Tea is a drink made from the leaves of a shrub, '
           'served hot or cold."}\n'
           '# data/train.jsonl: {"instruction": "say tea", "output": "Tea is a drink made from the leaves of a shrub, '
           'served hot or iced."}\n'
           "data:\n  train: [{path: data/train.jsonl, format: alpaca}]\n"
           "  val: {datasets: [{path: data/val.jsonl, format: alpaca}]}\n")
    good = ('# data/val.jsonl: {"instruction": "say moon", "output": "The moon orbits the earth once a month."}\n'
            "data:\n  train: [{path: data/train.jsonl, format: alpaca}]\n"
            "  val: {datasets: [{path: data/val.jsonl, format: alpaca}]}\n")
    fix = "Remove the near-duplicate rows from the validation file (or from training)."

    def check(self, ctx: Context) -> None:
        from ft_recipes.backends.datacheck import near_leaks

        train = list(local_datasets(ctx.recipe, ctx.recipe.data.train, keyed=True))
        for ds, scanned in local_datasets(ctx.recipe, ctx.recipe.data.val, keyed=True) if train else ():
            issue = near_leaks(train, (ds, scanned), ctx["similarity"])
            if issue.count > ctx["max_rows"]:
                line, origin = issue.first
                ctx.report(ds.key_path + ("path",), "near", path=ds.path.name, count=issue.count, rows=scanned.rows,
                           where=scanned.where(line), origin=origin, lines=issue.lines())


@rule
class DuplicateRows(Rule):
    code = "FTR209"
    name = "duplicate-rows"
    messages = ('duplicates',)
    options = ('max_share',)
    severity = "warning"
    summary = "A dataset repeats rows (exact match after normalising whitespace and case)."
    what = ("Counts the rows of each local dataset that repeat an earlier row of it (prompt and answer, whitespace "
            "runs as one space, lower case); reports more than `max_share` of the rows.")
    why = ("Repeated rows are trained several times an epoch (memorised rather than learnt), and a random validation "
           "split then holds rows that are also in training.")
    bad = ('# data/rows.json: [{"instruction": "say tea", "output": "tea"}, {"instruction": "Say tea", "output": "tea"}]\n'  # noqa: E501
           "data:\n  train: [{path: data/rows.json, format: alpaca}]\n")
    good = ('# data/rows.json: [{"instruction": "say tea", "output": "tea"}, {"instruction": "say sun", "output": "sun"}]\n'  # noqa: E501
            "data:\n  train: [{path: data/rows.json, format: alpaca}]\n")
    fix = "Remove the repeated rows (the finding names the first few lines and the row each repeats)."

    def check(self, ctx: Context) -> None:
        for ds, scanned in local_datasets(ctx.recipe):
            issue = scanned.duplicates
            if scanned.rows and issue.count / scanned.rows > ctx["max_share"]:
                line, first = issue.first
                ctx.report(ds.key_path + ("path",), "duplicates", path=ds.path.name, count=issue.count,
                           rows=scanned.rows, share=issue.count / scanned.rows, where=scanned.where(line),
                           first=first, lines=issue.lines())


@rule
class PreferencePairs(Rule):
    code = "FTR210"
    name = "preference-pairs-uninformative"
    messages = ('identical', 'length_bias')
    options = ('max_identical', 'length_bias', 'min_pairs')
    severity = "warning"
    summary = "Preference pairs whose chosen and rejected answers are identical, or chosen nearly always longer."
    what = ("In each local preference dataset, counts pairs whose chosen and rejected answers are equal after "
            "normalising whitespace and case (more than `max_identical` is reported), and the share of pairs whose "
            "chosen answer is longer (above `length_bias`, with at least `min_pairs` pairs: an info).")
    why = ("An identical pair has no preference in it (its DPO loss gradient is zero, yet it counts in the batch); "
           "chosen answers that are nearly always longer teach length rather than quality.")
    bad = ('# data/pairs.jsonl: {"instruction": "q", "chosen": "same", "rejected": "same"}\n'
           "stage: dpo\ndata:\n  train: [{path: data/pairs.jsonl, format: preference}]\n")
    good = ('# data/pairs.jsonl: {"instruction": "q", "chosen": "a good answer", "rejected": "a bad one"}\n'
            "stage: dpo\ndata:\n  train: [{path: data/pairs.jsonl, format: preference}]\n")
    fix = "Remove identical pairs; balance the lengths of chosen and rejected answers."

    def check(self, ctx: Context) -> None:
        for ds, scanned in local_datasets(ctx.recipe):
            if not scanned.pairs:
                continue
            path, issue = ds.key_path + ("path",), scanned.identical
            if issue.count > ctx["max_identical"]:
                ctx.report(path, "identical", path=ds.path.name, count=issue.count, pairs=scanned.pairs,
                           where=scanned.where(issue.first[0]), lines=issue.lines())
            share = scanned.chosen_longer / scanned.pairs
            if scanned.pairs >= ctx["min_pairs"] and share > ctx["length_bias"]:
                ctx.report(path, "length_bias", path=ds.path.name, share=share, pairs=scanned.pairs)


@rule
class RowsTruncated(Rule):
    code = "FTR211"
    name = "rows-cut-at-max-length"
    messages = ('over', 'no_answer')
    options = ('max_share',)
    severity = "warning"
    summary = "Rows longer than data.max_length, and rows whose prompt alone fills it (the answer cut away)."
    what = ("Counts, for each local dataset, the rows whose prompt and answer are longer than `data.max_length` "
            "tokens (reported above `max_share` of the rows) and the rows whose prompt alone is that long (always "
            "reported). Tokens are counted with the model's tokenizer when its tokenizer.json is on this machine (a "
            "local path or the Hugging Face cache) and the `tokenizers` library is installed; else estimated at four "
            "characters a token, and the message says so. The chat template's own tokens are not counted.")
    why = ("Truncated answers teach the model to stop mid-sentence; a row whose prompt fills the budget has no "
           "answer token left on Axolotl and trl, which cut the end (LLaMA-Factory shares the budget and keeps a part "
           "of the answer), so it trains nothing or only the prompt.")
    bad = "data:\n  max_length: 256\n  train: [{path: data/long.jsonl, format: alpaca}]   # prompts of 400 tokens\n"
    good = "data:\n  max_length: 2048\n  train: [{path: data/long.jsonl, format: alpaca}]\n"
    fix = "Raise `data.max_length`, or shorten or remove the long rows."

    @staticmethod
    def example_setup(directory) -> None:
        """The documented examples' long rows (prompts of about 400 tokens)."""
        import json

        rows = [{"instruction": f"{'word ' * 320}{n}", "output": "ok"} for n in range(3)]
        (directory / "data" / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def check(self, ctx: Context) -> None:
        from ft_recipes.backends.datacheck import lengths, tokenizer_for

        recipe = ctx.recipe
        if recipe.data.packing and recipe.stage == "pt":
            return  # pretraining text is cut into blocks by design
        tokenizer = None
        for ds, scanned in local_datasets(recipe):
            if not scanned.rows:
                continue
            if tokenizer is None:
                tokenizer = tokenizer_for(recipe.model.base) or False
            counted = lengths(ds, scanned, recipe.data.max_length, tokenizer or None)
            how = "counted with the model's tokenizer" if counted.exact else \
                "estimated at 4 characters a token: the model's tokenizer is not on this machine"
            path, limit = ds.key_path + ("path",), recipe.data.max_length
            if counted.rows and counted.over.count / counted.rows > ctx["max_share"]:
                ctx.report(path, "over", path=ds.path.name, count=counted.over.count, rows=counted.rows,
                           share=counted.share(counted.over), length=limit, longest=counted.longest, how=how)
            if counted.no_answer.count:
                ctx.report(path, "no_answer", path=ds.path.name, count=counted.no_answer.count, length=limit,
                           where=scanned.where(counted.no_answer.first[0]), how=how)


@rule
class EndOfTurnNotTrained(Rule):
    code = "FTR212"
    name = "end-of-turn-not-trained"
    messages = ('no_end', 'masked')
    options = ('max_turns',)
    severity = "warning"
    summary = "A backend's own preprocessing leaves the end-of-turn token of assistant turns out of the labels."
    what = ("`ftr data` runs the first rows of the recipe's training data through each backend's own preprocessing "
            "(the `ftr tokens` machinery, in the backend's environment, with the model's local tokenizer) and checks "
            "that every trained span, an assistant turn, ends with an end-of-turn token: the tokenizer's EOS or the "
            "template's end of turn (`<|im_end|>`, `<|eot_id|>`), perhaps followed by whitespace. A backend whose "
            "labels leave it out of more than `max_turns` turns is reported, with the rows. `ftr lint` reports the "
            "verdict of the last `ftr data` on the same recipe and data files (kept in `~/.cache/ft-recipes/ends`) "
            "and starts no backend itself; a span cut at `data.max_length` is not judged (FTR211). Before any run, "
            "lint reports an SFT recipe whose template writes nothing after the answer (no EOS, no end-of-turn "
            "token, and no EOS added at the next turn as LLaMA-Factory's `efficient_eos` templates do): no backend "
            "can train an end of turn there.")
    why = ("A model whose end-of-turn token is never trained does not learn to stop: it runs on into the next turn "
           "until `max_new_tokens` (Axolotl #3756 on Gemma).")
    bad = "model: {template: empty}   # writes nothing after the answer: no backend trains an end of turn\n"
    good = "model: {template: qwen}\ndata:\n  train: [{path: data/train.jsonl, format: alpaca}]\n"
    fix = ("Use a template whose end of turn the backend trains, or the backend's setting that trains it (Axolotl: "
           "`train_on_eos: turn`); `ftr tokens -b BACKEND` shows the trained tokens.")

    def check(self, ctx: Context) -> None:
        from ft_recipes.backends import NAMES
        from ft_recipes.insight.tokens import cached_ends

        recipe = ctx.recipe
        names = (ctx.dialect,) if ctx.is_native and ctx.dialect in NAMES else NAMES
        verdicts = {backend: cached_ends(backend, recipe) for backend in names}
        if not any(verdicts.values()):  # no `ftr data` run yet: what the template alone tells
            if recipe.stage == "sft" and recipe.data.train and _no_end(recipe.model.template):
                ctx.report(("model", "template"), "no_end", template=recipe.model.template)
            return
        for backend, verdict in verdicts.items():
            if verdict is None or verdict.missed <= ctx["max_turns"]:
                continue
            first, detail = verdict.examples[0] if verdict.examples else ("?", "")
            ctx.report(("model", "template"), "masked", backend=backend, count=verdict.missed, turns=verdict.turns,
                       rows=verdict.rows, ends="/".join(verdict.ends), first=first, detail=detail,
                       examples=", ".join(str(row) for row, _ in verdict.examples))

def _no_end(name: str | None) -> bool:
    """Whether template ``name`` (one ftr knows) writes nothing but whitespace after an answer: no EOS, no end-of-turn
    token, and no EOS trained at the start of the next turn (LLaMA-Factory's efficient_eos)."""
    from ft_recipes.recipe.templates import after_reply, reference

    template = reference(name)
    if template is None or template.get("efficient_eos"):
        return False
    end, rest = after_reply(template)
    return end is None and not rest.strip()
