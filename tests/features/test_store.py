"""EventStore: idempotent ingest, derived ids, point-in-time reads, the staged path, atomicity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import features.event_ids as event_ids_module
import features.store as store_module
from features.errors import MappingError, StoreError
from features.event_ids import EventIds
from features.mapping import identity_mapping, load_preset
from features.schema import EVENT_FIELDS, EVENT_SCHEMA
from features.store import AppendResult, EventStore
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties\n"


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "db" / "events.duckdb") as s:
        yield s


def rows(s: EventStore) -> list[tuple[Any, ...]]:
    """Every stored event with ts as text (no pytz needed), in a stable order."""
    return s.con.execute(
        "SELECT event_id, customer_id, CAST(ts AS VARCHAR), event_type, channel, value, action, "
        "properties FROM events ORDER BY event_id"
    ).fetchall()


def index_names(s: EventStore) -> set[str]:
    return {r[0] for r in s.con.execute(
        "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'events'").fetchall()}


def events_table(records: list[dict[str, object]]) -> pa.Table:
    full = [{f: r.get(f) for f in EVENT_FIELDS} | {"channel": r.get("channel", "unknown")}
            for r in records]
    return pa.Table.from_pylist(full, schema=EVENT_SCHEMA)


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    """Explicit ids (one repeated), and identical rows without an id (real repeats)."""
    path = tmp_path / "mixed.csv"
    path.write_text(
        HEADER
        + "e1,c1,2024-01-01T10:00:00Z,page_view,,,,\n"
        + "e2,c1,2024-01-02T10:00:00Z,purchase,,20,,\n"
        + "e2,c1,2024-01-05T10:00:00Z,purchase,,99,,\n"      # re-sent id: first one wins
        + ",c2,2024-01-03T00:00:00Z,purchase,,5,,\n"
        + ",c2,2024-01-03T00:00:00Z,purchase,,5,,\n"
        + ",c2,2024-01-03T00:00:00Z,purchase,,5,,\n"
        + ",c2,2024-01-04T00:00:00Z,purchase,,5,,\n"
        + "e9,c3,bad,purchase,,,,\n",
        encoding="utf-8",
    )
    return path


# -- ingest ---------------------------------------------------------------------------------------
def test_ingest_is_idempotent(store: EventStore, mixed_csv: Path, taxonomy: Taxonomy,
                              tmp_path: Path) -> None:
    first = store.ingest(mixed_csv, identity_mapping(), taxonomy, tmp_path / "rejects.csv")
    assert first.load.rows_read == 8
    assert first.load.valid == 7
    assert first.load.rejected_total == 1
    # e2's second row is another event under the same id: a conflict, not a re-send.
    assert first.append == AppendResult(received=7, inserted=6, conflicts=1)
    assert (first.append.duplicates, first.append.resent) == (1, 0)
    assert store.count() == 6
    snapshot = rows(store)

    second = store.ingest(mixed_csv, identity_mapping(), taxonomy)
    assert second.append == AppendResult(received=7, inserted=0, conflicts=1)
    assert (second.append.duplicates, second.append.resent) == (7, 6)
    assert store.count() == 6
    assert rows(store) == snapshot
    said = second.lines()
    stored_line = said.index(
        "stored 0 new events; 7 already stored or repeated (ignored by event_id), "
        "1 of them conflicting (event_id of a different event)"
    )
    assert said[stored_line + 1].startswith("warning: 1 rows reuse the event_id of a different")
    # The four rows without an id (CDNOW-like repeats) matched the first load's: said so.
    assert said[stored_line + 2].startswith("note: 4 ignored rows without an event id are")
    assert first.lines()[0] == "read 8 rows from 1 file(s): 7 valid, 1 rejected"


def test_repeated_explicit_event_id_is_stored_once(
    store: EventStore, mixed_csv: Path, taxonomy: Taxonomy
) -> None:
    store.ingest(mixed_csv, identity_mapping(), taxonomy)
    e2 = [r for r in rows(store) if r[0] == "e2"]
    assert e2 == [("e2", "c1", "2024-01-02 10:00:00+00", "purchase", "unknown", 20.0, None, None)]


def test_identical_rows_without_event_id_are_numbered_apart(
    store: EventStore, mixed_csv: Path, taxonomy: Taxonomy
) -> None:
    store.ingest(mixed_csv, identity_mapping(), taxonomy)
    derived = [r for r in rows(store) if r[1] == "c2"]
    assert len(derived) == 4
    on_day3 = sorted(r[0] for r in derived if r[2].startswith("2024-01-03"))
    base = on_day3[0]
    assert base.startswith("d-")
    assert on_day3 == [base, f"{base}-1", f"{base}-2"]
    (other,) = [r[0] for r in derived if r[2].startswith("2024-01-04")]
    assert other.startswith("d-") and other != base and "-" not in other[2:]


def test_reload_with_one_more_identical_row_stores_only_that_one(
    store: EventStore, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    line = ",c2,2024-01-03T00:00:00Z,purchase,,5,,\n"
    two = tmp_path / "two.csv"
    two.write_text(HEADER + line * 2)
    three = tmp_path / "three.csv"
    three.write_text(HEADER + line * 3)
    assert store.ingest(two, identity_mapping(), taxonomy).append.inserted == 2
    assert store.ingest(three, identity_mapping(), taxonomy).append.inserted == 1
    assert store.ingest(two, identity_mapping(), taxonomy).append.inserted == 0
    assert store.count() == 3


def test_derived_ids_depend_on_every_field(store: EventStore, taxonomy: Taxonomy,
                                           tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        HEADER
        + ",c,2024-01-01T00:00:00Z,purchase,,5,,\n"
        + ",c,2024-01-01T00:00:00.000001Z,purchase,,5,,\n"
        + ",c,2024-01-01T00:00:00Z,checkout,,5,,\n"
        + ",c,2024-01-01T00:00:00Z,purchase,app,5,,\n"
        + ",c,2024-01-01T00:00:00Z,purchase,,5.000001,,\n"
        + ",c,2024-01-01T00:00:00Z,purchase,,,,\n"
        + ",c,2024-01-01T00:00:00Z,purchase,,5,promo,\n"
        + ',c,2024-01-01T00:00:00Z,purchase,,5,,"{""a"": 1}"\n'
        + ",d,2024-01-01T00:00:00Z,purchase,,5,,\n"
        + ",c,2024-01-01T00:00:00Z,purchase,,1e300,,\n",
    )
    report = store.ingest(path, identity_mapping(), taxonomy)
    # 1e300 overflows the id's rounded value: its id falls back to the text, and the row is
    # then refused as above the contract's bound, without stopping the load.
    assert report.append.inserted == 9
    assert report.load.rejected == {"value above 1,000,000,000,000": 1}
    ids = [r[0] for r in rows(store)]
    assert all(i.startswith("d-") and i.count("-") == 1 for i in ids)  # none numbered apart


def test_ingest_with_preset_and_rejects_file(store: EventStore, taxonomy: Taxonomy,
                                             tmp_path: Path) -> None:
    path = tmp_path / "segment.csv"
    path.write_text(
        "user_id,event_type,event_id,ts\n"
        "u1,Page,m1,2022-12-13 01:32:00.956000\n"
        "u1,Pop-up Email Viewed,m2,2022-12-13 01:40:51.279000\n"
        "u1,Order Completed,m3,2022-12-13 01:45:00\n"
    )
    rejects = tmp_path / "out" / "rejects.csv"
    report = store.ingest(path, load_preset("segment"), taxonomy, rejects)
    assert report.append.inserted == 2
    assert [(r[0], r[3]) for r in rows(store)] == [("m1", "page_view"), ("m3", "purchase")]
    assert rejects.read_text().splitlines() == [
        "source,line,field,reason,value",
        f"{path},3,event_type,event_type unknown to the taxonomy,Pop-up Email Viewed",
    ]


# -- append ----------------------------------------------------------------------------------------
def test_append_arrow_table(store: EventStore) -> None:
    batch = events_table([
        {"event_id": "a1", "customer_id": "c1", "ts": utc(2024, 1, 1), "event_type": "page_view"},
        {"event_id": "a2", "customer_id": "c1", "ts": utc(2024, 1, 2), "event_type": "purchase",
         "value": 10.0, "action": "coupon", "properties": '{"x": 1}'},
        {"event_id": "a1", "customer_id": "c9", "ts": utc(2024, 1, 3), "event_type": "review"},
    ])
    assert store.append(batch) == AppendResult(3, 2, conflicts=1)  # a1 taken by c1's event
    assert rows(store) == [
        ("a1", "c1", "2024-01-01 00:00:00+00", "page_view", "unknown", None, None, None),
        ("a2", "c1", "2024-01-02 00:00:00+00", "purchase", "unknown", 10.0, "coupon", '{"x": 1}'),
    ]
    again = store.append(batch)
    assert again == AppendResult(3, 0, conflicts=1)
    assert (again.duplicates, again.resent) == (3, 2)
    assert store.append(batch.slice(0, 0)) == AppendResult(0, 0)
    assert store.count() == 2


def test_append_accepts_extra_columns_and_other_column_order(store: EventStore) -> None:
    batch = events_table([
        {"event_id": "b1", "customer_id": "c1", "ts": utc(2024, 1, 1), "event_type": "page_view"}
    ])
    reordered = batch.select(list(reversed(EVENT_FIELDS))).append_column(
        "noise", pa.array([1], pa.int64()))
    assert store.append(reordered).inserted == 1
    assert rows(store)[0][:4] == ("b1", "c1", "2024-01-01 00:00:00+00", "page_view")


def test_a_store_with_older_indexes_loses_them_on_open(tmp_path: Path) -> None:
    """Their upkeep grew the service's memory (customer_key) and made every checkpoint
    rewrite a whole index (event_id); see DROPPED_INDEXES."""
    path = tmp_path / "old.duckdb"
    with EventStore(path) as store:
        store.con.execute("CREATE INDEX events_customer ON events(customer_key)")
        store.con.execute("CREATE UNIQUE INDEX events_event_id ON events(event_id)")
        assert index_names(store) == {"events_customer", "events_event_id"}
    with EventStore(path, read_only=True) as store:  # a reader never writes
        assert index_names(store) == {"events_customer", "events_event_id"}
    with EventStore(path) as store:
        assert index_names(store) == set()


def test_a_hash_match_is_settled_against_the_table(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hash "matches" here (as a collision would): new ids are still stored, stored
    ones still skipped."""
    first = events_table([{"event_id": f"m{i}", "customer_id": "c", "ts": utc(2024, 1, 1 + i),
                           "event_type": "page_view"} for i in range(3)])
    assert store.append(first).inserted == 3
    monkeypatch.setattr(EventIds, "maybe_stored",
                        lambda self, hashes: np.ones(len(hashes), bool))
    again = events_table([{"event_id": f"m{i}", "customer_id": "c", "ts": utc(2024, 2, 1 + i),
                           "event_type": "page_view"} for i in range(1, 5)])
    assert store.append(again) == AppendResult(4, 2, conflicts=2)  # m1, m2: other times
    assert [r[0] for r in rows(store)] == ["m0", "m1", "m2", "m3", "m4"]


def test_the_writer_knows_ids_of_every_path(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids stored by a large (staged) append, by small ones past the merge size, and by an
    earlier process are all skipped by later small appends."""
    monkeypatch.setattr(event_ids_module, "MERGE_AT", 4)
    monkeypatch.setattr(store_module, "SMALL_APPEND", 5)

    def batch(lo: int, hi: int) -> pa.Table:
        return events_table([{"event_id": f"w{i}", "customer_id": f"c{i % 3}",
                              "ts": utc(2024, 1, 1) + timedelta(hours=i),
                              "event_type": "page_view"} for i in range(lo, hi)])

    assert store.append(batch(0, 8)).inserted == 8  # staged
    for lo in range(8, 20, 3):  # small, merged every 4
        assert store.append(batch(lo, lo + 3)).inserted == 3
    assert len(store.appender().ids) == 20
    assert store.append(batch(0, 4)).inserted == 0
    assert store.append(batch(18, 22)) == AppendResult(4, 2)
    store.close()
    with EventStore(store.path) as reopened:
        assert reopened.append(batch(20, 23)) == AppendResult(3, 1)
        assert reopened.count() == 23


# -- reads -----------------------------------------------------------------------------------------
@pytest.fixture
def history_store(store: EventStore) -> EventStore:
    def event(event_id: str, customer: str, ts: datetime, event_type: str) -> dict[str, object]:
        return {"event_id": event_id, "customer_id": customer, "ts": ts, "event_type": event_type}

    store.append(events_table([
        event("h3", "c1", utc(2024, 1, 3), "purchase"),
        event("h1", "c1", utc(2024, 1, 1), "page_view"),
        event("h2b", "c1", utc(2024, 1, 2), "checkout"),
        event("h2a", "c1", utc(2024, 1, 2), "add_to_cart"),
        event("x1", "c2", utc(2024, 1, 1, 12), "page_view"),
    ]))
    return store


def test_customer_history_is_oldest_first(history_store: EventStore) -> None:
    hist = history_store.customer_history("c1")
    assert hist.schema == EVENT_SCHEMA
    assert hist.column("event_id").to_pylist() == ["h1", "h2a", "h2b", "h3"]
    assert hist.column("ts").to_pylist() == [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 2),
                                             utc(2024, 1, 3)]
    assert history_store.customer_history("nobody").num_rows == 0


@pytest.mark.parametrize(
    "cutoff",
    [
        datetime(2024, 1, 2),  # naive: UTC
        utc(2024, 1, 2),
        datetime(2024, 1, 2, 1, tzinfo=timezone(timedelta(hours=1))),  # the same instant
    ],
)
def test_customer_history_before_is_strict(history_store: EventStore, cutoff: datetime) -> None:
    hist = history_store.customer_history("c1", before=cutoff)
    assert hist.column("event_id").to_pylist() == ["h1"]  # events AT the cutoff are excluded
    just_after = cutoff + timedelta(microseconds=1)
    assert history_store.customer_history("c1", before=just_after).column(
        "event_id").to_pylist() == ["h1", "h2a", "h2b"]


@pytest.mark.parametrize("cutoff", [datetime(2024, 1, 2), utc(2024, 1, 2)])
def test_events_before_excludes_the_cutoff(history_store: EventStore, cutoff: datetime) -> None:
    rel = history_store.events_before(cutoff)
    assert isinstance(rel, duckdb.DuckDBPyRelation)
    got = rel.order("event_id").to_arrow_table()
    assert got.column("event_id").to_pylist() == ["h1", "x1"]
    assert got.column_names == list(EVENT_FIELDS)
    assert history_store.events_before(utc(2024, 1, 1)).to_arrow_table().num_rows == 0
    assert history_store.events_before(utc(2030, 1, 1)).to_arrow_table().num_rows == 5


def test_time_range(history_store: EventStore, tmp_path: Path) -> None:
    assert history_store.time_range() == (datetime(2024, 1, 1), datetime(2024, 1, 3))
    with EventStore(tmp_path / "empty.duckdb") as empty:
        assert empty.time_range() == (None, None)
        assert empty.count() == 0


# -- the staged path -------------------------------------------------------------------------------
def test_staged_append_matches_small_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = events_table([
        {"event_id": f"id{i % 5}", "customer_id": f"c{i}", "ts": utc(2024, 1, 1 + i),
         "event_type": "page_view"}
        for i in range(8)
    ])
    # id0-id2 come back for other customers: conflicts on either path.
    with EventStore(tmp_path / "small.duckdb") as small:
        assert small.append(batch) == AppendResult(8, 5, conflicts=3)
        expected = rows(small)
    monkeypatch.setattr(store_module, "SMALL_APPEND", 2)
    with EventStore(tmp_path / "staged.duckdb") as staged:
        assert staged.append(batch) == AppendResult(8, 5, conflicts=3)
        assert rows(staged) == expected
        assert staged.append(batch) == AppendResult(8, 0, conflicts=3)
        assert index_names(staged) == set()


# -- failures and durability -----------------------------------------------------------------------
def test_failed_ingest_leaves_the_store_unchanged(
    store: EventStore, mixed_csv: Path, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    store.ingest(mixed_csv, identity_mapping(), taxonomy)
    before = rows(store)
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + "n1,c7,2024-02-01,page_view,,,,\n" * 3)
    (folder / "b.csv").write_text("event_id,user,ts,event_type\nn2,c8,2024-02-02,page_view\n")
    with pytest.raises(MappingError) as info:
        store.ingest(folder, identity_mapping(), taxonomy)
    assert str(folder / "b.csv") in str(info.value)
    assert rows(store) == before  # a.csv's rows were not committed either
    # The store is still usable, and nothing of the failed load lingers in staging.
    (folder / "b.csv").unlink()
    assert store.ingest(folder, identity_mapping(), taxonomy).append.inserted == 1
    assert store.count() == len(before) + 1


def test_store_reopened_from_disk_keeps_its_events(
    mixed_csv: Path, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    path = tmp_path / "nested" / "dir" / "events.duckdb"
    with EventStore(path) as s:
        s.ingest(mixed_csv, identity_mapping(), taxonomy)
        expected = rows(s)
    assert path.is_file()
    with EventStore(path) as s:
        assert s.count() == 6
        assert rows(s) == expected
        assert s.ingest(mixed_csv, identity_mapping(), taxonomy).append.inserted == 0
    with EventStore(path, read_only=True) as s:
        assert rows(s) == expected
        assert s.customer_history("c1").column("event_id").to_pylist() == ["e1", "e2"]


def test_read_only_store_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="event store not found"):
        EventStore(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_unopenable_store(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db.duckdb"
    path.write_text("this is not a duckdb file\n" * 100)
    with pytest.raises(StoreError, match="cannot open event store"):
        EventStore(path)

