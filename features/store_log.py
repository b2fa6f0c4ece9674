"""What an append did, what a load reports, and the store's ingest log of loads (one row per
load, which `journey summary` lists)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from features.loaders import LoadReport
from features.store_conflicts import conflicts_path

INGEST_LOG_DDL = """
CREATE TABLE IF NOT EXISTS ingest_log (
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    source VARCHAR NOT NULL, rows_read BIGINT, valid BIGINT, rejected BIGINT,
    inserted BIGINT, duplicates BIGINT, rejects_path VARCHAR, reject_reasons VARCHAR,
    conflicts BIGINT, details VARCHAR, excluded BIGINT, load_id BIGINT,
    undone_at TIMESTAMPTZ, undone_events BIGINT
)
"""
# Columns added after the first stores were made, with their types: a store made before one
# gains it when opened for writing; read-only, its loads read it as NULL (not recorded).
LATER_COLUMNS = {"conflicts": "BIGINT", "details": "VARCHAR", "excluded": "BIGINT",
                 "load_id": "BIGINT", "undone_at": "TIMESTAMPTZ", "undone_events": "BIGINT"}


@dataclass(frozen=True)
class AppendResult:
    received: int
    inserted: int
    rows: pa.Table | None = None  # the inserted events, when the caller asked for them
    conflicts: int = 0  # of the ignored rows, those whose event_id a different event holds

    @property
    def duplicates(self) -> int:
        """Rows ignored because their event_id is stored or repeated (conflicts included)."""
        return self.received - self.inserted

    @property
    def resent(self) -> int:
        """Ignored rows whose event_id holds the same event: harmless re-sends."""
        return self.duplicates - self.conflicts


@dataclass
class IngestReport:
    load: LoadReport
    append: AppendResult
    # Rows without an event id that matched events an earlier load stored (counted among the
    # "already stored or repeated"; ``features.store_derived``).
    matched_earlier: int = 0
    load_id: int | None = None  # the load's number, which its events carry (`journey unload`)

    def lines(self) -> list[str]:
        out = self.load.lines()
        conflicts = self.append.conflicts
        out.append(
            f"stored {self.append.inserted:,} new events; "
            f"{self.append.duplicates:,} already stored or repeated (ignored by event_id)"
            + (f", {conflicts:,} of them conflicting (event_id of a different event)"
               if conflicts else "")
        )
        if conflicts:
            where = self.load.rejects_path
            listed = f"; listed in {conflicts_path(where)}" if where is not None else ""
            out.append(f"warning: {conflicts:,} rows reuse the event_id of a different event "
                       "(another customer, time, type...): not stored, the stored events "
                       f"unchanged{listed}")
        return out + matched_note(self.matched_earlier)


def create(con: duckdb.DuckDBPyConnection) -> None:
    """The table, and on a store made before some columns were recorded, those columns."""
    con.execute(INGEST_LOG_DDL)
    for name, kind in LATER_COLUMNS.items():
        con.execute(f"ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS {name} {kind}")


def record(con: duckdb.DuckDBPyConnection, source: str, r: IngestReport) -> None:
    if r.load.accepted_nothing:
        return  # refused: the store is left as it was
    con.execute(
        "INSERT INTO ingest_log (source, rows_read, valid, rejected, inserted, duplicates, "
        "rejects_path, reject_reasons, conflicts, details, excluded, load_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            source,
            r.load.rows_read,
            r.load.valid,
            r.load.rejected_total,
            r.append.inserted,
            r.append.duplicates,
            str(r.load.rejects_path) if r.load.has_rejects else None,
            json.dumps(dict(r.load.rejected.most_common())),
            r.append.conflicts,
            # The detail files joined and the rows left out by customer id: what a load
            # used besides its source, so a store can be loaded again the same way.
            json.dumps([c.name for c in r.load.details.files]) if r.load.details else None,
            sum(r.load.excluded.values()),
            r.load_id,
        ],
    )


def _column(name: str, kind: str, stored: bool) -> str:
    """A later column as ``recent`` reads it: times as text, as ``loaded_at`` is."""
    if not stored:
        return f"NULL::{'VARCHAR' if kind == 'TIMESTAMPTZ' else kind} AS {name}"
    return f"CAST({name} AS VARCHAR) AS {name}" if kind == "TIMESTAMPTZ" else name


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    """The number of the load being stored: above every logged load's and every stored
    event's (a load whose log row was never written, the process killed in between, keeps
    its number)."""
    row = con.execute("SELECT greatest((SELECT coalesce(max(load_id), 0) FROM ingest_log), "
                      "(SELECT coalesce(max(load_id), 0) FROM events)) + 1").fetchone()
    return int(row[0]) if row else 1


def recent(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict[str, object]]:
    """The most recent loads, newest first. ``conflicts``, ``details`` (the detail files'
    names, a list), ``excluded`` and ``load_id`` (with ``undone_at`` and ``undone_events``
    once `journey unload` removed its events) are None for loads logged before they were
    recorded, or on such a store opened read-only."""
    have = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'ingest_log'"
    ).fetchall()}
    later = ", ".join(_column(name, kind, name in have) for name, kind in LATER_COLUMNS.items())
    cur = con.execute(
        "SELECT CAST(loaded_at AS VARCHAR), source, rows_read, valid, rejected, inserted, "
        f"duplicates, rejects_path, reject_reasons, {later} FROM ingest_log "
        "ORDER BY loaded_at DESC LIMIT ?",
        [limit],
    )
    names = [c[0] for c in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        if isinstance(row["details"], str):
            row["details"] = json.loads(row["details"])
    return rows


def matched_note(matched: int) -> list[str]:
    """What the load says of ``matched`` rows (nothing when none)."""
    if not matched:
        return []
    rows, are = ("row", "is") if matched == 1 else ("rows", "are")
    return textwrap.wrap(
        f"note: {matched:,} ignored {rows} without an event id {are} identical to events an "
        "earlier load stored (same customer, time, type, channel, value, action, properties): "
        "taken as already stored, as when a file is loaded again. Identical rows count as "
        "separate events only within one load: load a purchase log's identical rows (two "
        "same-day purchases) in one load, or give them explicit event ids.",
        96, subsequent_indent="    ")


def rehome(con: duckdb.DuckDBPyConnection, old: str, new: str) -> int:
    """Point the logged rejects files under the folder ``old`` at the same place under
    ``new`` (a moved home: `journey relocate`); how many rows changed."""
    prefix = old.rstrip("/") + "/"
    cur = con.execute("UPDATE ingest_log SET rejects_path = ? || substr(rejects_path, ?) "
                      "WHERE starts_with(rejects_path, ?)",
                      [new.rstrip("/") + "/", len(prefix) + 1, prefix])
    row = cur.fetchone()
    return int(row[0]) if row else 0
