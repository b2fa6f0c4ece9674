"""A mapping file naming some columns reads the fields it leaves out from the columns of their
own names, as --map does (it used to fail saying it "tried ['customer_id']" of a file that
has that column)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.errors import MappingError
from features.mapping import choose_mapping, load_mapping_file, load_preset

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import utc

CSV = ("customer_id,ts,event_type,channel,amount\n"
       "A,1766188800,page_view,web,3\n"
       "B,1766188860,purchase,email,5\n")


def _files(tmp_path: Path, mapping: str, data: str = CSV) -> tuple[Path, Path]:
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    (tmp_path / "e.csv").write_text(data, encoding="utf-8")
    return tmp_path / "m.yaml", tmp_path / "e.csv"


def test_unmapped_fields_read_their_own_columns(tmp_path: Path, load: LoadFn) -> None:
    mapping, data = _files(tmp_path, "columns: {ts: ts, value: amount}\nts_format: [epoch_s]\n")
    got = load(data, load_mapping_file(mapping))
    assert got.column("customer_id") == ["A", "B"]
    assert got.column("ts") == [utc(2025, 12, 20), utc(2025, 12, 20, 0, 1)]
    assert got.column("event_type") == ["page_view", "purchase"]
    assert got.column("channel") == ["web", "email"]
    assert got.column("value") == [3.0, 5.0]


def test_a_column_given_to_another_field_is_not_read_twice(tmp_path: Path,
                                                           load: LoadFn) -> None:
    """`customer_id: channel` takes the channel column: the channel field does not read it."""
    mapping, data = _files(tmp_path, "columns: {customer_id: channel}\n"
                           "ts_format: [epoch_s]\nproperties: [amount]\n")
    got = load(data, load_mapping_file(mapping))
    assert got.column("customer_id") == ["web", "email"]
    assert got.column("channel") == ["unknown", "unknown"]
    assert got.column("properties") == ['{"amount":"3"}', '{"amount":"5"}']
    assert got.column("value") == [None, None]  # `amount` is packed, `value` is no column


def test_the_missing_column_message_is_true(tmp_path: Path, load: LoadFn) -> None:
    mapping, data = _files(tmp_path, "columns: {ts: ts}\nts_format: [epoch_s]\n",
                           CSV.replace("customer_id", "user"))
    with pytest.raises(MappingError, match=r"no column for required field 'customer_id' "
                       r"\(mapping .*m.yaml tried \['customer_id'\]\); the file has columns "
                       r"\['user', "):
        load(data, load_mapping_file(mapping))
    mapping, data = _files(tmp_path, "columns: {customer_id: event_type}\n")
    with pytest.raises(MappingError, match=r"required field 'event_type' \(mapping .*m.yaml "
                       r"maps no column to it: the column 'event_type' is mapped to "
                       r"customer_id; name one under `columns:` or with --map "
                       r"event_type=COLUMN\)"):
        load_mapping_file(mapping).resolve(["event_type", "ts"], "e.csv")


def test_map_on_a_mapping_file_keeps_the_fallback(tmp_path: Path, load: LoadFn) -> None:
    mapping, data = _files(tmp_path, "ts_format: [epoch_s]\n")
    got = load(data, choose_mapping("value=amount", mapping))
    assert got.column("value") == [3.0, 5.0]
    assert got.column("customer_id") == ["A", "B"]


def test_presets_read_only_their_lists() -> None:
    """A preset's lists say where each field is in the files it is for: a Segment event's
    `properties` object is not the event's properties."""
    segment = load_preset("segment")
    assert "properties" not in segment.wanted_columns()
    assert segment.resolve(["userId", "timestamp", "event", "properties"], "s.jsonl").keys() == {
        "customer_id", "ts", "event_type"}
