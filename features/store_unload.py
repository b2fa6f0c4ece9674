"""Undoing a load: the events one `journey ingest` stored, removed by the number the ingest
log gives the load (`journey unload`). A load with the wrong mapping or the wrong file is
otherwise in the store for good, mixed with the right ones.

Only what that load stored goes: an event it ignored because an earlier load, or the API,
had stored it stays with them. Events the API stored carry no load number and are never
removed this way. The ingest log keeps the load's row, marked undone, so the store's
history still says what happened. Customer keys and vocabulary codes stay assigned (an id
with no event left is in no population or snapshot); attributes are loaded apart and stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from features.errors import StoreError
from features.transactions import rollback


@dataclass(frozen=True)
class LoadEntry:
    """A numbered load of the ingest log, and what of it is in the store now."""

    load_id: int
    source: str
    loaded_at: str
    inserted: int  # events it stored, as logged
    events: int  # of those, in the store now
    emptied: int  # customers all of whose events it stored: none left once it is undone


def find_load(con: duckdb.DuckDBPyConnection, load_id: int) -> LoadEntry:
    """The load numbered ``load_id``; a StoreError says why it cannot be undone."""
    row = con.execute(
        "SELECT source, CAST(loaded_at AS VARCHAR), inserted, CAST(undone_at AS VARCHAR) "
        "FROM ingest_log WHERE load_id = ?", [load_id]).fetchone()
    if row is None:
        raise StoreError(_unknown(con, load_id))
    source, loaded_at, inserted, undone_at = row
    if undone_at is not None:
        raise StoreError(f"load {load_id} ({source}) was undone already, at {undone_at}")
    counted = con.execute("""
        WITH mine AS (SELECT customer_key, count(*) AS n FROM events WHERE load_id = ?
                      GROUP BY customer_key)
        SELECT coalesce(sum(n), 0), count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM events e WHERE e.customer_key = mine.customer_key
                   AND e.load_id IS DISTINCT FROM ?))
        FROM mine""", [load_id, load_id]).fetchone()
    events, emptied = (int(v) for v in counted) if counted else (0, 0)
    return LoadEntry(load_id, str(source), str(loaded_at), int(inserted or 0), events, emptied)


def _unknown(con: duckdb.DuckDBPyConnection, load_id: int) -> str:
    row = con.execute("SELECT min(load_id), max(load_id), count(*) FILTER (WHERE load_id IS "
                      "NULL) FROM ingest_log").fetchone()
    low, high, unnumbered = row if row else (None, None, 0)
    known = (f"the numbered loads are {low} to {high}" if low is not None
             else "no load is numbered")
    older = (f"; {unnumbered:,} load(s) logged before loads were numbered cannot be undone"
             if unnumbered else "")
    return (f"no load numbered {load_id} in this store: {known}{older} "
            "(`journey summary` lists them)")


def undo_load(con: duckdb.DuckDBPyConnection, entry: LoadEntry) -> int:
    """Remove the events ``entry``'s load stored and mark its log row undone, in one
    transaction; how many events went."""
    con.execute("BEGIN TRANSACTION")
    try:
        cur = con.execute("DELETE FROM events WHERE load_id = ?", [entry.load_id])
        row = cur.fetchone()
        removed = int(row[0]) if row else 0
        con.execute("UPDATE ingest_log SET undone_at = current_timestamp, undone_events = ? "
                    "WHERE load_id = ?", [removed, entry.load_id])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    # The deleted rows' space is reclaimed at a checkpoint: now, not at some later writer's.
    con.execute("CHECKPOINT")
    return removed


def unload_lines(entry: LoadEntry, removed: int) -> list[str]:
    """What `journey unload` says once the load is undone."""
    emptied = (f"; {entry.emptied:,} customers had no other event and have none now"
               if entry.emptied else "")
    return [
        f"undid load {entry.load_id} ({entry.source}, loaded {entry.loaded_at}): removed "
        f"{removed:,} events{emptied}",
        "feature snapshots made from them are made again when next used (their data "
        "changed); models and score snapshots made before keep what they saw: "
        "train and score again (`journey retrain`, `journey score`) to drop them there",
    ]
