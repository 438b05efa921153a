"""How LLaMA-Factory 0.9.5 reads a conversation row (data/converter.py, ``SharegptDatasetConverter``): the role
tags of dataset_info.json (defaults from data/parser.py: from/value, human/gpt), a first system turn, then user
(or observation) and assistant (or function) turns alternating, an even number of them. Any other row is logged
as "Invalid role tag" / "Invalid message count" and skipped; a dataset with no row left fails with "Cannot find
valid samples". Used by ftr's data checks (``ft_recipes.backends.datacheck``) and by the emitter's dataset_info tags."""

from __future__ import annotations

from collections import Counter

from ft_recipes.backends.llamafactory.keys import USUAL_TAGS
from ft_recipes.recipe.model import Dataset

TITLE = "LLaMA-Factory"
TAG_OF = {"role": "role_tag", "content": "content_tag", "user": "user_tag", "assistant": "assistant_tag"}
# The spellings of a user / assistant turn other readers (Axolotl's chat_template roles, trl) accept.
SPELLINGS = {"user": ("human", "user"), "assistant": ("gpt", "assistant")}


def declared_tags(ds: Dataset) -> dict:
    """The tags LLaMA-Factory reads for ``ds``: its defaults for the format, the dataset's mapped names over them
    (an imported dataset_info entry's non-default tags are mapped columns)."""
    tags = dict(USUAL_TAGS["messages" if ds.format == "messages" else "sharegpt"])
    for std, tag in TAG_OF.items():
        if std in dict(ds.columns):
            tags[tag] = ds.column(std)
    return tags


def drop_reason(turns: list, tags: dict) -> str | None:
    """Why LLaMA-Factory skips this conversation ("role": a turn whose tag is not the one expected at its place,
    "count": an odd number of turns), or None when it reads it."""
    role = tags["role_tag"]
    if turns and isinstance(turns[0], dict) and turns[0].get(role) == tags.get("system_tag"):
        turns = turns[1:]
    odd = (tags["user_tag"], tags.get("observation_tag"))
    even = (tags["assistant_tag"], tags.get("function_tag"))
    for number, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get(role) not in (odd, even)[number % 2]:
            return "role"
    return "count" if len(turns) % 2 else None


def standard_tags(tags: dict) -> dict:
    """``tags`` with the user and assistant tags every spelling of them is read as (for telling a row dropped for
    its spelling from one dropped for its turn order)."""
    return {**tags, "user_tag": "user", "assistant_tag": "assistant"}


def standard_turns(turns: list, tags: dict) -> list:
    """The turns with every known user / assistant spelling written as ``user`` / ``assistant``."""
    role = tags["role_tag"]
    names = {name: std for std, names in SPELLINGS.items() for name in names}
    names.update({tags["user_tag"]: "user", tags["assistant_tag"]: "assistant"})
    return [{**turn, role: names.get(turn.get(role), turn.get(role))} if isinstance(turn, dict) else turn
            for turn in turns]


def spellings(turns: list, tags: dict) -> tuple[frozenset, frozenset]:
    """The names this row gives its user turns and its assistant turns (known spellings only)."""
    role = tags["role_tag"]
    found = {"user": set(), "assistant": set()}
    for turn in turns:
        value = turn.get(role) if isinstance(turn, dict) else None
        for std, names in SPELLINGS.items():
            if value in names or value == tags[f"{std}_tag"]:
                found[std].add(value)
    return frozenset(found["user"]), frozenset(found["assistant"])


def file_tags(ds: Dataset, counts: Counter) -> dict:
    """The user/assistant tags to write for ``ds`` so that LLaMA-Factory reads the rows as written: the spelling
    most rows use, for each role the dataset does not map itself. ``counts``: rows by (user, assistant)
    spellings (``spellings``)."""
    tags: dict = {}
    for index, std in enumerate(("user", "assistant")):
        if std in dict(ds.columns):
            continue
        used: Counter = Counter()
        for key, rows in counts.items():
            for name in key[index]:
                used[name] += rows
        if used:
            tags[f"{std}_tag"] = used.most_common(1)[0][0]
    return tags


def rows_dropped(counts: Counter, tags: dict) -> int:
    """Rows whose user or assistant turns use a spelling other than ``tags``'s (LLaMA-Factory reads one)."""
    return sum(rows for (users, assistants), rows in counts.items()
               if users - {tags["user_tag"]} or assistants - {tags["assistant_tag"]})


def skipped(ds: Dataset, scanned, drops: dict, native: bool) -> dict:
    """Reason -> rows LLaMA-Factory skips of ``ds`` (``drops``: the scan's issues for it). A native config runs
    with the tags it declares (the scan's ``tags`` drops); a recipe with the tags ftr writes for the file
    (``file_tags``): only rows with another spelling of a role are skipped for their tags. A row skipped both for
    its spelling and its turn order is counted under each."""
    out = {reason: issue.count for reason, issue in drops.items()}
    if not native:
        out.pop("tags", None)
        mixed = rows_dropped(scanned.spellings, {**declared_tags(ds), **file_tags(ds, scanned.spellings)})
        if mixed:
            out["tags"] = mixed
    return out


def file_tags_of(ds: Dataset) -> dict:
    """``file_tags`` of a local .jsonl/.json dataset's rows (read once by ``ft_recipes.backends.datacheck``);
    nothing for other datasets or a file that cannot be read (FTR004/FTR204 report it)."""
    from ft_recipes.backends.datacheck import scan

    if ds.path is None or not ds.path.is_file() or ds.path.suffix not in (".jsonl", ".json"):
        return {}
    try:
        return file_tags(ds, scan(ds).spellings)
    except OSError:
        return {}


def columns_of(entry: dict) -> tuple[str, dict]:
    """(recipe format, standard -> file column) for one dataset_info.json entry (LF's DatasetAttr.join)."""
    cols = {k: v for k, v in (entry.get("columns") or {}).items() if v is not None}  # null: LF has no such column
    tags = {k: v for k, v in (entry.get("tags") or {}).items() if v is not None}
    formatting = entry.get("formatting", "alpaca")
    chat = formatting in ("sharegpt", "openai")
    if "tags" not in entry:  # LLaMA-Factory's DatasetAttr defaults, for every formatting (openai too): from/value/...
        tags = dict(USUAL_TAGS["sharegpt"])
    role_tag, content_tag = tags.get("role_tag", "from"), tags.get("content_tag", "value")
    messages = cols.get("messages", "conversations")
    if entry.get("ranking") and chat:
        fmt = "preference"  # the prompt is the conversation; chosen/rejected are message objects
        mapping = {"prompt": messages, "chosen": cols.get("chosen", "chosen"),
                   "rejected": cols.get("rejected", "rejected")}
    elif entry.get("ranking"):
        fmt = "preference"
        mapping = {"instruction": cols.get("prompt", "instruction"), "input": cols.get("query", "input"),
                   "chosen": cols.get("chosen", "chosen"), "rejected": cols.get("rejected", "rejected")}
    elif chat:
        fmt = "messages" if (role_tag, content_tag) == ("role", "content") else "sharegpt"
        default = "messages" if fmt == "messages" else "conversations"
        mapping = {} if messages == default else {"messages": messages}
        if fmt == "sharegpt":
            mapping.update(role=role_tag, content=content_tag)
        for std in ("user", "assistant"):  # the file's own role names (OASST's "prompter", ...)
            usual = USUAL_TAGS[fmt][f"{std}_tag"]
            if tags.get(f"{std}_tag", usual) != usual:
                mapping[std] = tags[f"{std}_tag"]
    elif set(cols) == {"prompt"}:
        fmt, mapping = "text", {"text": cols["prompt"]}
    else:
        fmt = "alpaca"
        mapping = {"instruction": cols.get("prompt", "instruction"), "input": cols.get("query", "input"),
                   "output": cols.get("response", "output")}
    for key in OPTIONAL_COLUMNS:
        if key in cols:
            mapping[key] = cols[key]
    if fmt == "sharegpt":
        mapping = {k: v for k, v in mapping.items() if (k, v) not in (("role", "from"), ("content", "value"))}
    # a column LLaMA-Factory reads only when named (system, history, tools, kto_tag) stays, under its own name too
    return fmt, {k: v for k, v in mapping.items() if k != v or k in OPTIONAL_COLUMNS}


OPTIONAL_COLUMNS = ("system", "history", "tools", "kto_tag")
