"""Event ids reused by a different event: found after an append, reported, never stored.

An explicit event_id is an identity: a row repeating a stored id is a re-send and changes
nothing. A row whose id is already used by another event (other customer, time, type...) is
not stored either (the store is append-only), but it is data lost, so it is counted apart from
the re-sends and, for a load, listed beside its rejects file (``conflicts_path``): in the same
columns (source, line, field, reason, value), but not in that file, which holds exactly the rows
the load rejected. A load stages each row with its line, so a conflict found after staging is
still reported where it is in its file.
"""

from __future__ import annotations

import csv
from bisect import bisect_right
from pathlib import Path

import duckdb
import pyarrow as pa

from features.loaders import REJECT_HEADER
from features.normalize import DERIVED_ID
from features.readers import LINE_COLUMN
from features.schema import EVENT_FIELDS

CONTENT = EVENT_FIELDS[1:]  # what must match for a repeated id to be a re-send
STORED = "event_id already stored for a different event"
# A load stores, of the rows sharing an id, the smallest by (ts, customer_id, event_type, ...),
# whatever their order in the file (features.store.CONTENT_ORDER).
EARLIER = "event_id also used in this load by a different event, which was stored"


# Fields two spellings of one event may write apart, as the store's read of them: properties
# as minified JSON (a file's {"csat": "2"} is the service's {"csat":"2"}; DuckDB's json() also
# writes 1e2 as 100.0 and \u00e9 as é), an action trimmed with blank as none (as
# features.normalize.normal_action reads it). Text that is not JSON is compared as it is.
_WS = "' ' || chr(9) || chr(10) || chr(13)"
_READ = {
    "properties": "CASE WHEN json_valid({0}.properties) THEN CAST(json({0}.properties) AS VARCHAR)"
                  " ELSE {0}.properties END",
    "action": f"nullif(trim({{0}}.action, {_WS}), '')",
}


def _distinct(f: str, a: str, b: str) -> str:
    """SQL: true when field ``f`` of rows ``a`` and ``b`` holds another value; fields in
    _READ are read alike first, and only when their text differs (CASE evaluates the
    branch for those rows only)."""
    plain = f"{a}.{f} IS DISTINCT FROM {b}.{f}"
    read = _READ.get(f)
    if read is None:
        return plain
    return (f"(CASE WHEN {a}.{f} IS NOT DISTINCT FROM {b}.{f} THEN false "
            f"ELSE {read.format(a)} IS DISTINCT FROM {read.format(b)} END)")


def _differs(a: str, b: str) -> str:
    return " OR ".join(_distinct(f, a, b) for f in CONTENT)


def _which_differ(a: str, b: str) -> str:
    return "concat_ws(', ', " + ", ".join(
        f"CASE WHEN {_distinct(f, a, b)} THEN '{f}' END" for f in CONTENT) + ")"


# Run once the staged rows are inserted: every explicit id of the load is then stored, as the
# event that won (stored before, or the load's row of that id that won), so a staged row differing
# from the stored event of its id conflicts. The table is append-only: rows past the rowid it
# ended at before the load are the load's own. Derived ids come from the content: never a
# conflict.
STAGED_CONFLICTS = f"""
SELECT s.rowid AS r, s.{LINE_COLUMN} AS line, s.event_id, {_which_differ('s', 'e')} AS fields,
       e.rowid > ? AS in_load
FROM staged s JOIN events e USING (event_id)
WHERE NOT s.{DERIVED_ID} AND ({_differs('s', 'e')})
ORDER BY r
"""


def staged_conflicts(con: duckdb.DuckDBPyConnection, last_rowid: int) -> pa.Table:
    """(r: staged row, line: its line in its file, event_id, fields: those that differ,
    in_load: the id's event came with this load) of every conflicting row, in staged order;
    call after the staged rows were inserted (``last_rowid``: the events table's before),
    while staged is still there."""
    return con.execute(STAGED_CONFLICTS, [last_rowid]).to_arrow_table()


def differing_ids(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> list[tuple[str, str]]:
    """(event_id, the fields that differ) of each row of ``batch`` whose id the store holds
    for a different event, in the batch's order (rows just appended match themselves). On a
    cursor of its own, so the service can ask after the commit, outside its writer's thread,
    and only for the rows that were not inserted (it does not count while appending: a scan
    under the write lock)."""
    cur = con.cursor()  # another thread's connection may be appending meanwhile
    try:
        cur.register("resent_events", batch.select(list(EVENT_FIELDS)).append_column(
            "_pos", pa.array(range(batch.num_rows), pa.int64())))
        rows = cur.execute(
            f"SELECT s.event_id, {_which_differ('s', 'e')} AS fields FROM resent_events s "
            f"JOIN events e USING (event_id) WHERE {_differs('s', 'e')} ORDER BY s._pos"
        ).fetchall()
    finally:
        cur.close()
    return [(str(event_id), str(fields)) for event_id, fields in rows]


def conflicts_path(rejects: Path) -> Path:
    """Where a load's conflicting rows go: beside its rejects file (r.csv -> r.conflicts.csv)."""
    return rejects.with_name(f"{rejects.stem}.conflicts.csv")


def write_conflicts(path: Path, conflicts: pa.Table, sources: list[tuple[int, str]]) -> None:
    """The conflicting rows in the rejects file's columns (source, line, field, reason, value).
    ``sources``: (first staged row, file) of each batch."""
    starts = [start for start, _ in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8", errors="replace") as fh:
        writer = csv.DictWriter(fh, fieldnames=REJECT_HEADER)
        writer.writeheader()
        for row in conflicts.to_pylist():
            at = bisect_right(starts, int(row["r"])) - 1
            reason = EARLIER if row["in_load"] else STORED
            line = "" if row["line"] is None else row["line"]
            writer.writerow({"source": sources[at][1] if at >= 0 else "", "line": line,
                             "field": "event_id", "reason": f"{reason}: differs in {row['fields']}",
                             "value": row["event_id"]})
