"""Which event ids the store already holds, kept in memory for the ingest path.

A unique index on event_id made every checkpoint of a long-running service rewrite the whole
index (0.13-0.46 s at 1.76M events, every few thousand ingests, stalling the requests behind
it; 15-40 ms without). Instead the writer keeps the ids' hashes (the first 8 bytes of their
MD5: DuckDB's ``md5_number_upper`` for a load, hashlib per request, so no statement is needed
to hash a request's ids): a sorted array read at open (8 bytes an event) and the hashes added
since. A hash that is not there proves the id new; a hash that is (a re-send, or one
collision in ~10^12 at this size) is settled exactly against the table, so a collision costs a
scan and never drops an event.

Each event stores its hash (``id_hash``, set by every insert), so the array is read at open,
not computed: at 32.7M events reading it takes 2.4-2.9 s of the service's start, where
hashing every stored id took 10.5-11.9 s.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import duckdb
import numpy as np

from features.schema import ID_HASH

# Hashes added since the sorted array was built are a set (~70 bytes each); past this many
# they are merged into the array (8 bytes each), so a long-running service stays flat.
MERGE_AT = 50_000


class EventIds:
    """The hashes of the stored event ids (``id_hashes``)."""

    def __init__(self, hashes: np.ndarray) -> None:
        h = hashes.astype(np.uint64, copy=False)
        self._sorted = h if _ascending(h) else np.sort(h)
        self._recent: set[int] = set()

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> EventIds:
        # Sorted by DuckDB, in parallel (1.9-2.1 s at 32.7M events, np.sort after a plain
        # read 3.7 s); checked, not trusted: an unsorted array would hide stored ids from the
        # binary search.
        got = con.execute("SELECT id_hash FROM events ORDER BY id_hash").fetchnumpy()["id_hash"]
        return cls(np.asarray(got, np.uint64))

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def maybe_stored(self, hashes: np.ndarray) -> np.ndarray:
        """False where the id is surely new; True where it may be stored (check exactly)."""
        h = hashes.astype(np.uint64, copy=False)
        at = np.searchsorted(self._sorted, h)
        found = self._sorted[np.minimum(at, max(len(self._sorted) - 1, 0))] == h \
            if len(self._sorted) else np.zeros(len(h), bool)
        if self._recent:
            found |= np.fromiter((int(x) in self._recent for x in h), bool, len(h))
        return np.asarray(found, bool)

    def add(self, hashes: np.ndarray) -> None:
        """Record ids just committed to the store."""
        self._recent.update(int(x) for x in hashes)
        if len(self._recent) >= MERGE_AT:
            merged = np.fromiter(self._recent, np.uint64, len(self._recent))
            self._sorted = np.sort(np.concatenate([self._sorted, merged]))
            self._recent = set()


def add_hash_column(con: duckdb.DuckDBPyConnection, report: Callable[[str], None]) -> None:
    """Give a store made before events stored their id's hash (``schema.ID_HASH``) the
    column, filled, once: 10.8-12.0 s at 32.7M events, said in one line. The store must be open for
    writing; a store whose column is complete (NOT NULL) is left as it is. Each step stands on
    its own, so a fill cut short is finished at the next open."""
    row = con.execute("SELECT is_nullable FROM information_schema.columns "
                      "WHERE table_name = 'events' AND column_name = 'id_hash'").fetchone()
    if row and row[0] == "NO":
        return
    started = time.perf_counter()
    if row is None:
        con.execute("ALTER TABLE events ADD COLUMN id_hash UBIGINT")
    n = con.execute(f"UPDATE events SET id_hash = {ID_HASH} WHERE id_hash IS NULL").fetchone()
    # Not in the UPDATE's transaction: DuckDB refuses the constraint over uncommitted updates.
    con.execute("ALTER TABLE events ALTER COLUMN id_hash SET NOT NULL")
    report(f"stored the id hash of {int(n[0]) if n else 0:,} events already in the store, "
           f"once ({time.perf_counter() - started:.1f}s): its writers now read them at start")


def _ascending(h: np.ndarray) -> bool:
    return bool(len(h) < 2 or (h[1:] >= h[:-1]).all())


def id_hashes(ids: list[str]) -> np.ndarray:
    """The first 8 bytes of each id's MD5 (UTF-8), little-endian: DuckDB's ``md5_number_upper``.
    Lone surrogates (which DuckDB refuses to store) are encoded as they are."""
    md5 = hashlib.md5
    return np.fromiter(
        (int.from_bytes(md5(e.encode("utf-8", "surrogatepass")).digest()[:8], "little")
         for e in ids), np.uint64, len(ids))


def stored_ids(con: duckdb.DuckDBPyConnection, candidates: list[str]) -> set[str]:
    """Which of these ids the events table holds: one scan of the id column (38 ms at 1.76M
    events), run only for ids whose hash matched (re-sends and the rare collision)."""
    if not candidates:
        return set()
    rows = con.execute("SELECT DISTINCT event_id FROM events WHERE event_id IN "
                       "(SELECT unnest(?::VARCHAR[]))", [candidates]).fetchall()
    return {str(r[0]) for r in rows}
