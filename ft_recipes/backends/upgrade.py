"""``ftr upgrade``: move a native LLaMA-Factory / Axolotl config to a newer backend version.

The rename table (schemas/backends/renames-<backend>.json, scripts/gen_renames.py) says what each version
renamed, moved or removed; a row applies when its version is at or below the target. The file is edited as a
round-trip YAML document (ruamel.yaml), so its comments, key order and formatting stay. Every rewrite is a
``Change`` naming the version and the source line behind it; a removed key with no successor is a ``Finding``
with the reason: dropped (and listed) when the target ignores it or its value asks for nothing, else kept for
the user to decide unless ``drop=True``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ft_recipes.core.findings import Finding, UsageError
from ft_recipes.core.paths import data_dir
from ft_recipes.core.roundtrip import (
    Change,
    Result,
    drop_key,
    dump,
    keep_indent,
    line_of,
    load_or_problem,
    patched,
    rename_key,
    round_trip_yaml,
)

BACKENDS = ("llamafactory", "axolotl")
SHAREGPT_MAPPING = {"role": "from", "content": "value"}


def parse_target(value: str) -> tuple[str, str]:
    """``axolotl=0.21.0`` -> ("axolotl", "0.21.0"); a version ftr has no catalogue for is a usage error."""
    from ft_recipes.backends.catalogue import catalogue_versions

    backend, sep, version = value.partition("=")
    if not sep or backend not in BACKENDS:
        raise UsageError(f"--to {value!r}: write BACKEND=VERSION, BACKEND one of {', '.join(BACKENDS)}")
    if version not in catalogue_versions(backend):
        raise UsageError(f"--to {value!r}: ftr knows {backend} " + ", ".join(catalogue_versions(backend)))
    return backend, version


def version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


@lru_cache(maxsize=None)
def table(backend: str) -> tuple[dict, ...]:
    path = data_dir("schemas") / "backends" / f"renames-{backend}.json"
    return tuple(json.loads(path.read_text(encoding="utf-8"))["rows"])


def rows_for(backend: str, version: str, kind: str) -> list[dict]:
    """The table's rows of ``kind`` that the target ``version`` has (their version at or below it)."""
    return [r for r in table(backend) if r["kind"] == kind and version_key(r["since"]) <= version_key(version)]


# ---------------------------------------------------------------- mapping edits that keep comments and order


# ---------------------------------------------------------------- the upgrade


@dataclass
class Context:
    backend: str
    version: str
    file: str
    drop: bool
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    removed_lines: list[int] = field(default_factory=list)  # earlier duplicates taken out before loading

    def change(self, line: int, text: str, row: dict, keys: tuple[str, ...] = (), expect: dict | None = None) -> None:
        self.changes.append(Change(line, text, f"{self.backend} {row['since']}", _source(row), tuple(keys),
                                   tuple((expect or {}).items())))

    def finding(self, line: int, severity: str, message: str, hint: str, key: str) -> None:
        self.findings.append(Finding(self.file, line, 1, "FTR006", severity, message, hint, key))


def _source(row: dict) -> str:
    origin = "read from the sources" if row.get("origin") == "generated" else "by hand"
    return f"{row['source']}, {origin}"


def upgrade_text(text: str, backend: str, version: str, file: str = "<string>", drop: bool = False) -> Result:
    """The upgraded text of a native config and what was done to it."""
    yaml = round_trip_yaml()
    ctx = Context(backend, version, file, drop)
    base = _earlier_duplicates_removed(text, ctx) if backend == "axolotl" else text
    data = _load(yaml, base, ctx)
    if not hasattr(data, "items"):
        if not ctx.findings:
            ctx.finding(1, "error", "not a YAML mapping; nothing upgraded", "", "")
        return Result(file, text, text, [], ctx.findings)
    for step in STEPS[backend]:
        step(data, ctx)
    keep_indent(yaml, base)
    new_text = patched(base, dump(yaml, yaml.load(base)), dump(yaml, data)) if ctx.changes else base
    if base != text:  # line numbers of the original file
        ctx.changes = [_renumbered(c, ctx.removed_lines) for c in ctx.changes]
        ctx.findings = [_renumbered(f, ctx.removed_lines) for f in ctx.findings]
    return Result(file, text, new_text, ctx.changes, sorted(ctx.findings))


def _renumbered(item, removed: list[int]):
    from dataclasses import replace

    line = item.line
    if line in removed:
        return item
    for gone in sorted(removed):
        if gone <= line:
            line += 1
    return replace(item, line=line)


TOP_KEY = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]+(.*))?$")
DUPLICATE_ROW = {"since": "0.4.0", "origin": "hand",
                 "source": "Axolotl loads the file with PyYAML (yaml.safe_load), which keeps a duplicate key's "
                           "last value"}


def _earlier_duplicates_removed(text: str, ctx: Context) -> str:
    """``text`` without the earlier lines of a top-level key written more than once, when each of them is a
    one-line ``key: scalar`` (the backend reads the last; a round trip would keep the first). Other duplicates are
    left for _load to report."""
    lines = text.splitlines(True)
    seen: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        match = TOP_KEY.match(line.rstrip("\r\n"))
        if match:
            seen.setdefault(match.group(1), []).append(i)
    drop = []
    for key, where in seen.items():
        if len(where) > 1 and all(_oneline_of(lines, i) for i in where[:-1]):
            drop += where[:-1]
    ctx.removed_lines = [i + 1 for i in sorted(drop)]
    for i in sorted(drop):
        key = TOP_KEY.match(lines[i].rstrip("\r\n")).group(1)
        ctx.change(i + 1, f"{key}: earlier duplicate removed (line {seen[key][-1] + 1} is the one the backend reads)",
                   DUPLICATE_ROW, (key,))
    return "".join(line for i, line in enumerate(lines) if i not in set(drop))


def _oneline_of(lines: list[str], i: int) -> bool:
    value = (TOP_KEY.match(lines[i].rstrip("\r\n")).group(2) or "").strip()
    if value[:1] in ("|", ">", "[", "{", "&", "*", "!", "'", '"') and not _closed(value):
        return False
    for line in lines[i + 1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            return not line[0].isspace() and not line.startswith("-")
    return True


def _closed(value: str) -> bool:
    """A flow or quoted scalar that ends on its own line."""
    body = value.split(" #")[0].strip()
    pairs = {"[": "]", "{": "}", "'": "'", '"': '"'}
    return value[:1] in pairs and len(body) > 1 and body.endswith(pairs[value[0]])


def _load(yaml, text: str, ctx: Context):
    """The round-trip document, or None with a finding (a duplicate key: the backends read the last one, a
    round trip would keep the first, so the file is left alone)."""
    data, problem = load_or_problem(yaml, text)
    if problem:
        line, message, duplicate = problem
        ctx.finding(line, "error", f"{message}: the backend reads the last one; nothing upgraded" if duplicate else
                    f"not valid YAML: {message}; nothing upgraded",
                    "remove the earlier one, then run ftr upgrade again" if duplicate else "", "")
    return data


def upgrade_file(path: Path, backend: str, version: str, drop: bool = False) -> Result:
    return upgrade_text(path.read_text(encoding="utf-8"), backend, version, str(path), drop)


def _still_read(backend: str, version: str, section: str | None, key: str) -> bool:
    """Whether the target's catalogue has ``key`` as a live (not deprecated, not removed) key."""
    from ft_recipes.backends.catalogue import load

    catalogue = load(backend, version)
    keys = catalogue.get("section_keys", {}).get(section, {}) if section else catalogue.get("keys", {})
    spec = keys.get(key)
    return spec is not None and not spec.get("removed") and not spec.get("deprecated")


def rename_keys(data, ctx: Context) -> None:
    """Plain renames (``key``) and moves into a section (``move``)."""
    for row in rows_for(ctx.backend, ctx.version, "key"):
        old, new = row["old"], row["new"]
        if old not in data:
            continue
        line = line_of(data, old)
        if new in data:
            ctx.finding(line, "error", f"{old!r} was renamed {new!r} in {ctx.backend} {row['since']}, and both "
                        f"are set", f"keep one ({_source(row)})", old)
            continue
        rename_key(data, old, new)
        ctx.change(line, f"{old} -> {new}", row, (old, new), {new: _value(data[new])})
    for row in rows_for(ctx.backend, ctx.version, "move"):
        if row["old"] in data and hasattr(data.get(row["section"]), "items"):
            line = line_of(data, row["old"])
            data[row["section"]][row["new"]] = data[row["old"]]
            drop_key(data, row["old"])
            ctx.change(line, f"{row['old']} -> {row['section']}.{row['new']}", row, (row["old"], row["section"]))


def attention_flags(data, ctx: Context) -> None:
    """Boolean attention flags -> one ``attn_implementation`` (the first set flag in the table's priority)."""
    rows = rows_for(ctx.backend, ctx.version, "attn_flag")
    present = [r for r in rows if r["old"] in data]
    if not present:
        return
    chosen = next((r for r in present if data[r["old"]]), None)
    if chosen and "attn_implementation" not in data:
        line = line_of(data, chosen["old"])
        rename_key(data, chosen["old"], "attn_implementation", chosen["value"], keep_value=False)
        ctx.change(line, f"{chosen['old']}: true -> attn_implementation: {chosen['value']}", chosen,
                   (chosen["old"], "attn_implementation"), {"attn_implementation": chosen["value"]})
    elif chosen and str(data["attn_implementation"]) == chosen["value"]:
        line = line_of(data, chosen["old"])
        drop_key(data, chosen["old"])
        ctx.change(line, f"{chosen['old']}: true removed (attn_implementation: {chosen['value']} already says it)",
                   chosen, (chosen["old"],), {"attn_implementation": chosen["value"]})
    elif chosen:
        ctx.finding(line_of(data, chosen["old"]), "error", f"{chosen['old']!r} and attn_implementation are both "
                    f"set; {ctx.backend} {chosen['since']} refuses that", "keep attn_implementation", chosen["old"])
    for row in present:
        if row["old"] in data and not data[row["old"]]:
            line = line_of(data, row["old"])
            value = data[row["old"]]
            drop_key(data, row["old"])
            ctx.change(line, f"{row['old']}: {_plain(value)} removed (off; attention is attn_implementation)", row,
                       (row["old"],))


def _value(node):
    """A round-trip YAML value as plain Python (ruamel's scalar and container subclasses unwrapped)."""
    if hasattr(node, "items"):
        return {str(k): _value(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_value(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _plain(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def sharegpt_datasets(data, ctx: Context) -> None:
    """``type: sharegpt`` -> ``type: chat_template`` with the ShareGPT field names written out."""
    rows = rows_for(ctx.backend, ctx.version, "dataset_type")
    if not rows:
        return
    row = rows[0]
    for list_key in ("datasets", "test_datasets"):
        for entry in data.get(list_key) or []:
            if hasattr(entry, "items") and isinstance(entry.get("type"), str) and \
                    entry["type"].split(".")[0].split(":")[0] == "sharegpt":
                _sharegpt_entry(entry, ctx, row)


def _sharegpt_entry(entry, ctx: Context, row: dict) -> None:
    line = line_of(entry, "type")
    if entry["type"] not in ("sharegpt", "sharegpt:chat"):
        ctx.finding(line, "error", f"type: {entry['type']} (a ShareGPT variant) has no chat_template equivalent "
                    f"ftr can write", f"rewrite it as type: chat_template by hand ({_source(row)})", "type")
        return
    old = entry["type"]
    entry["type"] = "chat_template"
    entry.setdefault("field_messages", "conversations")
    mapping = {"role": entry.get("field_role", "from"), "content": entry.get("field_content", "value")}
    entry.setdefault("message_property_mappings", mapping)
    for stale in ("field_role", "field_content"):
        if stale in entry:
            drop_key(entry, stale)
    ctx.change(line, f"datasets type: {old} -> chat_template (field_messages, message_property_mappings)", row,
               ("datasets", "test_datasets"))
    if "conversation" in entry:
        ctx.finding(line_of(entry, "conversation"), "warning", f"conversation: {entry['conversation']} (a FastChat "
                    f"template) has no chat_template spelling ftr can pick", "set chat_template", "conversation")


def fsdp2(data, ctx: Context) -> None:
    """FSDP1 -> FSDP2: no top-level ``fsdp`` list, ``fsdp_version: 2``, ``sharding_strategy`` ->
    ``reshard_after_forward``; only for a target that removed FSDP1."""
    versions = rows_for(ctx.backend, ctx.version, "fsdp2_version")
    if not versions:
        return
    row = versions[0]
    _fsdp_list(data, ctx, row)
    config = data.get("fsdp_config")
    if not hasattr(config, "items") or not config:
        return
    for where in (config, data):
        old = where.get("fsdp_version")
        if old is not None and str(old) != "2":
            line = line_of(where, "fsdp_version")
            where["fsdp_version"] = 2
            ctx.change(line, f"fsdp_version: {old} -> 2 (FSDP1 removed)", row, ("fsdp_version", "fsdp_config"))
    if "fsdp_version" not in data and "fsdp_version" not in config:
        data.insert(list(data).index("fsdp_config"), "fsdp_version", 2)
        ctx.change(line_of(data, "fsdp_config"), "fsdp_version: 2 added (FSDP1 removed)", row,
                   ("fsdp_version", "fsdp_config"))
    for strategy in rows_for(ctx.backend, ctx.version, "fsdp2"):
        _sharding(config, ctx, strategy)


def _fsdp_list(data, ctx: Context, row: dict) -> None:
    if "fsdp" not in data:
        return
    line = line_of(data, "fsdp")
    options = data["fsdp"] if isinstance(data["fsdp"], list) else [data["fsdp"]] if data["fsdp"] else []
    if options and not hasattr(data.get("fsdp_config"), "items"):
        data.insert(list(data).index("fsdp") + 1, "fsdp_config", _new_map())
    config = data.get("fsdp_config")
    for option in [str(o).lower() for o in options]:
        if option in ("full_shard", "hybrid_shard"):
            config.setdefault("reshard_after_forward", True)
        elif option == "shard_grad_op":
            config.setdefault("reshard_after_forward", False)
        elif option == "offload":
            config.setdefault("offload_params", True)
        elif option == "auto_wrap":
            if "auto_wrap_policy" not in config and "fsdp_auto_wrap_policy" not in config:
                config["auto_wrap_policy"] = "TRANSFORMER_BASED_WRAP"
        else:
            ctx.finding(line, "error", f"fsdp: {option} has no FSDP2 equivalent", "see Axolotl's FSDP2 migration "
                        "guide (docs/multi-gpu.qmd)", "fsdp")
    drop_key(data, "fsdp")
    what = f"fsdp: {list(options)} -> fsdp_config" if options else "empty fsdp: removed"
    ctx.change(line, what, row, ("fsdp", "fsdp_config"))


def _new_map():
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def _sharding(config, ctx: Context, row: dict) -> None:
    for key in ("sharding_strategy", "fsdp_sharding_strategy"):
        if key not in config:
            continue
        line = line_of(config, key)
        value = str(config[key]).upper()
        if value not in row["values"]:
            ctx.finding(line, "error", f"fsdp_config.{key}: {config[key]} has no FSDP2 equivalent "
                        f"(NO_SHARD is plain data parallel)", "remove fsdp_config, or pick FULL_SHARD", key)
            continue
        rename_key(config, key, row["new"], row["values"][value], keep_value=False)
        ctx.change(line, f"fsdp_config.{key}: {value} -> {row['new']}: {_plain(row['values'][value])}", row,
                   ("fsdp_config",))


def unprefix(data, ctx: Context) -> None:
    """``fsdp_config.fsdp_<name>`` -> ``<name>`` (the spelling Axolotl rewrites before validating)."""
    for row in rows_for(ctx.backend, ctx.version, "prefix"):
        section = data.get(row["section"])
        if not hasattr(section, "items"):
            continue
        for key in [k for k in section if str(k).startswith(row["old"]) and k != "fsdp_version"]:
            new = key[len(row["old"]):]
            line = line_of(section, key)
            if new in section:
                ctx.finding(line, "error", f"{row['section']}.{key} and {new} are both set", "keep one", key)
                continue
            rename_key(section, key, new)
            ctx.change(line, f"{row['section']}.{key} -> {new}", row, (row["section"],))


def removed_keys(data, ctx: Context) -> None:
    """Keys the target has no successor for: dropped when that changes nothing, else a finding."""
    for row in rows_for(ctx.backend, ctx.version, "removed"):
        section = data.get(row["section"]) if row.get("section") else data
        if not hasattr(section, "items") or row["old"] not in section:
            continue
        if _still_read(ctx.backend, ctx.version, row.get("section"), row["old"]):
            continue  # the target still reads it (another class keeps a field of that name)
        _removed(section, ctx, row)


def _removed(section, ctx: Context, row: dict) -> None:
    key = row["old"]
    value = section[key]
    line = line_of(section, key)
    name = f"{row['section']}.{key}" if row.get("section") else key
    idle = row.get("refused") is None or value is None or value == row.get("default") or \
        (row.get("refused") == "truthy" and not value) or _fsdp1_default(row, key, value)
    reason = f"{row['reason']} ({_source(row)})"
    if idle or ctx.drop:
        drop_key(section, key)
        ctx.change(line, f"{name}: {_plain(value)} removed, no successor in {ctx.backend} {row['since']}", row,
                   (row.get("section") or key,))
        severity = "info" if idle else "warning"
        what = "it asked for nothing the target does" if idle else "what it asked for is gone"
        ctx.finding(line, severity, f"{name!r} removed ({what})", reason, name)
    else:
        ctx.finding(line, "error", f"{name}: {_plain(value)} is refused by {ctx.backend} {ctx.version} and has no "
                    f"successor: kept for you to decide (--drop removes it)", reason, name)


def unread_keys(data, ctx: Context) -> None:
    """Top-level keys no version of the backend reads (the table's "unread" rows): removed and listed, with a
    warning naming the key that asks for it. Every version's validator drops them silently, so nothing that
    trained changes; the warning is for the user who believed the value took effect."""
    for row in rows_for(ctx.backend, ctx.version, "unread"):
        key = row["old"]
        if key not in data or _still_read(ctx.backend, ctx.version, None, key):
            continue
        line, value = line_of(data, key), data[key]
        drop_key(data, key)
        ctx.change(line, f"{key}: {_plain(value)} removed (no {ctx.backend} version reads it)", row, (key,))
        ask = f"; {row['new']} is the key that does ({row['note']})" if row.get("new") else f" ({row['note']})"
        ctx.finding(line, "warning", f"{key!r} removed: no {ctx.backend} version reads it, so it never took effect",
                    f"{_source(row)}{ask}", key)


def _fsdp1_default(row: dict, key: str, value) -> bool:
    """An FSDP1 ``fsdp_config`` key holding the FSDP1 plugin's default, which FSDP2 does without it
    (``forward_prefetch: false``: FSDP2 prefetches nothing forward unless asked)."""
    return row.get("section") == "fsdp_config" and key in FSDP1_DEFAULTS and \
        str(value).upper() == str(FSDP1_DEFAULTS[key]).upper()


def templates(data, ctx: Context) -> None:
    """A template the target no longer registers (LLaMA-Factory): its successor, else a finding."""
    for row in rows_for(ctx.backend, ctx.version, "template"):
        if data.get(row["key"]) != row["old"]:
            continue
        line = line_of(data, row["key"])
        if row.get("new"):
            data[row["key"]] = row["new"]
            ctx.change(line, f"{row['key']}: {row['old']} -> {row['new']}", row, (row["key"],))
        else:
            ctx.finding(line, "error", f"template: {row['old']} is not in {ctx.backend} {ctx.version}",
                        f"{row['reason']}; choose another template ({_source(row)})", row["key"])


# What Axolotl's FSDP1 path gets for an fsdp_config key its schema no longer has (0.19: the validator drops it and
# setup_fsdp_envs sets no variable for it): accelerate's FullyShardedDataParallelPlugin defaults.
FSDP1_DEFAULTS = {"limit_all_gathers": True, "sharding_strategy": "FULL_SHARD", "forward_prefetch": False,
                  "backward_prefetch": "NO_PREFETCH"}
FSDP1_ROW = {"since": "0.19.0", "origin": "hand",
             "source": "0.19.0 axolotl/utils/schemas/fsdp.py (FSDPConfig has no such field), axolotl/utils/trainer.py "
                       "setup_fsdp_envs; accelerate FullyShardedDataParallelPlugin defaults"}


def fsdp1_unread(data, ctx: Context) -> None:
    """FSDP1 keys a target that still runs FSDP1 no longer reads (its validator drops them): removed and listed
    when they hold what the FSDP1 plugin does without them, else a finding (the target would drop the value)."""
    from ft_recipes.backends.catalogue import load

    config = data.get("fsdp_config")
    if rows_for(ctx.backend, ctx.version, "fsdp2_version") or not hasattr(config, "items"):
        return
    known = load(ctx.backend, ctx.version).get("section_keys", {}).get("fsdp_config", {})
    for key in [k for k in config if k in FSDP1_DEFAULTS and k not in known]:
        line, value = line_of(config, key), config[key]
        if str(value).upper() == str(FSDP1_DEFAULTS[key]).upper():
            drop_key(config, key)
            ctx.change(line, f"fsdp_config.{key}: {_plain(value)} removed ({ctx.backend} {ctx.version} no longer "
                       f"reads it; its FSDP1 default is the same)", FSDP1_ROW, ("fsdp_config",))
        else:
            ctx.finding(line, "error", f"fsdp_config.{key}: {_plain(value)} is dropped silently by {ctx.backend} "
                        f"{ctx.version} (FSDP1 there uses {_plain(FSDP1_DEFAULTS[key])})",
                        "move to FSDP2 (fsdp_version: 2; ftr upgrade --to axolotl=0.21.0 does it)",
                        f"fsdp_config.{key}")


QLORA_SHARDED_ROW = {"since": "0.21.0", "origin": "hand",
                     "source": "0.21.0 axolotl/utils/schemas/validation.py:1572 "
                               "(check_fsdp2_cpu_ram_efficient_loading_w_4bit)"}


def qlora_sharded_loading(data, ctx: Context) -> None:
    """Axolotl 0.21 turns an unset ``qlora_sharded_model_loading`` on for FSDP + QLoRA (4-bit) with
    ``cpu_ram_efficient_loading``, and refuses it off there (rank-0-only quantization deadlocks FSDP2's state dict
    scatter); earlier versions read unset as off. The value changes with the version and cannot be kept, so it is
    written out and reported."""
    if not rows_for(ctx.backend, ctx.version, "fsdp2_version") or "qlora_sharded_model_loading" in data:
        return
    config = data.get("fsdp_config")
    if not (hasattr(config, "items") and str(data.get("adapter")) == "qlora" and data.get("load_in_4bit")
            and config.get("cpu_ram_efficient_loading")):
        return
    line = line_of(data, "adapter")
    data.insert(list(data).index("adapter") + 1, "qlora_sharded_model_loading", True)
    ctx.change(line, "qlora_sharded_model_loading: true added (FSDP2 + QLoRA with cpu_ram_efficient_loading)",
               QLORA_SHARDED_ROW, ("qlora_sharded_model_loading",), {"qlora_sharded_model_loading": True})
    ctx.finding(line, "warning", f"QLoRA weights now load sharded: {ctx.backend} {ctx.version} turns "
                "qlora_sharded_model_loading on for FSDP + 4-bit + cpu_ram_efficient_loading (unset was off before)",
                f"{ctx.backend} {ctx.version} refuses it off with cpu_ram_efficient_loading under FSDP2; to keep "
                f"unsharded loading, set cpu_ram_efficient_loading: false ({_source(QLORA_SHARDED_ROW)})",
                "qlora_sharded_model_loading")


# Axolotl's DPO chat_template reader (prompt_strategies/dpo/chat_template.py, 0.8-0.21) reads these dataset keys
# with these defaults, but the DPODataset schema of 0.19 and 0.21 has no field for them: the validator drops them.
DPO_READER_DEFAULTS = {"message_property_mappings": {"role": "role", "content": "content"},
                       "roles": {"user": ["user"], "assistant": ["assistant"], "system": ["system"], "tool": ["tool"]}}
DPO_ROW = {"since": "0.19.0", "origin": "hand",
           "source": "0.19.0 axolotl/utils/schemas/datasets.py DPODataset (no such field), "
                     "axolotl/prompt_strategies/dpo/chat_template.py:19 (the reader's default)"}


def dpo_dataset_defaults(data, ctx: Context) -> None:
    """DPO chat_template dataset keys the target's schema drops: removed when they say what the reader does
    without them (``roles`` naming each role as itself), else a finding."""
    from ft_recipes.backends.catalogue import load

    if not data.get("rl") or str(data.get("rl")).lower() in ("kto", "grpo", "gdpo", "ebft"):
        return
    known = load(ctx.backend, ctx.version).get("dataset_keys", {}).get("DPODataset")
    if not known:
        return
    for entry in data.get("datasets") or []:
        if not hasattr(entry, "items") or not str(entry.get("type") or "").startswith("chat_template"):
            continue
        for key in [k for k in DPO_READER_DEFAULTS if k in entry and k not in known]:
            line, value = line_of(entry, key), _value(entry[key])
            default = DPO_READER_DEFAULTS[key]
            if value == default or (key == "roles" and isinstance(value, dict) and all(
                    default.get(role) == names for role, names in value.items())):
                drop_key(entry, key)
                ctx.change(line, f"datasets {key} removed ({ctx.backend} {ctx.version}'s DPO dataset schema drops "
                           "it; it says what the reader does without it)", DPO_ROW, ("datasets",))
            else:
                ctx.finding(line, "error", f"datasets {key} is dropped silently by {ctx.backend} {ctx.version}'s DPO "
                            "dataset schema, though its chat_template reader would use it", "rename the dataset's "
                            "fields to the reader's defaults (role, content)", f"datasets.{key}")


TOKENS_ROW = {"since": "0.1.0", "origin": "hand",
              "source": "axolotl-ai-cloud/axolotl bdbca8fa6 (utils/models.py: special tokens are cfg.special_tokens, "
                        "cfg.tokens is a list of tokens to add)"}


def special_tokens(data, ctx: Context) -> None:
    """``tokens:`` as a mapping of special tokens (before Axolotl 0.1) -> ``special_tokens:``; a list is left."""
    if hasattr(data.get("tokens"), "items") and "special_tokens" not in data:
        line = line_of(data, "tokens")
        rename_key(data, "tokens", "special_tokens")
        ctx.change(line, "tokens: {...} -> special_tokens (a mapping of special tokens)", TOKENS_ROW,
                   ("tokens", "special_tokens"), {"special_tokens": _value(data["special_tokens"])})


NULL_ROW = {"since": "0.5.0", "origin": "hand",
            "source": "axolotl/utils/dict.py DictDefault reads an absent key as None; the pydantic schema "
                      "(#1239) drops unknown keys"}


def unread_nulls(data, ctx: Context) -> None:
    """A top-level ``key:`` left empty (null) that the target's schema does not have: removed and listed. Axolotl
    reads an absent key as None (DictDefault), so null asks for nothing in any version; its validator lists the
    key as unknown (``debug:``, ``eval_table_size:`` of the old example configs)."""
    from ft_recipes.backends.catalogue import load

    keys = load(ctx.backend, ctx.version).get("keys", {})
    for key in [k for k in data if data[k] is None and isinstance(k, str) and k not in keys]:
        line = line_of(data, key)
        drop_key(data, key)
        ctx.change(line, f"{key}: null removed ({ctx.backend} {ctx.version} has no such key; null is absent)",
                   NULL_ROW, (key,))


STEPS = {
    "axolotl": (rename_keys, attention_flags, sharegpt_datasets, unprefix, fsdp2, fsdp1_unread, qlora_sharded_loading,
                removed_keys, dpo_dataset_defaults, special_tokens, unread_nulls, unread_keys),
    "llamafactory": (rename_keys, removed_keys, templates),
}
