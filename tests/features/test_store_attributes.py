"""Customer attributes: read as text, a customer's last row wins, rows without an id and ids
the store does not know are counted, and what is stored joins the events' customers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.schema import EVENT_FIELDS, EVENT_SCHEMA
from features.store import EventStore
from features.store_attributes import (
    AttributeLoad,
    attributes_fingerprint,
    read_attribute_file,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    """Customers 00001 and 00002 (ids with leading zeros, as ingest keeps them)."""
    with EventStore(tmp_path / "events.duckdb") as s:
        s.append(pa.Table.from_pylist([
            {f: None for f in EVENT_FIELDS} | {
                "event_id": f"e{i}", "customer_id": c, "ts": datetime(2024, 1, i, tzinfo=UTC),
                "event_type": "page_view", "channel": "web"}
            for i, c in enumerate(["00001", "00002"], start=1)], schema=EVENT_SCHEMA))
        yield s


def attributes(s: EventStore) -> list[tuple[object, ...]]:
    return s.con.execute("SELECT customer_id, name, value FROM attributes ORDER BY ALL").fetchall()


def regions(s: EventStore) -> dict[str, str | None]:
    """Region per stored customer, as features read it."""
    codes, dictionary = s.attributes_by_key(("region",))["region"]
    keys = dict(s.con.execute("SELECT customer_id, customer_key FROM customers").fetchall())
    return {c: None if codes[k] < 0 else dictionary[codes[k]].as_py() for c, k in keys.items()}


def test_audit_file_loads_as_spelled(store: EventStore, tmp_path: Path) -> None:
    path = tmp_path / "attrs.csv"
    path.write_text("customer_id,region,device\n"
                    "00001,north,mobile\n"
                    "00002,south,desktop\n"
                    "00002,east,desktop\n"     # the customer again: this row wins
                    ",west,app\n"              # line 5: no id
                    "99999,none,none\n")       # no events in the store
    table, unreadable = read_attribute_file(path)
    loaded = store.load_attributes(table)
    assert unreadable == []
    assert loaded == AttributeLoad(customers=3, known=2, unknown_ids=("99999",), duplicates=1,
                                   missing_id=1, missing_id_at=((str(path), 5),))
    assert loaded.unknown == 1
    assert attributes(store) == [
        ("00001", "device", "mobile"), ("00001", "region", "north"),
        ("00002", "device", "desktop"), ("00002", "region", "east"),
        ("99999", "device", "none"), ("99999", "region", "none"),
    ]
    assert regions(store) == {"00001": "north", "00002": "east"}


def test_a_later_load_replaces_and_blank_ids_and_values_are_missing(
    store: EventStore, tmp_path: Path
) -> None:
    first = tmp_path / "a.csv"
    first.write_text("customer_id,region\n00001,north\n00002,south\n")
    store.load_attributes(read_attribute_file(first)[0])
    second = tmp_path / "b.csv"
    second.write_text("customer_id,region\n 00001 ,west\n00002,\n   ,x\n")
    loaded = store.load_attributes(read_attribute_file(second)[0])
    assert (loaded.customers, loaded.known, loaded.missing_id) == (2, 2, 1)
    assert loaded.missing_id_at == ((str(second), 4),)
    # A blank value is no value: it does not erase the one loaded before.
    assert regions(store) == {"00001": "west", "00002": "south"}


def test_a_directory_of_parquet_files_keeps_its_types_and_row_order(
    store: EventStore, tmp_path: Path
) -> None:
    folder = tmp_path / "customers"
    folder.mkdir()
    pq.write_table(pa.table({"customer_id": ["00001", "00002"], "region": ["a", "b"]}),
                   folder / "part-0.parquet")
    pq.write_table(pa.table({"customer_id": ["00002"], "region": ["c"]}),
                   folder / "part-1.parquet")
    loaded = store.load_attributes(read_attribute_file(folder)[0])
    assert (loaded.customers, loaded.duplicates) == (2, 1)
    assert regions(store) == {"00001": "a", "00002": "c"}  # the later file's row wins


def test_unparseable_rows_are_returned_not_loaded(store: EventStore, tmp_path: Path) -> None:
    path = tmp_path / "attrs.csv"
    path.write_text("customer_id,region\n00001,north,extra\n00002,south\n")
    table, unreadable = read_attribute_file(path)
    assert [(r.line, r.reason) for r in unreadable] == [
        (2, "wrong number of fields: expected 2, got 3")]
    assert store.load_attributes(table).customers == 1


def test_a_table_read_elsewhere_loads_by_row_order(store: EventStore) -> None:
    loaded = store.load_attributes(pa.table({"customer_id": ["00001", None, "00001"],
                                             "region": ["a", "b", "c"]}))
    assert (loaded.duplicates, loaded.missing_id_at) == (1, (("", 2),))
    assert regions(store)["00001"] == "c"


def test_fingerprint_follows_every_value(store: EventStore) -> None:
    """Snapshots compare it (features.snapshot.data_fingerprint): any value loaded, replaced or
    added changes it, loading the same values again does not; no attributes: None."""
    assert attributes_fingerprint(store.con) is None
    store.load_attributes(pa.table({"customer_id": ["00001", "00002"], "region": ["w", "e"]}))
    first = attributes_fingerprint(store.con)
    assert first is not None and first["rows"] == 2
    store.load_attributes(pa.table({"customer_id": ["00002"], "region": ["e"]}))
    assert attributes_fingerprint(store.con) == first
    store.load_attributes(pa.table({"customer_id": ["00002"], "region": ["w"]}))
    swapped = attributes_fingerprint(store.con)
    assert swapped is not None and swapped["rows"] == 2 and swapped != first
    store.load_attributes(pa.table({"customer_id": ["00001"], "device": ["mobile"]}))
    added = attributes_fingerprint(store.con)
    assert added is not None and added["rows"] == 3


def test_fingerprint_of_a_store_without_the_table() -> None:
    con = duckdb.connect()
    assert attributes_fingerprint(con) is None


def test_a_json_attribute_row_with_a_key_written_twice_is_not_loaded(
        store: EventStore, tmp_path: Path) -> None:
    path = tmp_path / "attrs.jsonl"
    path.write_text('{"customer_id": "00001", "region": "eu", "region": "us"}\n'
                    '{"customer_id": "00002", "region": "south"}\n', encoding="utf-8")
    table, unreadable = read_attribute_file(path)
    assert [(r.line, r.field, r.reason) for r in unreadable] == [
        (1, "region", "duplicate key: region given twice")]
    assert store.load_attributes(table).customers == 1


def test_attribute_values_come_in_sorted_order(tmp_path: Path) -> None:
    """Whatever order the store groups customers in, an attribute's values come sorted (a
    snapshot's dictionaries and the KPI rows by attribute are the same from run to run), and
    each customer's code still names their own value."""
    ids = [f"c{i:03d}" for i in range(300)]
    values = ["west", "north", "east", None, "south"]
    with EventStore(tmp_path / "events.duckdb") as s:
        s.append(pa.Table.from_pylist([
            {f: None for f in EVENT_FIELDS} | {
                "event_id": f"e{i}", "customer_id": c, "ts": datetime(2024, 1, 1, tzinfo=UTC),
                "event_type": "page_view", "channel": "web"}
            for i, c in enumerate(ids)], schema=EVENT_SCHEMA))
        s.load_attributes(pa.table({"customer_id": ids,
                                    "region": [values[i % 5] for i in range(300)]}))
        _, dictionary = s.attributes_by_key(("region",))["region"]
        assert dictionary.to_pylist() == ["east", "north", "south", "west"]
        got = regions(s)
    assert got == {c: values[i % 5] for i, c in enumerate(ids)}
