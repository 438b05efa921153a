#!/usr/bin/env python
"""Generate the rename table `ftr upgrade` applies (schemas/backends/renames-<backend>.json) from the backends'
own sources, read as text (nothing is imported, so any version's sources will do):

    python scripts/gen_renames.py axolotl --source 0.12.0=/path/to/axolotl ... [-o FILE]
    python scripts/gen_renames.py llamafactory --source 0.9.1=/path/to/llamafactory ... [-o FILE]

Each --source is VERSION=the package folder (site-packages/axolotl of an environment, or an sdist/wheel
unpacked from `pip download --no-deps axolotl==X`). Versions are sorted; a row's "since" is the first given
version in which its evidence appears ("at or before": the table records which versions were read), its
"source" the file:line of that evidence in that version.

Generated (origin "generated"):
  axolotl       LEGACY_ATTN_FLAG_TO_IMPL (utils/schemas/enums.py): `flag: true` -> `attn_implementation`;
                DeprecatedParameters validators (utils/schemas/deprecated.py): a raise is a removed key
                ("any" value when the check is `is not None`, else a truthy one), "X is deprecated, use Y" a
                rename; "`X` is deprecated, use `Y`" messages in utils/schemas/validation.py; Field(deprecated=
                "Use `Y` instead") in utils/schemas/config.py; the unsloth list of check_deprecated_unsloth_fields;
                FSDP1_ONLY_REJECTED_KEYS / FSDP1_ONLY_IGNORED_KEYS (FSDP1 -> FSDP2); fields of an older
                version's schema classes that a newer version no longer has (removed, ignored there).
  llamafactory  dataclass fields of hparams/*.py that a newer version no longer has (LLaMA-Factory refuses
                them: "Some keys are not used"), with their old default; templates registered in
                data/template.py that a newer version no longer registers.
Hand rows (origin "hand", in HAND below) carry the file:line, in the version named, that shows the successor.
Output is stable: rows sorted, indent 1, trailing newline.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RENAME_MESSAGE = re.compile(r"`?(\w+)`? is deprecated,? use `?(\w+)`?")
USE_INSTEAD = re.compile(r"^Use `([\w.]+)(?:: (\w+))?` instead")

UNREAD_WHERE = "src: no reader in any commit (2023 to 2026-07) nor in 0.19.0 and 0.21.0"
# Successors the sources show only by the new field's appearance: (kind, old, new, since, file:line, note).
HAND = {
    "axolotl": [
        ("key", "relora_steps", "jagged_restart_steps", "0.12.0", "utils/schemas/training.py:188",
         "ReLoRA's restart cadence became the generic jagged restart; 0.12 ignores relora_steps silently"),
        ("key", "relora_warmup_steps", "jagged_restart_warmup_steps", "0.12.0", "utils/schemas/training.py:192", ""),
        ("key", "relora_anneal_steps", "jagged_restart_anneal_steps", "0.12.0", "utils/schemas/training.py:198", ""),
        ("key", "unsloth_lora_mlp", "lora_mlp_kernel", "0.17.0", "utils/schemas/validation.py:61",
            "the validator names lora_*_kernel as the replacement (Axolotl's own LoRA kernels)"),
        ("key", "unsloth_lora_qkv", "lora_qkv_kernel", "0.17.0", "utils/schemas/validation.py:61", ""),
        ("key", "unsloth_lora_o", "lora_o_kernel", "0.17.0", "utils/schemas/validation.py:61", ""),
        ("key", "eval_table_max_new_tokens", "eval_max_new_tokens", "0.5.0", "utils/callbacks/__init__.py:403",
         "renamed by axolotl-ai-cloud/axolotl#1274 (5a5d474), same meaning: tokens generated per eval prediction"),
        # Keys no version reads (kind "unread"; "new": the key that asks for it): `git log --all -G
        # 'cfg\.KEY\b|cfg\["KEY"\]|cfg\.get\("KEY"'` over src/ of the whole history (2023 to 2026-07) finds no
        # commit, nor does a grep of the 0.19.0 and 0.21.0 packages (push_to_hub, hub_private_repo and
        # max_seq_length appear there only as TrainingArguments keywords Axolotl sets itself). The validator drops
        # them silently in every version, so removing one changes nothing that trains. data_seed is not here:
        # 0.21's streaming datasets read it.
        *[("unread", key, new, "0.1.0", UNREAD_WHERE, note) for key, new, note in (
            ("adam_eps", "adam_epsilon", "the optimizer's epsilon is adam_epsilon"),
            ("epochs", "num_epochs", "the number of epochs is num_epochs"),
            ("max_seq_length", "sequence_len", "the sequence length is sequence_len"),
            ("push_to_hub", "hub_model_id", "Axolotl pushes when hub_model_id is set"),
            ("push_adapter_to_hub", "hub_model_id", "Axolotl pushes the adapter when hub_model_id is set"),
            ("hub_private_repo", None, "Axolotl makes the repository private itself"),
            ("test_value", None, "a placeholder of some example configs"))],
    ],
    "llamafactory": [
        ("key", "new_special_tokens", "add_special_tokens", "0.9.3", "hparams/model_args.py:74",
         "same comma-separated token list"),
        ("key", "use_cache", "use_kv_cache", "0.9.4", "hparams/model_args.py:172", "same meaning"),
        ("key", "image_dir", "media_dir", "0.9.2", "hparams/data_args.py:44", "same folder (images and videos)"),
        ("key", "image_resolution", "image_max_pixels", "0.9.2", "hparams/model_args.py:219",
         "both are a pixel count (0.9.1: 'Keeps the number of pixels of image below this resolution')"),
        ("key", "video_resolution", "video_max_pixels", "0.9.2", "hparams/model_args.py:227", "both a pixel count"),
    ],
}
FSDP_SHARDING = {"FULL_SHARD": True, "HYBRID_SHARD": True, "1": True, "3": True,
                 "SHARD_GRAD_OP": False, "_HYBRID_SHARD_ZERO2": False, "2": False, "4": False}


def _vkey(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None


def _where(pkg: Path, file: Path, line: int) -> str:
    return f"{pkg.name}/{file.relative_to(pkg).as_posix()}:{line}"


def _constant_dict(tree: ast.Module, name: str) -> tuple[object, int] | None:
    """The literal value assigned to module-level ``name`` and its line, or None."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            try:
                return ast.literal_eval(node.value), node.lineno
            except ValueError:
                return None
    return None


def class_fields(pkg: Path, folder: str) -> dict[str, tuple[str, object]]:
    """{field: (file:line, literal default or None)} over every class body of the .py files in ``folder``."""
    out: dict[str, tuple[str, object]] = {}
    for file in sorted((pkg / folder).glob("*.py")):
        tree = _parse(file)
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)] if tree else []:
            for node in cls.body:
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                        and not node.target.id.startswith("_"):
                    out.setdefault(node.target.id, (_where(pkg, file, node.lineno), _default(node.value)))
    return out


def _default(value: ast.expr | None) -> object:
    if isinstance(value, ast.Call):  # field(default=...) / Field(default=...)
        for kw in value.keywords:
            if kw.arg == "default":
                value = kw.value
                break
        else:
            value = value.args[0] if value.args else None
    try:
        return ast.literal_eval(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------- axolotl


def axolotl_evidence(pkg: Path) -> list[dict]:
    """The rows one Axolotl version's sources show."""
    rows = []
    schemas = pkg / "utils" / "schemas"
    enums = _parse(schemas / "enums.py")
    found = _constant_dict(enums, "LEGACY_ATTN_FLAG_TO_IMPL") if enums else None
    if found:
        for flag, impl in found[0].items():
            rows.append({"kind": "attn_flag", "old": flag, "new": "attn_implementation", "value": impl,
                         "source": _where(pkg, schemas / "enums.py", found[1])})
    rows += _deprecated_parameters(pkg, schemas / "deprecated.py")
    rows += _validation_rows(pkg, schemas / "validation.py")
    rows += _field_deprecations(pkg, schemas / "config.py")
    return rows


def _deprecated_parameters(pkg: Path, file: Path) -> list[dict]:
    tree = _parse(file)
    rows = []
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)] if tree else []:
        if not func.name.startswith("validate_"):
            continue
        name = func.name[len("validate_"):]
        text = " ".join(s.value for s in ast.walk(func) if isinstance(s, ast.Constant) and isinstance(s.value, str))
        raises = any(isinstance(n, ast.Raise) for n in ast.walk(func))
        renamed = RENAME_MESSAGE.search(text)
        where = _where(pkg, file, func.lineno)
        if raises:
            any_value = any(isinstance(n, ast.Compare) and isinstance(n.ops[0], ast.IsNot) for n in ast.walk(func))
            rows.append({"kind": "removed", "old": name, "refused": "any" if any_value else "truthy",
                         "reason": text.strip(), "source": where})
        elif renamed and renamed.group(1) == name:
            rows.append({"kind": "key", "old": name, "new": renamed.group(2), "source": where,
                         "note": text.strip()})
    return rows


def _validation_rows(pkg: Path, file: Path) -> list[dict]:
    tree = _parse(file)
    if tree is None:
        return []
    rows = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = RENAME_MESSAGE.search(node.value)
            if match and match.group(1) not in ("noisy_embedding_alpha",):
                rows.append({"kind": "key", "old": match.group(1), "new": match.group(2),
                             "source": _where(pkg, file, node.lineno), "note": node.value.strip()})
        if isinstance(node, ast.FunctionDef) and node.name == "check_deprecated_unsloth_fields":
            for sub in ast.walk(node):
                if isinstance(sub, ast.List) and all(isinstance(e, ast.Constant) for e in sub.elts):
                    for e in sub.elts:
                        rows.append({"kind": "removed", "old": e.value, "refused": "truthy",
                                     "reason": "Axolotl removed the unsloth kernels",
                                     "source": _where(pkg, file, e.lineno)})
    rejected = _constant_dict(tree, "FSDP1_ONLY_REJECTED_KEYS")
    if rejected:
        for old, new in rejected[0].items():
            where = _where(pkg, file, rejected[1])
            if new:
                rows.append({"kind": "fsdp2", "old": old, "new": new, "source": where,
                             "values": {k: v for k, v in FSDP_SHARDING.items()},
                             "note": "FSDP1 sharding strategy -> FSDP2 reshard_after_forward"})
            else:
                rows.append({"kind": "removed", "section": "fsdp_config", "old": old, "refused": "any",
                             "reason": "an FSDP1-only option with no FSDP2 equivalent", "source": where})
        rows.append({"kind": "fsdp2_version", "old": "fsdp_version", "new": "fsdp_version", "value": 2,
                     "source": where, "note": "FSDP1 removed: fsdp_version 2, unprefixed fsdp_config keys, "
                                              "no top-level `fsdp` list"})
    ignored = _constant_dict(tree, "FSDP1_ONLY_IGNORED_KEYS")
    for old in ignored[0] if ignored else ():
        rows.append({"kind": "removed", "section": "fsdp_config", "old": old, "refused": None,
                     "reason": "FSDP1-only; ignored under FSDP2", "source": _where(pkg, file, ignored[1])})
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "deprecate_sharegpt_datasets":
            rows.append({"kind": "dataset_type", "old": "sharegpt", "new": "chat_template",
                         "source": _where(pkg, file, node.lineno),
                         "note": "field_messages: conversations, message_property_mappings {role: from, "
                                 "content: value}"})
        if isinstance(node, ast.FunctionDef) and node.name == "check_fsdp_config_kwargs_prefix":
            rows.append({"kind": "prefix", "section": "fsdp_config", "old": "fsdp_", "new": "",
                         "source": _where(pkg, file, node.lineno), "note": "fsdp_config keys lose `fsdp_`"})
    return rows


def _field_deprecations(pkg: Path, file: Path) -> list[dict]:
    tree = _parse(file)
    rows = []
    for node in ast.walk(tree) if tree else []:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Call)
                and isinstance(node.target, ast.Name)):
            continue
        for kw in node.value.keywords:
            if kw.arg == "deprecated" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                match = USE_INSTEAD.search(kw.value.value)
                if match and not match.group(2) and "." not in match.group(1):
                    rows.append({"kind": "key", "old": node.target.id, "new": match.group(1),
                                 "source": _where(pkg, file, node.lineno), "note": kw.value.value})
                elif match and match.group(1).startswith("fsdp_config."):
                    rows.append({"kind": "move", "old": node.target.id, "section": "fsdp_config",
                                 "new": match.group(1).split(".", 1)[1],
                                 "source": _where(pkg, file, node.lineno), "note": kw.value.value})
    return rows


def axolotl_removed_fields(versions: list[tuple[str, Path]]) -> list[dict]:
    """Schema fields of a version that the next given version no longer has (it then ignores them)."""
    rows = []
    for (old_v, old_pkg), (new_v, new_pkg) in zip(versions, versions[1:]):
        before = class_fields(old_pkg, "utils/schemas")
        after = class_fields(new_pkg, "utils/schemas")
        for name in sorted(set(before) - set(after)):
            rows.append({"kind": "removed", "old": name, "refused": None, "since": new_v,
                         "reason": f"not a field of axolotl {new_v} (last in {old_v}: {before[name][0]}); "
                                   f"Axolotl ignores it", "source": f"{old_v} {before[name][0]}",
                                       "default": before[name][1]})
    return rows


# ---------------------------------------------------------------- llamafactory


def _templates(pkg: Path) -> dict[str, str]:
    file = pkg / "data" / "template.py"
    tree = _parse(file)
    out = {}
    for node in ast.walk(tree) if tree else []:
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "register_template":
            for kw in node.keywords:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                    out[kw.value.value] = _where(pkg, file, node.lineno)
    return out


def llamafactory_rows(versions: list[tuple[str, Path]]) -> list[dict]:
    rows = []
    for (old_v, old_pkg), (new_v, new_pkg) in zip(versions, versions[1:]):
        before = class_fields(old_pkg, "hparams")
        after = class_fields(new_pkg, "hparams")
        for name in sorted(set(before) - set(after)):
            rows.append({"kind": "removed", "old": name, "refused": "any", "since": new_v,
                         "reason": f"LLaMA-Factory {new_v} has no such argument (last in {old_v}: "
                                   f"{before[name][0]}) and refuses the file", "source": f"{old_v} {before[name][0]}",
                         "default": before[name][1]})
        old_t, new_t = _templates(old_pkg), _templates(new_pkg)
        for name in sorted(set(old_t) - set(new_t)):
            rows.append({"kind": "template", "key": "template", "old": name, "new": None, "since": new_v,
                         "reason": f"template {name!r} is not registered in LLaMA-Factory {new_v} "
                                   f"(last in {old_v}: {old_t[name]})", "source": f"{old_v} {old_t[name]}"})
    return rows


# ---------------------------------------------------------------- assembly


def first_seen(per_version: list[tuple[str, list[dict]]]) -> list[dict]:
    """Each row once, with "since": the first version whose sources show it, and that version's source."""
    seen: dict[tuple, dict] = {}
    for version, rows in per_version:
        for row in rows:
            ident = (row["kind"], row.get("section"), row["old"], row.get("new"), str(row.get("value")))
            if ident not in seen:
                seen[ident] = {**row, "since": version, "source": f"{version} {row['source']}"}
    return list(seen.values())


def hand_rows(backend: str, versions: dict[str, Path]) -> list[dict]:
    rows = []
    for kind, old, new, since, where, note in HAND[backend]:
        rows.append({"kind": kind, "old": old, "new": new, "since": since, "origin": "hand",
                     "source": f"{since} {backend}/{where}", "note": note})
    return rows


def build(backend: str, sources: dict[str, Path]) -> dict:
    ordered = sorted(sources.items(), key=lambda kv: _vkey(kv[0]))
    if backend == "axolotl":
        rows = first_seen([(v, axolotl_evidence(p)) for v, p in ordered]) + axolotl_removed_fields(ordered)
    else:
        rows = llamafactory_rows(ordered)
    for row in rows:
        row.setdefault("origin", "generated")
    rows += hand_rows(backend, sources)
    rows = _without_duplicates(rows)
    rows.sort(key=lambda r: (r["kind"], r.get("section") or "", r["old"], _vkey(r["since"])))
    return {"backend": backend, "generated_by": "scripts/gen_renames.py", "versions_read": [v for v, _ in ordered],
            "rows": rows}


def _without_duplicates(rows: list[dict]) -> list[dict]:
    """A removed row for a key some rename or move row covers is dropped (the rename says more)."""
    covered = {(r.get("section"), r["old"]) for r in rows if r["kind"] in ("key", "move", "attn_flag", "fsdp2")}
    covered |= {(None, r["old"]) for r in rows if r.get("section")}  # a section's key, not a top-level one
    out, seen = [], set()
    for row in rows:
        ident = (row["kind"], row.get("section"), row["old"])
        if row["kind"] == "removed" and (row.get("section"), row["old"]) in covered:
            continue
        if ident in seen and row["kind"] != "attn_flag":
            continue
        seen.add(ident)
        out.append(row)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=("axolotl", "llamafactory"))
    parser.add_argument("--source", action="append", required=True, metavar="VERSION=PATH")
    parser.add_argument("-o", "--output", default=None)
    args = parser.parse_args(argv)
    sources = {}
    for item in args.source:
        version, _, path = item.partition("=")
        sources[version] = Path(path)
    table = build(args.backend, sources)
    out = Path(args.output or ROOT / "schemas" / "backends" / f"renames-{args.backend}.json")
    out.write_text(json.dumps(table, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    print(f"{out}: {len(table['rows'])} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
