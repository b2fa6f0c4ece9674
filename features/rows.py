"""Appending a request's worth of events to the store (the service's ingest path).

Under load a request's append is slow for what it holds: every DuckDB statement and every Arrow
kernel call gives up the GIL, and behind a busy event loop each take-back can wait a switch
interval (one event cost 18 ms against a thread holding the GIL, 3 ms alone). So the single
writer keeps what an append must check in memory: the stored ids' hashes
(features/event_ids.py), every customer's key and every vocabulary code, read once and kept
current by its own commits. A request for known customers and codes is then one INSERT (its
own transaction, so its rows are all or none) built in Python; new customers or codes are
written with the events in one transaction. Only an id whose hash matches costs a look at the
table (a re-send, or a rare collision). A load of files (``EventStore.ingest``) goes through
its staging table instead and drops this picture, to be read again when next needed.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping

import duckdb
import numpy as np
import pyarrow as pa

from features.event_ids import EventIds, id_hashes, stored_ids
from features.schema import CODED_FIELDS, EVENT_SCHEMA, STORED_COLUMNS
from features.transactions import rollback

# Up to this many rows an insert is one VALUES statement built in Python; more are scanned
# from an Arrow batch (~4 ms of set-up).
VALUES_ROWS = 64


class Appender:
    """The single writer's picture of the store: stored ids' hashes, customer keys, codes."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ids: EventIds, keys: dict[str, int],
                 codes: dict[str, dict[str, int]]) -> None:
        self.con = con
        self.ids = ids
        self.keys = keys  # customer id -> key; shared with readers (dict reads are atomic)
        self.codes = codes  # kind -> name -> code

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Appender:
        """Read the picture (0.7 s at 1.76M events and 20k customers)."""
        codes: dict[str, dict[str, int]] = {kind: {} for kind in CODED_FIELDS}
        for kind, name, code in con.execute("SELECT kind, name, code FROM vocab").fetchall():
            codes[kind][name] = int(code)
        return cls(con, EventIds.load(con), read_keys(con), codes)

    def append(self, batch: pa.Table) -> pa.Table:
        """Insert the events of ``batch`` (event schema) whose event_id is new, all or none;
        the first of repeated ids wins. Returns the rows inserted. The caller holds the
        store's write path for the whole call."""
        ids = batch["event_id"].to_pylist()
        if len(set(ids)) != len(ids):  # first repeat wins
            at: dict[str, int] = {}
            for i, e in enumerate(ids):
                at.setdefault(e, i)
            first = list(at.values())  # in arrival order
            batch = batch.take(pa.array(first, pa.int64()))
            ids = [ids[i] for i in first]
        hashes = id_hashes(ids)
        maybe = self.ids.maybe_stored(hashes)
        stored = (stored_ids(self.con, [ids[i] for i in np.flatnonzero(maybe)]) if maybe.any()
                  else set())
        keep = np.array([e not in stored for e in ids], bool)
        new = batch if keep.all() else batch.filter(pa.array(keep))
        customers = new["customer_id"].to_pylist()
        fresh_customers = sorted(set(customers) - self.keys.keys())
        fresh_codes = {kind: sorted({v for v in new[kind].to_pylist() if v is not None}
                                    - known.keys()) for kind, known in self.codes.items()}
        new_hashes = hashes[keep]
        if not fresh_customers and not any(fresh_codes.values()):
            _insert(self.con, new, new_hashes, customers, self.keys, self.codes)  # one transaction
        else:
            self._insert_with_new(new, new_hashes, customers, fresh_customers, fresh_codes)
        self.ids.add(new_hashes)  # committed: from here on these ids are stored
        return new

    def _insert_with_new(self, rows: pa.Table, hashes: np.ndarray, customers: list[str],
                         fresh_customers: list[str], fresh_codes: dict[str, list[str]]) -> None:
        """New keys and codes, and the rows, in one transaction; the picture learns the new
        keys and codes only once it commits."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            keys = _add_customers(self.con, fresh_customers)
            codes = {kind: _add_codes(self.con, kind, names, self.codes[kind])
                     for kind, names in fresh_codes.items()}
            _insert(self.con, rows, hashes, customers, ChainMap(keys, self.keys),
                    {kind: ChainMap(codes[kind], known) for kind, known in self.codes.items()})
            self.con.execute("COMMIT")
        except BaseException:
            rollback(self.con)
            raise
        self.keys.update(keys)
        for kind, fresh in codes.items():
            self.codes[kind].update(fresh)


def read_keys(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Every stored customer's key."""
    got = con.execute("SELECT customer_id, customer_key FROM customers").fetchnumpy()
    return dict(zip(got["customer_id"].tolist(), got["customer_key"].tolist(), strict=True))


def conform(table: pa.Table) -> pa.Table:
    """``table`` in the event schema: cast only when it differs (a cast is a kernel call)."""
    return table if table.schema.equals(EVENT_SCHEMA) else table.cast(EVENT_SCHEMA)


def _insert(con: duckdb.DuckDBPyConnection, rows: pa.Table, hashes: np.ndarray,
            customers: list[str], keys: Mapping[str, int],
            codes: Mapping[str, Mapping[str, int]]) -> None:
    """Insert ``rows`` (event fields) with their customer keys, vocabulary codes and id
    hashes (``id_hashes``, already computed for the check), in the store's column order: a
    few as one VALUES statement built in Python (an Arrow scan costs ~4 ms of set-up, and each
    Arrow call gives up the GIL), more from an Arrow batch."""
    n = rows.num_rows
    if n == 0:
        return
    if n <= VALUES_ROWS:
        params: list[object] = []
        for row, customer, h in zip(rows.to_pylist(), customers, hashes.tolist(), strict=True):
            params.extend(row.values())
            params.append(keys[customer])
            params.extend(None if row[kind] is None else codes[kind][row[kind]]
                          for kind in CODED_FIELDS)
            params.append(h)
        width = len(params) // n
        marks = ", ".join(["(" + ", ".join("?" * width) + ")"] * n)
        con.execute(f"INSERT INTO events ({STORED_COLUMNS}, id_hash) VALUES {marks}", params)
        return
    coded = rows.append_column("customer_key", pa.array([keys[c] for c in customers], pa.int32()))
    for kind, column in CODED_FIELDS.items():
        values = [None if v is None else codes[kind][v] for v in rows[kind].to_pylist()]
        coded = coded.append_column(column, pa.array(values, pa.int32()))
    coded = coded.append_column("id_hash", pa.array(hashes, pa.uint64()))
    con.register("incoming", coded)
    try:
        con.execute(f"INSERT INTO events ({STORED_COLUMNS}, id_hash) SELECT * FROM incoming")
    finally:
        con.unregister("incoming")


def _add_customers(con: duckdb.DuckDBPyConnection, new: list[str]) -> dict[str, int]:
    """Give new customers the next keys (inside the caller's transaction)."""
    if not new:
        return {}
    row = con.execute("SELECT coalesce(max(customer_key), -1) FROM customers").fetchone()
    top = int(row[0]) if row else -1
    fresh = {c: top + 1 + k for k, c in enumerate(new)}
    con.execute("INSERT INTO customers SELECT unnest(?::INTEGER[]), unnest(?::VARCHAR[])",
                [list(fresh.values()), list(fresh)])
    return fresh


def _add_codes(con: duckdb.DuckDBPyConnection, kind: str, names: list[str],
               known: dict[str, int]) -> dict[str, int]:
    """Give names of one kind not seen before the next codes (in the caller's transaction)."""
    if not names:
        return {}
    top = max(known.values(), default=-1)
    fresh = {n: top + 1 + k for k, n in enumerate(names)}
    con.execute("INSERT INTO vocab SELECT ?, unnest(?::VARCHAR[]), unnest(?::INTEGER[])",
                [kind, list(fresh), list(fresh.values())])
    return fresh
