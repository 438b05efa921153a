"""ftr upgrade: each kind of rename-table row, formatting kept, nothing written without being asked, --check."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from ft_recipes.backends.upgrade import table, upgrade_text
from ft_recipes.cli.main import main

pytest.importorskip("ruamel.yaml")


def up(text: str, target: str = "axolotl=0.21.0", drop: bool = False):
    backend, version = target.split("=")
    return upgrade_text(text, backend, version, "cfg.yml", drop)


def test_attention_flag_becomes_attn_implementation_keeping_comments_and_order():
    text = "base_model: m  # the model\nflash_attention: true  # fast\nxformers_attention:\nlr: 1\n"
    result = up(text)
    assert result.new_text == "base_model: m  # the model\nattn_implementation: flash_attention_2 # fast\nlr: 1\n"
    assert any("since axolotl 0.17.0" in c.render("f") for c in result.changes)


def test_relora_and_unsloth_renames():
    result = up("relora_steps: 100\nunsloth_lora_mlp: true\n")
    assert result.new_text == "jagged_restart_steps: 100\nlora_mlp_kernel: true\n"


def test_fsdp1_to_fsdp2_only_for_a_target_without_fsdp1():
    text = ("fsdp:\n  - full_shard\n  - auto_wrap\nfsdp_config:\n  fsdp_sharding_strategy: SHARD_GRAD_OP\n"
            "  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer\n  fsdp_sync_module_states: true\n")
    new = up(text).new_text
    assert "fsdp:\n" not in new and "fsdp_version: 2" in new
    assert "reshard_after_forward: false" in new and "transformer_layer_cls_to_wrap: LlamaDecoderLayer" in new
    assert "sync_module_states" not in new
    assert "fsdp_version" not in up(text, "axolotl=0.19.0").new_text


def test_sharegpt_dataset_becomes_chat_template():
    new = up("datasets:\n  - path: d.json\n    type: sharegpt\n").new_text
    assert "type: chat_template" in new and "field_messages: conversations" in new
    assert "role: from" in new and "content: value" in new


def test_removed_key_that_asks_for_something_is_kept_unless_drop():
    result = up("flash_attn_rms_norm: true\nlr: 1\n")
    assert not result.changed and result.findings[0].severity == "error"
    assert "deprecated.py" in result.findings[0].hint
    dropped = up("flash_attn_rms_norm: true\nlr: 1\n", drop=True)
    assert dropped.new_text == "lr: 1\n" and dropped.findings[0].severity == "warning"


def test_removed_key_that_asks_for_nothing_is_dropped_with_a_finding():
    result = up("s2_attention: false\nlr: 1\n")
    assert result.new_text == "lr: 1\n" and result.findings[0].key == "s2_attention"


def test_llamafactory_renames_and_removed_template():
    result = up("new_special_tokens: <a>\nuse_cache: true\ntemplate: baichuan\n", "llamafactory=0.9.5")
    assert result.new_text.startswith("add_special_tokens: <a>\nuse_kv_cache: true\n")
    assert any(f.key == "template" and f.severity == "error" for f in result.findings)


def test_ray_key_refused_by_llamafactory_is_a_finding():
    result = up("ray_run_name: x\nstage: sft\n", "llamafactory=0.9.5")
    assert not result.changed and "ray_run_name" in result.findings[0].message


def test_round_trip_spellings_outside_the_edit_are_kept():
    text = "seed: null\nb: 'q'\nlist:\n  - x\nflash_attention: true\n"
    assert up(text).new_text == "seed: null\nb: 'q'\nlist:\n  - x\nattn_implementation: flash_attention_2\n"


def test_a_null_key_the_target_does_not_have_is_removed_and_listed():
    result = up("debug:\nseed:\neval_table_size:\nlr: 1\n")
    assert result.new_text == "seed:\neval_table_size:\nlr: 1\n"  # lr: not null, kept (ftr lint's FTR001)
    assert [c.keys for c in result.changes] == [("debug",)] and "null removed" in result.changes[0].text


def test_eval_table_max_new_tokens_is_renamed_with_its_value():
    result = up("eval_table_max_new_tokens: 128\n")
    assert result.new_text == "eval_max_new_tokens: 128\n"
    change = result.changes[0]
    assert change.since == "axolotl 0.5.0" and change.expect == (("eval_max_new_tokens", 128),)


def test_duplicate_keys_are_left_alone():
    result = up("lr: 1\nlr: 2\nflash_attention: true\n", "llamafactory=0.9.5")
    assert not result.changed and result.findings[0].severity == "error"


def test_every_row_names_its_version_and_source():
    for backend in ("axolotl", "llamafactory"):
        for row in table(backend):
            assert row["since"] and row["source"].split()[0] == row["source"].split()[0].strip()
            assert row["origin"] in ("generated", "hand") and ":" in row["source"]


def test_cli_check_and_writes(tmp_path):
    src = tmp_path / "a.yml"
    src.write_text("flash_attention: true\n")
    runner = CliRunner()
    assert runner.invoke(main, ["upgrade", str(src), "--to", "axolotl=0.21.0", "--check"]).exit_code == 1
    dry = runner.invoke(main, ["upgrade", str(src), "--to", "axolotl=0.21.0"])
    assert dry.exit_code == 0 and src.read_text() == "flash_attention: true\n"
    out = tmp_path / "out"
    assert runner.invoke(main, ["upgrade", str(src), "--to", "axolotl=0.21.0", "-o", str(out)]).exit_code == 0
    assert (out / "a.yml").read_text() == "attn_implementation: flash_attention_2\n"
    again = runner.invoke(main, ["upgrade", str(src), "--to", "axolotl=0.21.0", "-o", str(out)])
    assert again.exit_code == 2
    assert runner.invoke(main, ["upgrade", str(src), "--to", "axolotl=0.21.0", "--in-place"]).exit_code == 0
    assert runner.invoke(main, ["upgrade", str(src), "--to", "axolotl=0.21.0", "--check"]).exit_code == 0
    assert runner.invoke(main, ["upgrade", str(src), "--to", "axolotl=9.9"]).exit_code == 2


def test_table_is_the_committed_json():
    rows = json.loads((__import__("ft_recipes.core.paths", fromlist=["data_dir"]).data_dir("schemas") / "backends" /
                       "renames-axolotl.json").read_text())["rows"]
    assert {r["old"] for r in rows} >= {"relora_steps", "unsloth_lora_qkv", "flash_attention", "sharding_strategy"}


def test_an_earlier_one_line_duplicate_is_removed_the_last_is_what_the_backend_reads():
    result = up("lora_fan_in_fan_out: false\nseed: 1\nlora_fan_in_fan_out:\nflash_attention: true\n", "axolotl=0.19.0")
    assert result.new_text == "seed: 1\nlora_fan_in_fan_out:\nattn_implementation: flash_attention_2\n"
    assert [c.line for c in result.changes] == [1, 4]  # lines of the original file


def test_a_duplicate_spanning_lines_is_still_left_alone():
    result = up("datasets:\n  - path: a\nseed: 1\ndatasets:\n  - path: b\n", "axolotl=0.19.0")
    assert not result.changed and result.findings[0].severity == "error"


def test_fsdp1_keys_axolotl_019_no_longer_reads_go_when_they_hold_the_fsdp1_default():
    text = ("fsdp:\n  - full_shard\nfsdp_config:\n  fsdp_limit_all_gathers: true\n"
            "  fsdp_sharding_strategy: FULL_SHARD\n  fsdp_backward_prefetch: BACKWARD_PRE\n")
    result = up(text, "axolotl=0.19.0")
    assert result.new_text == "fsdp:\n  - full_shard\nfsdp_config:\n  backward_prefetch: BACKWARD_PRE\n"
    assert [f.key for f in result.findings if f.severity == "error"] == ["fsdp_config.backward_prefetch"]


def test_a_legacy_flag_that_says_what_attn_implementation_says_is_removed():
    result = up("flash_attention: true\nattn_implementation: flash_attention_2\n", "axolotl=0.19.0")
    assert result.new_text == "attn_implementation: flash_attention_2\n" and not result.findings
    other = up("flash_attention: true\nattn_implementation: sdpa\n", "axolotl=0.19.0")
    assert not other.changed and other.findings[0].severity == "error"


def test_dpo_dataset_keys_the_schema_drops_go_when_they_say_what_the_reader_does():
    text = ("rl: dpo\ndatasets:\n  - path: x\n    type: chat_template.default\n    message_property_mappings:\n"
            "      role: role\n      content: content\n    roles:\n      user:\n        - user\n")
    assert up(text, "axolotl=0.19.0").new_text == "rl: dpo\ndatasets:\n  - path: x\n    type: chat_template.default\n"
    other = up(text.replace("role: role", "role: from"), "axolotl=0.19.0")
    assert [f.key for f in other.findings] == ["datasets.message_property_mappings"]


def test_tokens_as_a_mapping_of_special_tokens_becomes_special_tokens():
    result = up("tokens:\n  pad_token: <pad>\n", "axolotl=0.19.0")
    assert result.new_text == "special_tokens:\n  pad_token: <pad>\n"
    assert not up("tokens:\n  - <x>\n", "axolotl=0.19.0").changed


UNREAD = [r for r in table("axolotl") if r["kind"] == "unread"]


@pytest.mark.parametrize("row", UNREAD, ids=[r["old"] for r in UNREAD])
@pytest.mark.parametrize("target", ["axolotl=0.19.0", "axolotl=0.21.0"])
def test_a_key_no_version_reads_is_removed_with_a_warning_naming_the_key_that_asks_for_it(row, target):
    from ft_recipes.backends.catalogue import load

    assert row["old"] not in load("axolotl", target.split("=")[1]).get("keys", {})  # the row's evidence, in part
    result = up(f"base_model: m  # the model\n{row['old']}: 3  # mine\nnum_epochs: 1\n", target)
    assert result.new_text == "base_model: m  # the model\nnum_epochs: 1\n"
    assert [c.line for c in result.changes] == [2] and "no axolotl version reads it" in result.changes[0].text
    [finding] = result.findings
    assert finding.severity == "warning" and finding.line == 2 and finding.key == row["old"]
    assert (row["new"] or row["note"]) in finding.hint


def test_a_key_no_version_reads_stays_where_it_is_a_section_key():
    assert not up("fsdp_config:\n  epochs: 3\n", "axolotl=0.19.0").changed


def test_qlora_under_fsdp2_with_cpu_ram_efficient_loading_gets_sharded_loading_written_and_reported():
    text = ("adapter: qlora\nload_in_4bit: true\nfsdp_version: 2\nfsdp_config:\n  cpu_ram_efficient_loading: true\n"
            "  reshard_after_forward: true\n")
    result = up(text, "axolotl=0.21.0")
    assert result.new_text.startswith("adapter: qlora\nqlora_sharded_model_loading: true\nload_in_4bit: true\n")
    assert [f.key for f in result.findings] == ["qlora_sharded_model_loading"]
    assert result.findings[0].severity == "warning"
    assert not up(text, "axolotl=0.19.0").changed  # 0.19 reads unset as off, as the source did
    assert not up(text.replace("cpu_ram_efficient_loading: true", "cpu_ram_efficient_loading: false")).changed
    assert not up("qlora_sharded_model_loading: false\n" + text).changed  # written: the target judges it


# --- one case per row of the rename tables: the row does what it says, at the newest target --------------------

NEWEST = {"axolotl": "0.21.0", "llamafactory": "0.9.5"}
ROWS = [(backend, row) for backend in NEWEST for row in table(backend)]


def _row_id(item) -> str:
    backend, row = item
    return f"{backend}-{row['kind']}-{row.get('section') or ''}{row['old']}"


def _asked_for(row: dict):
    """A value the removed key asks for something with (not its default, truthy; FSDP1's list for ``fsdp``)."""
    if row["old"] == "fsdp":
        return "[full_shard, auto_wrap]"
    return "x" if row.get("default") != "x" else "y"


@pytest.mark.parametrize("item", ROWS, ids=[_row_id(i) for i in ROWS])
def test_each_row_of_the_rename_table(item):
    from ft_recipes.backends.upgrade import _still_read

    backend, row = item
    target = f"{backend}={NEWEST[backend]}"
    kind, old, new, section = row["kind"], row["old"], row.get("new"), row.get("section")
    if kind == "key":
        result = up(f"{old}: 7  # mine\nother: 1\n", target)
        assert yaml.safe_load(result.new_text) == {new: 7, "other": 1} and "# mine" in result.new_text
        assert result.changes[0].since == f"{backend} {row['since']}"
    elif kind == "attn_flag":
        assert up(f"{old}: true\n", target).new_text == f"attn_implementation: {row['value']}\n"
    elif kind == "template":
        result = up(f"template: {old}\n", target)
        if new:
            assert result.new_text == f"template: {new}\n"
        else:
            assert [(f.severity, f.key) for f in result.findings] == [("error", "template")] and not result.changed
    elif kind == "unread":
        assert up(f"{old}: 1\nother: 1\n", target).new_text == "other: 1\n"
    elif kind == "removed":
        text = f"{section}:\n  {old}: {_asked_for(row)}\n  other: 1\n" if section else f"{old}: {_asked_for(row)}\n"
        name = f"{section}.{old}" if section else old
        result = up(text, target)
        kept = yaml.safe_load(result.new_text) or {}
        kept = kept.get(section) or {} if section else kept
        if _still_read(backend, NEWEST[backend], section, old):
            assert not result.changed  # the target reads a field of that name again
        elif row.get("refused") is None:  # the target ignores it: removed and listed
            assert old not in kept and [f.severity for f in result.findings if f.key == name] in (["info"], [])
            assert any(old in c.text for c in result.changes)
        else:  # it asks for something the target refuses: kept for the user, an error; --drop removes it
            assert old in kept and [f.severity for f in result.findings if f.key == name] == ["error"]
            dropped = yaml.safe_load(up(text, target, drop=True).new_text) or {}
            assert old not in (dropped.get(section) or {} if section else dropped)
    elif kind == "dataset_type":
        result = up(f"datasets:\n  - path: d.jsonl\n    type: {old}\n", target)
        assert f"type: {new}" in result.new_text
    elif kind == "prefix":
        result = up(f"{section}:\n  {old}offload_params: true\n", target)
        assert yaml.safe_load(result.new_text)[section] == {"offload_params": True}
    elif kind == "fsdp2":
        for value, reshard in row["values"].items():
            result = up(f"fsdp_config:\n  {old}: {value}\n", target)
            assert f"{new}: {str(reshard).lower()}" in result.new_text, (value, result.new_text)
    elif kind == "fsdp2_version":
        assert "fsdp_version: 2" in up("fsdp_config:\n  fsdp_version: 1\n  offload_params: true\n", target).new_text
    else:
        pytest.fail(f"a row of kind {kind!r} has no case here: add one")


def test_an_fsdp1_key_at_its_fsdp1_default_goes_when_moving_to_fsdp2():
    text = "fsdp_version: 1\nfsdp_config:\n  forward_prefetch: false\n  offload_params: true\n"
    result = up(text, "axolotl=0.21.0")
    assert yaml.safe_load(result.new_text)["fsdp_config"] == {"offload_params": True}
    assert [f.severity for f in result.findings] == ["info"]
    asked = up(text.replace("forward_prefetch: false", "forward_prefetch: true"), "axolotl=0.21.0")
    assert [f.severity for f in asked.findings] == ["error"]  # what it asked for is gone under FSDP2
