"""Column mappings: --map parsing, mapping files, presets and resolve() (choose_mapping():
test_mapping_choose.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError, MappingError
from features.mapping import (
    ISO8601,
    ColumnMapping,
    choose_mapping,
    identity_mapping,
    load_mapping_file,
    load_preset,
    mapping_from_dict,
    parse_map_option,
)
from features.schema import EVENT_FIELDS


# -- --map ---------------------------------------------------------------------------------------
def test_parse_map_option_retailrocket() -> None:
    m = parse_map_option("customer_id=visitorid,ts=timestamp,event_type=event")
    # Fields --map does not name fall back to their canonical column.
    assert m.columns == {
        "customer_id": ("visitorid",),
        "ts": ("timestamp",),
        "event_type": ("event",),
        **{f: (f,) for f in ("event_id", "channel", "value", "action", "properties")},
    }
    assert m.source == "--map"
    assert m.constants == {}
    assert m.ts_format == (ISO8601,)
    assert m.resolve(["timestamp", "visitorid", "event", "itemid"], "f.csv") == {
        "customer_id": ("visitorid",),
        "ts": ("timestamp",),
        "event_type": ("event",),
    }


def test_parse_map_option_tolerates_spaces_and_empty_parts() -> None:
    m = parse_map_option(" customer_id = user , ts=when,, event_type=what ,")
    named = {k: v for k, v in m.columns.items() if k in ("customer_id", "ts", "event_type")}
    assert named == {"customer_id": ("user",), "ts": ("when",), "event_type": ("what",)}


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("customer=visitorid", "'customer' is not an event field"),
        ("customer_id=visitorid,colour=red", "'colour' is not an event field"),
        ("customer_id", "expected FIELD=COLUMN, got 'customer_id'"),
        ("customer_id=a,ts", "expected FIELD=COLUMN, got 'ts'"),
        ("ts=", "expected FIELD=COLUMN, got 'ts='"),
        ("=col", "expected FIELD=COLUMN, got '=col'"),
        ("ts=a,ts=b", "field 'ts' given twice"),
    ],
)
def test_parse_map_option_errors(option: str, expected: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_map_option(option)
    assert str(info.value).startswith("--map: ")
    assert expected in str(info.value)


def test_mapping_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_map_option("nope=x")


# -- mapping files -------------------------------------------------------------------------------
FULL_MAPPING = """
columns:
  customer_id: [user, uid]
  ts: when
  value: amount
constants:
  event_type: purchase
  channel: store
event_types:
  Bought: purchase
  Looked: page_view
ts_format: [epoch_ms, "%Y%m%d"]
defaults:
  channel: offline
properties: [sku, qty]
"""


def test_mapping_file_all_keys(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(FULL_MAPPING, encoding="utf-8")
    m = load_mapping_file(path)
    assert m.columns == {"customer_id": ("user", "uid"), "ts": ("when",), "value": ("amount",)}
    assert m.constants == {"event_type": "purchase", "channel": "store"}
    assert m.event_types == {"Bought": "purchase", "Looked": "page_view"}
    assert m.ts_format == ("epoch_ms", "%Y%m%d")
    assert m.defaults == {"channel": "offline"}
    assert m.properties == ("sku", "qty")
    assert m.source == str(path)
    # Present candidates in preference order (a row takes the first non-empty one);
    # a constant satisfies a required field.
    named = ["amount", "sku", "qty"]  # named one by one: every one must be in the file
    assert m.resolve(["uid", "user", "when", *named], "x.csv") == {
        "customer_id": ("user", "uid"),
        "ts": ("when",),
        "value": ("amount",),
    }
    assert m.resolve(["uid", "when", *named], "x.csv") == {
        "customer_id": ("uid",), "ts": ("when",), "value": ("amount",)}
    assert m.extra_columns(["qty", "other", "when"]) == ["qty"]


def test_mapping_file_minimal_and_scalar_ts_format(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("columns: {customer_id: c, ts: t, event_type: e}\nts_format: epoch_s\n")
    m = load_mapping_file(path)
    assert m.ts_format == ("epoch_s",)
    assert m.constants == {} and m.event_types == {} and m.properties == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("columns: {customer_id: c}\nrename: {a: b}\n", "unknown keys ['rename']"),
        ("columns: [customer_id]\n", "'columns' must map canonical field -> source column"),
        ("columns: {customer: c}\n", "'customer' is not an event field"),
        ("constants: {kind: purchase}\n", "'kind' is not an event field"),
        ("columns: {ts: {a: 1}}\n", "columns.ts: expected a column name or a list of names"),
        ("ts_format: {a: 1}\n", "ts_format: expected a column name or a list of names"),
        ("properties: [a, 1]\n", "properties: expected a column name or a list of names"),
        ("columns: {ts: [a\n", "not valid YAML"),
        ("- a\n", "expected a mapping at the top level"),
    ],
)
def test_mapping_file_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_unknown_key_error_lists_allowed_keys() -> None:
    with pytest.raises(MappingError) as info:
        mapping_from_dict({"colums": {}}, "m.yaml")
    msg = str(info.value)
    assert "m.yaml: unknown keys ['colums']" in msg
    for key in ("columns", "constants", "defaults", "event_types", "properties", "ts_format"):
        assert key in msg


def test_mapping_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="mapping file not found"):
        load_mapping_file(tmp_path / "missing.yaml")


# -- presets -------------------------------------------------------------------------------------
def test_segment_preset() -> None:
    m = load_preset("segment")
    assert m.source == "preset segment"
    assert m.columns["customer_id"][0] == "userId"
    assert "user_id" in m.columns["customer_id"]
    assert m.event_types["Order Completed"] == "purchase"
    assert m.event_types["Product Added"] == "add_to_cart"
    assert m.event_types["Page"] == "page_view"
    assert m.defaults == {"channel": "unknown"}
    assert m.resolve(["user_id", "event_type", "event_id", "ts"], "events.csv") == {
        "customer_id": ("user_id",),
        "event_type": ("event_type",),
        "event_id": ("event_id",),
        "ts": ("ts",),
    }
    # userId is preferred; anonymousId fills rows without one.
    got = m.resolve(["anonymousId", "userId", "timestamp", "event"], "s.jsonl")
    assert got["customer_id"] == ("userId", "anonymousId")


def test_purchases_preset() -> None:
    m = load_preset("purchases")
    assert m.source == "preset purchases"
    assert m.constants == {"event_type": "purchase"}
    assert m.ts_format == (ISO8601, "%Y%m%d", "%Y/%m/%d")
    assert m.properties == ("number_of_cds", "quantity", "Quantity")
    resolved = m.resolve(["customer_id", "date", "number_of_cds", "dollar_value"], "cdnow.csv")
    assert resolved == {
        "customer_id": ("customer_id",),
        "ts": ("date",),
        "value": ("dollar_value",),
    }
    assert m.extra_columns(["customer_id", "date", "number_of_cds", "dollar_value"]) == [
        "number_of_cds"
    ]


def test_unknown_preset() -> None:
    with pytest.raises(MappingError) as info:
        load_preset("retailrocket")
    assert "unknown preset 'retailrocket'" in str(info.value)
    assert "['segment', 'purchases']" in str(info.value)


# -- resolve -------------------------------------------------------------------------------------
def test_resolve_missing_required_lists_the_files_columns() -> None:
    m = load_preset("segment")
    with pytest.raises(MappingError) as info:
        m.resolve(["visitor", "timestamp", "event"], "/data/clicks.csv")
    msg = str(info.value)
    assert msg.startswith("/data/clicks.csv: no column for required field 'customer_id'")
    assert "preset segment" in msg
    assert "['userId', 'user_id', 'anonymousId', 'anonymous_id']" in msg
    assert "the file has columns ['visitor', 'timestamp', 'event']" in msg


def test_resolve_identity_mapping_names_missing_field() -> None:
    with pytest.raises(MappingError) as info:
        identity_mapping().resolve(["customer_id", "ts"], "f.csv")
    assert "'event_type'" in str(info.value)
    assert "tried ['event_type']" in str(info.value)
    assert "['customer_id', 'ts']" in str(info.value)


def test_resolve_field_without_candidates_tries_its_own_name() -> None:
    m = ColumnMapping(columns={"customer_id": ("c",), "event_type": ("e",)}, source="m")
    with pytest.raises(MappingError, match=r"'ts' \(mapping m tried \['ts'\]\)"):
        m.resolve(["c", "e"], "f.csv")


def test_identity_mapping() -> None:
    m = identity_mapping()
    assert m.columns == {f: (f,) for f in EVENT_FIELDS}
    assert m.source == "<canonical>"


def test_mapping_file_column_missing_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("columns: {customer_id: cid, ts: when, event_type: what, value: amount_usd,"
                    " channel: [src, source]}\nproperties: [Campaign]\n", encoding="utf-8")
    m = load_mapping_file(path)
    with pytest.raises(MappingError) as info:
        m.resolve(["cid", "when", "what", "amt"], "m2.csv")
    assert str(info.value) == (
        f"m2.csv: mapping {path} names columns the file does not have (columns.value: "
        "'amount_usd'; columns.channel: none of ['src', 'source']; properties[0]: 'Campaign'); "
        "the file has columns ['cid', 'when', 'what', 'amt']")
    assert m.resolve(["cid", "when", "what", "amount_usd", "source", "Campaign"], "ok.csv") == {
        "customer_id": ("cid",), "ts": ("when",), "event_type": ("what",),
        "value": ("amount_usd",), "channel": ("source",)}


def test_map_replaces_a_files_column_and_its_requirement(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("columns: {customer_id: cid, ts: when, event_type: what, value: usd}\n")
    m = choose_mapping("value=amt", mapping_file=path)
    assert m.resolve(["cid", "when", "what", "amt"], "f.csv")["value"] == ("amt",)


def test_preset_candidates_are_not_required() -> None:
    got = load_preset("segment").resolve(["userId", "timestamp", "event"], "s.jsonl")
    assert got == {"customer_id": ("userId",), "ts": ("timestamp",), "event_type": ("event",)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("columns:\n  customer_id: c\n  value: amt\n  value: other\n",
         "columns.value: written twice (line 4)"),
        ("columns: {customer_id: c}\ncolumns: {ts: t}\n", "columns: written twice (line 2)"),
        ("defaults: {chanel: web}\n",
         "defaults.chanel: not a field defaults can set (did you mean 'channel'?); they can set "
         "['channel']"),
        ("defaults: {value: 1}\n", "defaults.value: not a field defaults can set; they can set"),
        ("defaults: [channel]\n", "defaults: expected field: value, got ['channel']"),
        ('ts_format: ["%Y%m%d", "%Q"]\n',
         "line 1: ts_format[1]: '%Q' is not a valid strptime pattern: Failed to parse format "
         "specifier %Q"),
        ("ts_format: ISO-8601\n", "line 1: ts_format: 'ISO-8601' is neither one of "
         "['ISO8601', 'epoch_s', 'epoch_ms', 'epoch_us'] nor a strptime pattern"),
        ("ts_format: []\n", "ts_format: give at least one format"),
    ],
)
def test_mapping_file_mistakes_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_ts_format_keywords_in_any_case() -> None:
    m = mapping_from_dict({"ts_format": ["iso8601", "EPOCH_MS", " Epoch_S ", "%d/%m/%Y"]}, "m")
    assert m.ts_format == (ISO8601, "epoch_ms", "epoch_s", "%d/%m/%Y")


# -- blocks that contradict or are of the wrong shape -------------------------------------------

CRM = (Path(__file__).parents[2] / "examples" / "crm_mapping.yaml").read_text(encoding="utf-8")


def test_a_field_both_in_columns_and_constants_is_refused(tmp_path: Path) -> None:
    # The constant would win for every row and the column be ignored without a word.
    path = tmp_path / "map.yaml"
    path.write_text(CRM + "constants: {customer_id: X}\n", encoding="utf-8")
    constants_line = CRM.count("\n") + 1
    column_line = CRM.splitlines().index("  customer_id: Contact ID") + 1
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    assert str(info.value).startswith(
        f"{path}: line {constants_line}: customer_id: given both in columns and constants "
        f"(columns at line {column_line})")


def test_map_option_may_replace_a_presets_constant_with_a_column() -> None:
    # Not a contradiction: --map overrides the preset's constant.
    m = choose_mapping("event_type=kind", preset="purchases")
    assert "event_type" not in m.constants and m.columns["event_type"] == ("kind",)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("event_types: [page_view]\n", "event_types: must map each source value to a taxonomy "
         "event type, got ['page_view']"),
        ("constants: [channel]\n", "constants: must map each field to its value for every row, "
         "got ['channel']"),
        ("constants:\n  channel: [a, b]\n", "constants.channel: must be text, got ['a', 'b']"),
        ("event_types:\n  pv:\n", "event_types.pv: must be text, got None"),
    ],
)
def test_a_block_of_the_wrong_shape_names_file_line_and_field(
        tmp_path: Path, block: str, expected: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(CRM + block, encoding="utf-8")
    line = CRM.count("\n") + 1 + (1 if block.count("\n") > 1 else 0)
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    assert str(info.value) == f"{path}: line {line}: {expected}"


def test_a_mapping_file_not_in_utf8_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_bytes(b"columns:\n  customer_id: Kundennr\n  ts: Zeitpunkt\n"
                     + "  value: Betrag_€\n".encode("cp1252"))
    with pytest.raises(MappingError) as info:
        load_mapping_file(path)
    assert str(info.value) == f"{path}: line 4: not UTF-8 text (byte 0x80); save the file as UTF-8"
