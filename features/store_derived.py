"""Repeated event ids in what the store takes in, and the rows without an event id that a load
took as already stored by an earlier load.

A row without an event_id gets an id derived from its content, and identical rows of one load
are numbered apart (``-1``, ``-2``...): two identical purchases on one day are two purchases.
Numbering is per load, so reloading a file changes nothing, by design; but identical rows
split between two loads are one event to the store (CDNOW split in two files stored 225 fewer
purchases). The load cannot tell those from a reload, so it says how many there were.

Also the keys and codes a load's new customers and names get (``assign_codes``).
"""

from __future__ import annotations

import duckdb

from features.normalize import DERIVED_ID
from features.schema import CODED_FIELDS, EVENT_FIELDS

# Explicit ids are identities (a repeat is a re-send); derived ids of identical rows in one load
# are numbered apart (-1, -2, ...) so repeated real rows survive and reloading stays idempotent.
# ``{order}`` picks the row that keeps an explicit id: an append's first (ARRIVAL), a load's
# smallest by every stored column (CONTENT_ORDER), so a file's row order cannot change the store.
DEDUP_STAGED = f"""
SELECT CASE WHEN {DERIVED_ID} AND k > 0 THEN event_id || '-' || k ELSE event_id END AS event_id,
       {", ".join(EVENT_FIELDS[1:])}
FROM (SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY {{order}}) - 1 AS k
      FROM staged)
WHERE {DERIVED_ID} OR k = 0
"""
ARRIVAL = "rowid"
CONTENT_ORDER = ("ts, customer_id, event_type, channel, value NULLS LAST, action NULLS LAST, "
                 "properties NULLS LAST, rowid")

# The staged rows' derived ids as the load numbered them (DEDUP_STAGED: rows with one
# derived id are identical, so their numbering order does not matter), found among
# the events stored before the load (rowid up to the one it started after).
MATCHED_DERIVED = f"""
WITH d AS (
    SELECT CASE WHEN k > 0 THEN event_id || '-' || k ELSE event_id END AS event_id
    FROM (SELECT event_id, row_number() OVER (PARTITION BY event_id ORDER BY rowid) - 1 AS k
          FROM staged WHERE {DERIVED_ID}))
SELECT count(*) FROM d JOIN events e USING (event_id) WHERE e.rowid <= ?
"""


def matched_derived(con: duckdb.DuckDBPyConnection, last_rowid: int) -> int:
    """How many staged rows without an event id an earlier load already stored (call while
    the staged rows are there; ``last_rowid``: the events table's last before the load)."""
    row = con.execute(MATCHED_DERIVED, [last_rowid]).fetchone()
    return int(row[0]) if row else 0


def assign_codes(con: duckdb.DuckDBPyConnection) -> None:
    """Give the staged rows' new customers a key and their new event types, channels and
    actions a code (in the load's transaction)."""
    con.execute("""
        INSERT INTO customers
        SELECT (SELECT coalesce(max(customer_key), -1) FROM customers)
               + row_number() OVER (ORDER BY customer_id), customer_id
        FROM (SELECT DISTINCT customer_id FROM staged) n
        WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = n.customer_id)""")
    for kind in CODED_FIELDS:
        con.execute(f"""
            INSERT INTO vocab
            SELECT '{kind}', name,
                   (SELECT coalesce(max(code), -1) FROM vocab WHERE kind = '{kind}')
                   + row_number() OVER (ORDER BY name)
            FROM (SELECT DISTINCT {kind} AS name FROM staged WHERE {kind} IS NOT NULL) n
            WHERE NOT EXISTS
                (SELECT 1 FROM vocab v WHERE v.kind = '{kind}' AND v.name = n.name)""")
