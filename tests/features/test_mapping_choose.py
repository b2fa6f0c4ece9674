"""choose_mapping(): the default, a preset or a mapping file, refined by --map."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import MappingError
from features.mapping import (
    choose_mapping,
    identity_mapping,
    load_mapping_file,
    load_preset,
    parse_map_option,
)
from tests.features.test_mapping import FULL_MAPPING


# -- choose_mapping ------------------------------------------------------------------------------
def test_choose_mapping_default_is_canonical() -> None:
    assert choose_mapping() == identity_mapping()


def test_choose_mapping_map_only() -> None:
    m = choose_mapping(map_option="customer_id=visitorid,ts=timestamp,event_type=event")
    assert m.source == "--map"
    assert m.columns["customer_id"] == ("visitorid",)


def test_choose_mapping_preset_refined_by_map() -> None:
    m = choose_mapping(map_option="customer_id=visitor,value=amount", preset="segment")
    segment = load_preset("segment")
    assert m.source == "preset segment + --map"
    assert m.columns["customer_id"] == ("visitor",)  # --map wins for the fields it names
    assert m.columns["value"] == ("amount",)
    assert m.columns["ts"] == segment.columns["ts"]  # the preset keeps the others
    assert m.event_types == segment.event_types
    assert m.ts_format == segment.ts_format
    assert m.defaults == segment.defaults
    assert load_preset("segment").columns["customer_id"][0] == "userId"  # preset untouched


def test_map_overrides_a_preset_constant() -> None:
    plain = choose_mapping(preset="purchases")
    assert plain.constants == {"event_type": "purchase"}
    m = choose_mapping(map_option="event_type=kind", preset="purchases")
    assert m.constants == {}
    assert m.columns["event_type"] == ("kind",)
    assert m.properties == plain.properties
    assert m.ts_format == plain.ts_format


def test_choose_mapping_file_refined_by_map(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(FULL_MAPPING, encoding="utf-8")
    m = choose_mapping(map_option="ts=stamp", mapping_file=path)
    assert m.source == f"{path} + --map"
    assert m.columns["ts"] == ("stamp",)
    assert m.columns["customer_id"] == ("user", "uid")
    assert m.ts_format == ("epoch_ms", "%Y%m%d")
    assert choose_mapping(mapping_file=path) == load_mapping_file(path)


def test_choose_mapping_preset_and_file_conflict(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="either --preset or --mapping"):
        choose_mapping(mapping_file=tmp_path / "m.yaml", preset="segment")


def test_choose_mapping_unknown_preset() -> None:
    with pytest.raises(MappingError, match="unknown preset"):
        choose_mapping(map_option="ts=t", preset="nope")


# -- what the user names must exist; what the YAML says must be meant --------------------------
def test_map_alone_falls_back_to_canonical_columns() -> None:
    """--map names only the fields whose columns differ; the rest keep their canonical names."""
    m = parse_map_option("customer_id=visitor")
    got = m.resolve(["event_id", "visitor", "ts", "event_type", "channel", "value"], "map1.csv")
    assert got == {"customer_id": ("visitor",), "event_id": ("event_id",), "ts": ("ts",),
                   "event_type": ("event_type",), "channel": ("channel",), "value": ("value",)}


def test_map_column_given_to_a_field_is_not_also_another_fields() -> None:
    m = parse_map_option("customer_id=visitor,event_type=channel")
    assert "channel" not in m.resolve(["visitor", "ts", "channel"], "f.csv")


def test_map_names_a_missing_optional_column() -> None:
    with pytest.raises(MappingError) as info:
        parse_map_option("value=amt").resolve(["customer_id", "ts", "event_type"], "f.csv")
    assert str(info.value) == (
        "f.csv: mapping --map names columns the file does not have (--map value: 'amt'); the "
        "file has columns ['customer_id', 'ts', 'event_type']")
