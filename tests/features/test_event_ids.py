"""EventIds: the writer's hashes of stored event ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import features.event_ids as event_ids_module
from features.event_ids import EventIds, add_hash_column, id_hashes, stored_ids
from features.rows import VALUES_ROWS
from features.schema import EVENT_SCHEMA
from features.store import SMALL_APPEND, EventStore


def _ids_table(con: duckdb.DuckDBPyConnection) -> None:
    """An events table of ids and their stored hashes."""
    con.execute("CREATE TABLE events (event_id VARCHAR, "
                "id_hash UBIGINT AS (md5_number_upper(event_id)))")


def test_an_empty_store_holds_nothing() -> None:
    ids = EventIds(np.array([], np.uint64))
    assert len(ids) == 0
    assert not ids.maybe_stored(np.array([0, 1, 2**64 - 1], np.uint64)).any()


def test_membership_in_the_array_the_recent_set_and_after_a_merge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(event_ids_module, "MERGE_AT", 3)
    ids = EventIds(np.array([50, 10, 2**64 - 1], np.uint64))
    probe = np.array([10, 11, 50, 2**64 - 1, 0, 7], np.uint64)
    assert ids.maybe_stored(probe).tolist() == [True, False, True, True, False, False]
    ids.add(np.array([11, 0], np.uint64))  # recent, not merged yet
    assert ids.maybe_stored(probe).tolist() == [True, True, True, True, True, False]
    ids.add(np.array([7], np.uint64))  # the third recent one: merged into the array
    assert ids.maybe_stored(probe).all() and len(ids) == 6


def test_loaded_hashes_match_the_hashes_of_incoming_ids() -> None:
    con = duckdb.connect()
    _ids_table(con)
    con.execute("INSERT INTO events VALUES ('a'), ('b'), ('é-ü')")
    ids = EventIds.load(con)
    got = ids.maybe_stored(id_hashes(["a", "é-ü", "c"]))
    assert got.tolist() == [True, True, False]
    assert stored_ids(con, ["a", "c", "é-ü"]) == {"a", "é-ü"}
    assert stored_ids(con, []) == set()


def test_python_hashes_ids_as_duckdb_does_at_load() -> None:
    """A request's ids are hashed in Python, the stored ones by DuckDB: the two must agree on
    every id, or a re-sent event would be stored twice."""
    con = duckdb.connect()
    sample = ["a", "", "é-ü", "日本語-イベント", "🙂" * 40, "x" * 5000, "tab\there", "e-123"]
    want = con.execute("SELECT md5_number_upper(e) FROM unnest(?::VARCHAR[]) t(e)",
                       [sample]).fetchall()
    assert id_hashes(sample).tolist() == [int(r[0]) for r in want]
    assert id_hashes([]).dtype == np.uint64 and len(id_hashes([])) == 0


def test_a_load_is_sorted_however_the_rows_lie() -> None:
    """The store sorts the hashes as it reads them; the array must be ascending for the binary
    search, with large hashes (the top bit set) after small ones, as unsigned integers."""
    con = duckdb.connect()
    _ids_table(con)
    names = [f"e{i}" for i in range(5_000)]
    con.execute("INSERT INTO events SELECT unnest(?::VARCHAR[])", [names[::-1]])
    ids = EventIds.load(con)
    assert (ids._sorted[1:] >= ids._sorted[:-1]).all()
    assert ids._sorted[0] < 2**63 <= ids._sorted[-1]
    assert ids.maybe_stored(id_hashes(names)).all()
    assert not ids.maybe_stored(id_hashes([f"x{i}" for i in range(200)])).any()
    shuffled = EventIds(np.array([5, 2**64 - 2, 0, 7], np.uint64))  # given unsorted: sorted
    assert shuffled._sorted.tolist() == [0, 5, 7, 2**64 - 2]


def test_a_store_made_before_stored_hashes_gets_them_once(tmp_path: Path) -> None:
    """An older store's events gain their hashes when it is first opened for writing, said in
    one line; a store that has them is left alone, and the column refuses a missing hash."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE events (event_id VARCHAR NOT NULL, load_id INTEGER)")
    con.execute("INSERT INTO events SELECT 'old-' || i, NULL FROM range(3000) t(i)")
    said: list[str] = []
    add_hash_column(con, said.append)
    assert len(said) == 1 and "3,000 events" in said[0]
    cols = con.execute("SELECT column_name FROM information_schema.columns "
                       "WHERE table_name = 'events'").fetchall()
    assert [c[0] for c in cols] == ["event_id", "load_id", "id_hash"]
    bad = con.execute("SELECT count(*) FROM events WHERE id_hash IS DISTINCT FROM "
                      "md5_number_upper(event_id)").fetchone()
    assert bad == (0,)
    add_hash_column(con, said.append)
    assert len(said) == 1
    with pytest.raises(duckdb.ConstraintException, match="id_hash"):
        con.execute("INSERT INTO events (event_id) VALUES ('no-hash')")
    assert EventIds.load(con).maybe_stored(id_hashes(["old-0", "old-2999"])).all()


def test_a_fill_cut_short_is_finished_at_the_next_open() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE events (event_id VARCHAR NOT NULL, id_hash UBIGINT)")
    con.execute("INSERT INTO events VALUES ('a', md5_number_upper('a')), ('b', NULL)")
    said: list[str] = []
    add_hash_column(con, said.append)
    assert "1 events" in said[0]
    assert EventIds.load(con).maybe_stored(id_hashes(["a", "b"])).all()


def test_every_insert_path_stores_the_id_hash(tmp_path: Path) -> None:
    """A load (staged, hashed by DuckDB), and the writer's few-row VALUES and Arrow inserts
    (hashed in Python): each stored hash is the one a later request's id is checked against."""
    def batch(lo: int, hi: int) -> pa.Table:
        return pa.Table.from_pylist(
            [{"event_id": f"p{i}-é", "customer_id": f"c{i % 7}",
              "ts": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i),
              "event_type": "page_view", "channel": "web"} for i in range(lo, hi)],
            schema=EVENT_SCHEMA)

    with EventStore(tmp_path / "events.duckdb") as store:
        assert store.append(batch(0, SMALL_APPEND + 1)).inserted == SMALL_APPEND + 1  # staged
        first = SMALL_APPEND + 1
        assert store.append(batch(first, first + 3)).inserted == 3  # VALUES
        assert store.append(batch(first + 3, first + 3 + VALUES_ROWS + 1)).inserted \
            == VALUES_ROWS + 1  # Arrow
        got = store.con.execute("SELECT event_id, id_hash FROM events").fetchall()
    assert len(got) == first + 3 + VALUES_ROWS + 1
    assert [h for _, h in got] == id_hashes([e for e, _ in got]).tolist()
