"""EventIds: the writer's hashes of stored event ids."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

import features.event_ids as event_ids_module
from features.event_ids import EventIds, id_hashes, stored_ids


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
    con.execute("CREATE TABLE events (event_id VARCHAR)")
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
    con.execute("CREATE TABLE events (event_id VARCHAR)")
    names = [f"e{i}" for i in range(5_000)]
    con.execute("INSERT INTO events SELECT unnest(?::VARCHAR[])", [names[::-1]])
    ids = EventIds.load(con)
    assert (ids._sorted[1:] >= ids._sorted[:-1]).all()
    assert ids._sorted[0] < 2**63 <= ids._sorted[-1]
    assert ids.maybe_stored(id_hashes(names)).all()
    assert not ids.maybe_stored(id_hashes([f"x{i}" for i in range(200)])).any()
    shuffled = EventIds(np.array([5, 2**64 - 2, 0, 7], np.uint64))  # given unsorted: sorted
    assert shuffled._sorted.tolist() == [0, 5, 7, 2**64 - 2]
