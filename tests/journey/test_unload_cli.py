"""`journey unload`: a load's events removed by its number, and only those; the ingest log
keeps the load, marked undone; events other loads or the API stored stay; a store made before
loads were numbered gains the column and says why its old loads cannot be undone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from features.schema import EVENT_SCHEMA
from features.store import EventStore
from tests.journey.cli_helpers import fails, ok, run
from tests.journey.ingest_helpers import stored

pytestmark = pytest.mark.usefixtures("isolated")
HEADER = "event_id,customer_id,ts,event_type,channel,value\n"


def write(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def loads(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A store with two loads (the second re-sends one event of the first) and one event
    the API appended, and the two files."""
    first = write(tmp_path / "first.csv", "a1,u1,2025-03-01T10:00:00Z,page_view,web,",
                  "a2,u1,2025-03-02T10:00:00Z,purchase,web,20")
    second = write(tmp_path / "second.csv", "a2,u1,2025-03-02T10:00:00Z,purchase,web,20",
                   "b1,u2,2025-03-03T10:00:00Z,page_view,email,",
                   "b2,u1,2025-03-04T10:00:00Z,page_view,email,")
    store = tmp_path / "s.duckdb"
    assert ok("ingest", first, "--store", store)[-1].startswith(
        f"store {store}: load 1 (`journey unload 1` undoes it), ")
    ok("ingest", second, "--store", store)
    api = pa.Table.from_pylist([{"event_id": "x1", "customer_id": "u2",
                                 "ts": datetime(2025, 3, 5, tzinfo=UTC),
                                 "event_type": "page_view", "channel": "web"}],
                               schema=EVENT_SCHEMA)
    with EventStore(store) as es:
        assert es.append(api).inserted == 1
    return store, first, second


def ids(store: Path) -> list[str]:
    return sorted(e["event_id"] for e in stored(store))


def test_unload_removes_what_that_load_stored_and_nothing_else(
        loads: tuple[Path, Path, Path]) -> None:
    store, _, second = loads
    assert ids(store) == ["a1", "a2", "b1", "b2", "x1"]
    lines = ok("unload", "2", "--store", store, "--yes")
    assert lines[0].startswith(f"load 2: {second}, loaded ")
    assert lines[0].endswith(": 2 of its 2 events are in the store")
    assert lines[1].startswith(f"undid load 2 ({second}, loaded ")
    assert lines[1].endswith("removed 2 events")
    # a2 was the first load's (the second ignored it), x1 the API's: both stay.
    assert ids(store) == ["a1", "a2", "x1"]

    summary = ok("summary", "--store", store)
    log = summary[summary.index("recent loads (newest first):") + 1:]
    assert log[0].startswith(f"  #2 {second}: read 3, stored 2 new, 1 duplicates")
    assert log[1].startswith("    undone at ") and log[1].endswith(
        "(`journey unload`): 2 events removed")
    assert log[2].startswith("  #1 ")


def test_a_load_undone_can_be_loaded_again(loads: tuple[Path, Path, Path]) -> None:
    store, _, second = loads
    ok("unload", "2", "--store", store, "--yes")
    again = ok("ingest", second, "--store", store)
    assert "stored 2 new events; 1 already stored or repeated (ignored by event_id)" in again
    assert again[-1].startswith(f"store {store}: load 3 ")
    assert ids(store) == ["a1", "a2", "b1", "b2", "x1"]


def test_unload_says_why_it_cannot(loads: tuple[Path, Path, Path]) -> None:
    store, first, _ = loads
    assert "no load numbered 7 in this store: the numbered loads are 1 to 2 " in fails(
        "unload", "7", "--store", store, "--yes")
    ok("unload", "1", "--store", store, "--yes")
    assert f"load 1 ({first}) was undone already, at " in fails(
        "unload", "1", "--store", store, "--yes")


def test_without_yes_and_no_terminal_nothing_is_removed(loads: tuple[Path, Path, Path]) -> None:
    store = loads[0]
    result = run("unload", "2", "--store", store)
    assert result.exit_code == 2
    assert "not removing 2 events without a yes: pass --yes" in result.stderr
    assert ids(store) == ["a1", "a2", "b1", "b2", "x1"]


def test_the_customer_left_without_events_is_counted(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    ok("ingest", write(tmp_path / "a.csv", "a1,u1,2025-03-01T10:00:00Z,page_view,web,"),
       "--store", store)
    ok("ingest", write(tmp_path / "b.csv", "b1,u1,2025-03-02T10:00:00Z,page_view,web,",
                       "b2,u9,2025-03-02T10:00:00Z,page_view,web,"), "--store", store)
    lines = ok("unload", "2", "--store", store, "--yes")
    assert lines[0].endswith(" (1 customers have no other event)")
    assert "removed 2 events; 1 customers had no other event and have none now" in lines[1]
    with EventStore(store, read_only=True) as es:
        assert es.con.execute("SELECT count(DISTINCT customer_id) FROM events").fetchone() == (1,)


def test_a_store_from_before_loads_were_numbered(tmp_path: Path) -> None:
    """Its events and log rows have no number: they stay, and a new load gets one."""
    store = tmp_path / "old.duckdb"
    con = duckdb.connect(str(store))
    con.execute("CREATE TABLE events (event_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, "
                "ts TIMESTAMPTZ NOT NULL, event_type VARCHAR NOT NULL, channel VARCHAR NOT "
                "NULL, value DOUBLE, action VARCHAR, properties VARCHAR, customer_key INTEGER "
                "NOT NULL, event_type_code INTEGER NOT NULL, channel_code INTEGER NOT NULL, "
                "action_code INTEGER)")
    con.execute("CREATE TABLE customers (customer_key INTEGER NOT NULL, customer_id VARCHAR "
                "NOT NULL)")
    con.execute("CREATE TABLE vocab (kind VARCHAR NOT NULL, name VARCHAR NOT NULL, code "
                "INTEGER NOT NULL)")
    con.execute("INSERT INTO customers VALUES (0, 'u0')")
    con.execute("INSERT INTO vocab VALUES ('event_type', 'page_view', 0), ('channel', 'web', 0)")
    con.execute("INSERT INTO events VALUES ('o1', 'u0', '2025-01-01 00:00:00+00', 'page_view', "
                "'web', NULL, NULL, NULL, 0, 0, 0, NULL)")
    con.execute("CREATE TABLE ingest_log (loaded_at TIMESTAMPTZ NOT NULL DEFAULT "
                "current_timestamp, source VARCHAR NOT NULL, rows_read BIGINT, valid BIGINT, "
                "rejected BIGINT, inserted BIGINT, duplicates BIGINT, rejects_path VARCHAR, "
                "reject_reasons VARCHAR)")
    con.execute("INSERT INTO ingest_log (source, rows_read, valid, rejected, inserted, "
                "duplicates, reject_reasons) VALUES ('old.csv', 1, 1, 0, 1, 0, '{}')")
    con.close()

    new = ok("ingest", write(tmp_path / "n.csv", "n1,u1,2025-03-01T10:00:00Z,page_view,web,"),
             "--store", store)
    assert new[-1].startswith(f"store {store}: load 1 ")
    message = fails("unload", "2", "--store", store, "--yes")
    assert ("the numbered loads are 1 to 1; 1 load(s) logged before loads were numbered "
            "cannot be undone") in " ".join(message.split())
    ok("unload", "1", "--store", store, "--yes")
    assert ids(store) == ["o1"]
    summary = ok("summary", "--store", store)
    assert "  old.csv: read 1, stored 1 new, 0 duplicates, 0 rejected {}" in summary
