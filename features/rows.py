"""Appending a request's worth of events to the store (the service's ingest path).

Each DuckDB statement costs 0.3-8 ms whatever its size, and joining a batch to the customers
table scans it; a file load (``EventStore.ingest``) can afford its twelve statements, a
request cannot. Here keys and codes are looked up by index and the event ids hashed in one
statement, new keys and codes assigned in Python, and the finished rows inserted: for known
customers and codes two statements (the INSERT commits on its own, so its rows are all or
none). The hashes settle which ids are new against the writer's set of stored ids
(features/event_ids.py); only a matching hash costs a look at the table. The lookup runs before any
transaction: the store has one writer, the caller, which must hold its write path for the
whole call.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.event_ids import EventIds, stored_ids
from features.schema import CODED_FIELDS, EVENT_FIELDS, EVENT_SCHEMA


def append_rows(con: duckdb.DuckDBPyConnection, batch: pa.Table, known: EventIds) -> pa.Table:
    """Insert the events of ``batch`` (event schema) whose event_id is new, all or none; the
    first of repeated ids wins. Returns the rows inserted.

    Known customers and codes (the usual request) cost two statements: one lookup, and the
    INSERT, which commits on its own. New customers or codes are written with the events in
    one transaction. Statements are what an ingest costs under load: each releases the GIL
    and takes it back, and behind a busy event loop every take can wait a switch interval."""
    received = batch.num_rows
    if pc.count_distinct(batch["event_id"]).as_py() != received:  # first repeat wins
        numbered = batch.append_column("_row", pa.array(np.arange(received)))
        first = numbered.group_by("event_id", use_threads=False).aggregate([("_row", "min")])
        batch = batch.take(np.sort(first["_row_min"].to_numpy()))
    ids = batch["event_id"].to_pylist()
    keys, codes, hashes = _lookup(con, pc.unique(batch["customer_id"]).to_pylist(), ids)
    maybe = known.maybe_stored(hashes)
    stored = stored_ids(con, [ids[i] for i in np.flatnonzero(maybe)]) if maybe.any() else set()
    keep = np.array([e not in stored for e in ids], bool)
    new = batch.filter(pa.array(keep))
    fresh_customers = sorted(set(new["customer_id"].to_pylist()) - keys.keys())
    fresh_codes = {kind: sorted(set(pc.unique(new[kind]).drop_null().to_pylist()) - known.keys())
                   for kind, known in codes.items()}
    if not fresh_customers and not any(fresh_codes.values()):
        coded = _coded(new, keys, codes)
        _insert(con, coded)  # one statement: its own transaction
    else:
        con.execute("BEGIN TRANSACTION")
        try:
            _add_customers(con, fresh_customers, keys)
            _add_codes(con, fresh_codes, codes)
            coded = _coded(new, keys, codes)
            _insert(con, coded)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    known.add(hashes[keep])  # committed: from here on these ids are stored
    inserted: pa.Table = coded.select(list(EVENT_FIELDS)).cast(EVENT_SCHEMA)
    return inserted


# Row tags of the lookup that are not vocabulary kinds.
_CUSTOMER, _EVENT = "~customer", "~event"


def _lookup(con: duckdb.DuckDBPyConnection, customers: list[str], ids: list[str]
            ) -> tuple[dict[str, int], dict[str, dict[str, int]], np.ndarray]:
    """Keys of these customers, every vocabulary code, and the hashes of the (distinct) event
    ids in their order, in one statement per 256 ids (unique-index lookups of customers; the
    vocabulary is a few dozen rows)."""
    keys: dict[str, int] = {}
    codes: dict[str, dict[str, int]] = {kind: {} for kind in CODED_FIELDS}
    hashed: dict[str, int] = {}
    for k in range(max(1, -(-max(len(customers), len(ids)) // 256))):
        cs, es = customers[k * 256:(k + 1) * 256], ids[k * 256:(k + 1) * 256]
        parts = ["SELECT kind, name, code FROM vocab"] if k == 0 else []
        if cs:
            parts.append(f"SELECT '{_CUSTOMER}', customer_id, customer_key FROM customers "
                         f"WHERE customer_id IN ({', '.join('?' * len(cs))})")
        if es:
            parts.append(f"SELECT '{_EVENT}', e, hash(e) FROM unnest(?::VARCHAR[]) t(e)")
        params: list[object] = [*cs, es] if es else list(cs)
        for kind, name, code in con.execute(" UNION ALL ".join(parts), params).fetchall():
            if kind == _CUSTOMER:
                keys[name] = int(code)
            elif kind == _EVENT:
                hashed[name] = int(code)
            else:
                codes[kind][name] = int(code)
    return keys, codes, np.array([hashed[e] for e in ids], np.uint64)


def _coded(rows: pa.Table, keys: dict[str, int], codes: dict[str, dict[str, int]]) -> pa.Table:
    """The rows with their customer key and vocabulary codes: the store's column order."""
    coded = rows.append_column(
        "customer_key", pa.array([keys[c] for c in rows["customer_id"].to_pylist()], pa.int32()))
    for kind, column in CODED_FIELDS.items():
        values = [None if v is None else codes[kind][v] for v in rows[kind].to_pylist()]
        coded = coded.append_column(column, pa.array(values, pa.int32()))
    return coded


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

def _add_customers(con: duckdb.DuckDBPyConnection, new: list[str],
                   keys: dict[str, int]) -> None:
    """Give new customers the next keys (inside the caller's transaction)."""
    if not new:
        return
    row = con.execute("SELECT coalesce(max(customer_key), -1) FROM customers").fetchone()
    top = int(row[0]) if row else -1
    fresh = {c: top + 1 + k for k, c in enumerate(new)}
    con.execute("INSERT INTO customers SELECT unnest(?::INTEGER[]), unnest(?::VARCHAR[])",
                [list(fresh.values()), list(fresh)])
    keys.update(fresh)


def _add_codes(con: duckdb.DuckDBPyConnection, new: dict[str, list[str]],
               codes: dict[str, dict[str, int]]) -> None:
    """Give names not seen before the next codes of their kind (in the caller's transaction)."""
    for kind, names in new.items():
        if not names:
            continue
        known = codes[kind]
        top = max(known.values(), default=-1)
        fresh = {n: top + 1 + k for k, n in enumerate(names)}
        con.execute("INSERT INTO vocab SELECT ?, unnest(?::VARCHAR[]), unnest(?::INTEGER[])",
                    [kind, list(fresh), list(fresh.values())])
        known.update(fresh)
