"""Appending a request's worth of events to the store (the service's ingest path).

Each DuckDB statement costs 1-8 ms whatever its size, and joining a batch to the customers
table scans it; a file load (``EventStore.ingest``) can afford its twelve statements, a
request cannot. Here keys, codes and already stored event ids are looked up by index, new keys
and codes assigned in Python, and the finished rows inserted: 4-5 short statements, ~3 ms for
one event. Call inside the store's write path; the caller owns nothing else of the transaction.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import CODED_FIELDS, EVENT_FIELDS, EVENT_SCHEMA


def append_rows(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> pa.Table:
    """Insert the events of ``batch`` (event schema) whose event_id is new, in one
    transaction; the first of repeated ids wins. Returns the rows inserted."""
    received = batch.num_rows
    if pc.count_distinct(batch["event_id"]).as_py() != received:  # first repeat wins
        numbered = batch.append_column("_row", pa.array(np.arange(received)))
        first = numbered.group_by("event_id", use_threads=False).aggregate([("_row", "min")])
        batch = batch.take(np.sort(first["_row_min"].to_numpy()))
    con.execute("BEGIN TRANSACTION")
    try:
        keys = _customer_keys(con, pc.unique(batch["customer_id"]).to_pylist())
        codes = _codes(con, batch)
        coded = batch.append_column(
            "customer_key", pa.array([keys[c] for c in batch["customer_id"].to_pylist()],
                                     pa.int32()))
        for kind, column in CODED_FIELDS.items():
            values = [None if v is None else codes[kind][v]
                      for v in batch[kind].to_pylist()]
            coded = coded.append_column(column, pa.array(values, pa.int32()))
        ids = coded["event_id"].to_pylist()
        stored = _stored_ids(con, ids)
        new = coded.filter(pa.array([e not in stored for e in ids], pa.bool_()))
        _insert(con, new)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    inserted: pa.Table = new.select(list(EVENT_FIELDS)).cast(EVENT_SCHEMA)
    return inserted


def _stored_ids(con: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    """Which of these event ids are stored already (unique-index lookups)."""
    found: set[str] = set()
    for i in range(0, len(ids), 256):
        chunk = ids[i : i + 256]
        marks = ", ".join("?" * len(chunk))
        found.update(r[0] for r in con.execute(
            f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk).fetchall())
    return found

def _insert(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """Insert finished rows: a few as one VALUES statement (an Arrow scan costs ~4 ms of
    set-up), more from the Arrow batch."""
    if rows.num_rows == 0:
        return
    if rows.num_rows <= 64:
        width = rows.num_columns
        marks = ", ".join(["(" + ", ".join("?" * width) + ")"] * rows.num_rows)
        params = [v for row in rows.to_pylist() for v in row.values()]
        con.execute(f"INSERT INTO events VALUES {marks}", params)
        return
    con.register("incoming", rows)
    try:
        con.execute("INSERT INTO events SELECT * FROM incoming")
    finally:
        con.unregister("incoming")

def _customer_keys(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, int]:
    """Keys of these customers by index lookups; new customers get the next keys."""
    keys: dict[str, int] = {}
    for i in range(0, len(ids), 256):
        chunk = ids[i : i + 256]
        marks = ", ".join("?" * len(chunk))
        keys.update(con.execute(
            f"SELECT customer_id, customer_key FROM customers WHERE customer_id IN ({marks})",
            chunk).fetchall())
    new = sorted(set(ids) - keys.keys())
    if new:
        row = con.execute("SELECT coalesce(max(customer_key), -1) FROM customers")
        top = int(row.fetchone()[0])  # type: ignore[index]
        fresh = {c: top + 1 + k for k, c in enumerate(new)}
        con.execute("INSERT INTO customers SELECT unnest(?::INTEGER[]), "
                         "unnest(?::VARCHAR[])",
                         [list(fresh.values()), list(fresh)])
        keys.update(fresh)
    return keys

def _codes(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> dict[str, dict[str, int]]:
    """Each coded field's codes (one small query); names not seen before get new codes."""
    codes: dict[str, dict[str, int]] = {kind: {} for kind in CODED_FIELDS}
    for kind, name, code in con.execute("SELECT kind, name, code FROM vocab").fetchall():
        codes[kind][name] = int(code)
    for kind, known in codes.items():
        new = sorted(set(pc.unique(batch[kind]).drop_null().to_pylist()) - known.keys())
        if new:
            top = max(known.values(), default=-1)
            fresh = {n: top + 1 + k for k, n in enumerate(new)}
            con.execute("INSERT INTO vocab SELECT ?, unnest(?::VARCHAR[]), "
                             "unnest(?::INTEGER[])",
                             [kind, list(fresh), list(fresh.values())])
            known.update(fresh)
    return codes

