"""Event ids reused by a different event: counted apart from re-sends, listed beside the rejects
file, warned about; what the store holds never changes. And stores that are not DuckDB files."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import StoreError
from features.mapping import identity_mapping
from features.store import EventStore
from features.store_conflicts import EARLIER, STORED, conflicts_path
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.duckdb") as s:
        yield s


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def stored(s: EventStore) -> list[tuple[object, ...]]:
    return s.con.execute("SELECT event_id, customer_id, CAST(ts AS VARCHAR), event_type, value "
                         "FROM events ORDER BY event_id").fetchall()


def test_conflicts_are_counted_written_and_warned_about(
    store: EventStore, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "e1,c1,2024-01-01T10:00:00Z,purchase,,20,,\n")
    store.ingest(first, identity_mapping(), taxonomy)
    before = stored(store)
    second = tmp_path / "second.csv"
    second.write_text(
        HEADER
        + "e1,c1,2024-01-01T10:00:00Z,purchase,,20,,\n"   # re-send of a stored event
        + "e1,c2,2024-01-01T10:00:00Z,purchase,,20,,\n"   # stored id, other customer
        + "n1,c3,2024-02-01T10:00:00Z,page_view,,,,\n"    # new
        + "n1,c3,2024-02-01T10:00:00Z,page_view,,,,\n"    # repeated in the load
        + "n1,c3,2024-02-02T10:00:00Z,purchase,,5,,\n"    # id used earlier, other time/type
        + "n1,c3,2024-02-02T10:00:00Z,purchase,,5,,\n"    # the same conflict again
    )
    rejects = tmp_path / "rejects" / "second.csv"
    report = store.ingest(second, identity_mapping(), taxonomy, rejects)
    append = report.append
    assert (append.inserted, append.duplicates, append.resent, append.conflicts) == (1, 5, 2, 3)
    assert stored(store) == [*before, ("n1", "c3", "2024-02-01 10:00:00+00", "page_view", None)]
    lines = report.lines()
    assert lines[-2] == ("stored 1 new events; 5 already stored or repeated (ignored by "
                         "event_id), 3 of them conflicting (event_id of a different event)")
    assert lines[-1].startswith("warning: 3 rows reuse the event_id of a different event")
    listed = rejects.parent / "second.conflicts.csv"
    assert conflicts_path(rejects) == listed
    assert lines[-1].endswith(f"listed in {listed}")
    assert not rejects.exists()  # that file holds the rows the load rejected: none
    assert read_csv(listed) == [
        {"source": str(second), "line": "3", "field": "event_id",
         "reason": f"{STORED}: differs in customer_id", "value": "e1"},
        *[{"source": str(second), "line": line, "field": "event_id",
           "reason": f"{EARLIER}: differs in ts, event_type, value", "value": "n1"}
          for line in ("6", "7")],
    ]
    [latest] = store.ingest_log(1)
    assert (latest["inserted"], latest["duplicates"], latest["conflicts"]) == (1, 5, 3)


def test_conflicts_are_listed_apart_from_the_rejected_rows(
    store: EventStore, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    source = tmp_path / "s.csv"
    source.write_text(HEADER + "a,c1,2024-01-01,page_view,,,,\n" + "b,c1,bad,page_view,,,,\n"
                      + "a,c2,2024-01-01,page_view,,,,\n")
    rejects = tmp_path / "r.csv"
    report = store.ingest(source, identity_mapping(), taxonomy, rejects)
    assert (report.load.rejected_total, report.append.conflicts) == (1, 1)
    assert [(r["line"], r["reason"]) for r in read_csv(rejects)] == [("3", "unparseable timestamp")]
    assert [(r["line"], r["reason"]) for r in read_csv(conflicts_path(rejects))] == [
        ("4", f"{EARLIER}: differs in customer_id")]


def test_each_conflict_is_listed_at_its_own_file_and_line(
    store: EventStore, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    """A directory load: the line is counted in the conflicting row's own file, past rejected
    rows and a quoted field over two lines, and in a JSON lines file too."""
    folder = tmp_path / "load"
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + "a,c1,2024-01-01,page_view,,,,\n"
                                  + "b,c1,2024-01-02,page_view,,,,\n")
    (folder / "b.csv").write_text(HEADER + "x,c1,bad,page_view,,,,\n"
                                  + 'y,c1,2024-01-03,page_view,,,,"{""note"":\n""two lines""}"\n'
                                  + "b,c9,2024-01-02,page_view,,,,\n")
    (folder / "c.jsonl").write_text(
        '{"event_id": "z", "customer_id": "c1", "ts": "2024-01-04", "event_type": "page_view"}\n'
        '{"event_id": "a", "customer_id": "c1", "ts": "2024-01-05", "event_type": "page_view"}\n')
    rejects = tmp_path / "r.csv"
    report = store.ingest(folder, identity_mapping(), taxonomy, rejects)
    assert (report.append.inserted, report.append.conflicts) == (4, 2)
    assert [(Path(r["source"]).name, r["line"], r["value"], r["reason"])
            for r in read_csv(conflicts_path(rejects))] == [
        ("b.csv", "5", "b", f"{EARLIER}: differs in customer_id"),
        ("c.jsonl", "2", "a", f"{EARLIER}: differs in ts"),
    ]


def test_a_clean_load_reports_no_conflicts(store: EventStore, taxonomy: Taxonomy,
                                           tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text(HEADER + "a,c1,2024-01-01,page_view,,,,\n" * 2)
    rejects = tmp_path / "r.csv"
    report = store.ingest(source, identity_mapping(), taxonomy, rejects)
    assert (report.append.inserted, report.append.resent, report.append.conflicts) == (1, 1, 0)
    assert not any(line.startswith("warning") for line in report.lines())
    assert not rejects.exists()
    assert not conflicts_path(rejects).exists()


def test_an_older_ingest_log_gains_the_conflicts_column(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with EventStore(path) as s:
        s.con.execute("ALTER TABLE ingest_log DROP COLUMN conflicts")
        s.con.execute("INSERT INTO ingest_log (source) VALUES ('old.csv')")
    with EventStore(path, read_only=True) as s:  # a reader never alters the store
        assert [e["conflicts"] for e in s.ingest_log()] == [None]
    with EventStore(path) as s:
        assert [e["source"] for e in s.ingest_log()] == ["old.csv"]
        assert s.con.execute("SELECT count(*) FROM information_schema.columns WHERE "
                             "table_name = 'ingest_log' AND column_name = 'conflicts'"
                             ).fetchone() == (1,)


# -- stores that are not DuckDB databases ----------------------------------------------------------
@pytest.mark.parametrize("read_only", [False, True])
def test_a_csv_file_is_not_opened_as_a_store(tmp_path: Path, read_only: bool) -> None:
    path = tmp_path / "events.csv"
    text = HEADER + "m1,v1,2024-01-01T10:00:00Z,purchase,email,99.5,,\n"
    path.write_text(text)
    with pytest.raises(StoreError) as info:
        EventStore(path, read_only=read_only)
    assert str(info.value) == (f"cannot open event store {path}: not a DuckDB database (its "
                               "header is not DuckDB's); name a .duckdb store, or a path that "
                               "does not exist yet")
    assert path.read_text() == text


def test_a_parquet_file_is_not_opened_as_a_store(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table({"event_id": ["m1"]}), path)
    with pytest.raises(StoreError, match=r"not a DuckDB database \(a Parquet file\)"):
        EventStore(path)


def test_an_empty_file_keeps_duckdbs_reason(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    path.touch()
    with pytest.raises(StoreError, match=r"cannot open event store .*not a valid DuckDB database"):
        EventStore(path)


def test_a_duckdb_file_made_elsewhere_opens(tmp_path: Path) -> None:
    path = tmp_path / "plain.duckdb"
    duckdb.connect(str(path)).close()
    with EventStore(path) as s:
        assert s.count() == 0
