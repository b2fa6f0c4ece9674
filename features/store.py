"""The event store: an append-only DuckDB file, idempotent by event_id.

One process writes (the service, or a CLI command when the service is down); DuckDB's WAL makes
each committed append durable, and an append commits all of its rows or none. Large appends
drop ids already stored by an anti-join; small ones (a request's) through the writer's picture
of the store (features/rows.py: stored ids' hashes, customer keys, codes), read once when the
first small append comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType

import duckdb
import numpy as np
import pyarrow as pa

from features import store_attributes, store_log
from features.errors import JourneyError, StoreError
from features.event_ids import add_hash_column
from features.loaders import LoadReport, RejectsWriter, load_events
from features.mapping import ColumnMapping
from features.memory import memory_setting
from features.normalize import DERIVED_ID
from features.readers import LINE_COLUMN, ReadLimits
from features.rows import Appender, conform, read_keys
from features.schema import (
    ADD_LOAD_ID,
    ATTRIBUTES_DDL,
    EVENT_FIELDS,
    EVENT_SCHEMA,
    EVENTS_DDL,
    ID_HASH,
    KEYS_DDL,
    STORED_COLUMNS,
)
from features.store_conflicts import (
    conflicts_path,
    differing_ids,
    staged_conflicts,
    write_conflicts,
)
from features.store_derived import (
    ARRIVAL,
    CONTENT_ORDER,
    DEDUP_STAGED,
    assign_codes,
    matched_derived,
)
from features.store_log import AppendResult, IngestReport
from features.store_messages import cannot_open, nothing_loaded, out_of_memory
from features.store_spill import sweep_spill, to_stderr
from features.taxonomy import Taxonomy
from features.transactions import rollback

__all__ = ["AppendResult", "EventStore", "IngestReport"]

# Indexes older stores kept on events. On customer_key: appends read it from disk and DuckDB keeps
# what it reads (+24 MB after 4,000 appends at 1.76M events), and a scan reads one customer's
# history faster anyway (6.7 ms against 13.8 ms). On event_id (unique): every checkpoint
# rewrote it whole (0.13-0.46 s at 1.76M events against 15-40 ms without), stalling a
# long-running service's requests; the writer's in-memory hashes (EventIds) do its work.
DROPPED_INDEXES = ("events_customer", "events_event_id")
# Where a DuckDB database file says what it is (after an 8-byte checksum).
DUCKDB_MAGIC, MAGIC_AT = b"DUCK", 8
# Up to this many rows, append() inserts straight from the Arrow batch (no staging table).
SMALL_APPEND = 10_000
COLUMNS = ", ".join(EVENT_FIELDS)


def _refuse_other_files(path: Path) -> None:
    """DuckDB (1.5) opens an existing CSV or Parquet file as a read-only view in memory: a load
    into it would report rows stored and keep none. Only an empty file (DuckDB says why it cannot
    open it) or a DuckDB database, whose header carries DUCKDB_MAGIC, goes on to DuckDB."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        head = fh.read(MAGIC_AT + len(DUCKDB_MAGIC))
    if head[MAGIC_AT:] != DUCKDB_MAGIC:
        kind = "a Parquet file" if head.startswith(b"PAR1") else "its header is not DuckDB's"
        raise StoreError(f"cannot open event store {path}: not a DuckDB database ({kind}); "
                         "name a .duckdb store, or a path that does not exist yet")


class EventStore:
    def __init__(self, path: str | Path, read_only: bool = False,
                 memory_limit: str | None = None,
                 report: Callable[[str], None] = to_stderr) -> None:
        """``memory_limit`` (e.g. "4GB"): what DuckDB may hold in memory for this store's
        work; past it, a large load's staged rows and joins spill to <store>.tmp. Without it
        DuckDB allows 80 % of RAM, and an 86.7M-event ingest peaked at 19.8 GB resident on a
        24 GB machine (5.0 GB at "4GB", 3 % slower). ``report``: where a writer says what it
        swept of the spill files a killed one left (features/store_spill.py)."""
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StoreError(f"event store not found: {self.path}; load events into it with "
                             "`journey ingest`")
        _refuse_other_files(self.path)
        limit = memory_setting(memory_limit) if memory_limit is not None else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        opened_at = time.time()
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(cannot_open(self.path, exc)) from exc
        if not read_only:
            sweep_spill(self.con, opened_at, report)
        if limit is not None:
            self.con.execute(f"SET memory_limit = '{limit}'")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self._appender: Appender | None = None
        self._count_conflicts = True
        if not read_only:
            self._check_layout()
            self.con.execute(EVENTS_DDL)
            self.con.execute(ADD_LOAD_ID)
            add_hash_column(self.con, report)
            store_log.create(self.con)
            for ddl in KEYS_DDL:
                self.con.execute(ddl)
            self.con.execute(ATTRIBUTES_DDL)
            for name in DROPPED_INDEXES:
                self.con.execute(f"DROP INDEX IF EXISTS {name}")

    def _check_layout(self) -> None:
        cols = {
            r[0]
            for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'events'"
            ).fetchall()
        }
        if cols and "customer_key" not in cols:
            raise StoreError(
                f"{self.path}: made by an older Journey (no customer keys); "
                "move it away and ingest the sources again"
            )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def append(self, events: pa.Table, returning: bool = False) -> AppendResult:
        """Insert the events whose event_id is new; the first of repeated ids in a batch wins
        (a load, ``ingest``, keeps the smallest of them instead: rows of a file have no order).

        ``returning``: also give back the rows actually inserted (the service keeps its
        in-memory histories in step with the store from them)."""
        if events.num_rows == 0:
            return AppendResult(0, 0)
        batch = conform(events.select(list(EVENT_FIELDS)))
        # A writer that keeps its picture (the service) appends any size through it: the
        # staged path would drop the picture, to be read again (0.7 s) on a request's path.
        if batch.num_rows <= SMALL_APPEND or self._appender is not None:
            return self._append_small(batch, returning)
        self.con.register("incoming", batch)
        try:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE staged AS "
                f"SELECT {COLUMNS}, false AS {DERIVED_ID}, NULL::BIGINT AS {LINE_COLUMN} "
                "FROM incoming"
            )
        finally:
            self.con.unregister("incoming")
        return self._commit_staged(batch.num_rows, returning)[0]

    def serve_appends(self, checkpoint_mb: int) -> None:
        """Set the store up for a writer that answers requests (the service).

        DuckDB checkpoints when its log reaches ``checkpoint_mb`` (~360 bytes per one-event
        append); until then appended rows stay in memory, so a long-running writer checkpoints
        often. A checkpoint then writes the new rows as a row group of their own (15-40 ms at
        1.76M events) instead of merging them into the previous ones, which rewrites that group
        whole (up to 1.1 s, stalling the requests behind it). Writers that do not answer
        requests keep DuckDB's merging. The writer's picture of the store is read now, not
        on the first append."""
        self.con.execute(f"SET checkpoint_threshold = '{int(checkpoint_mb)}MB'")
        self.con.execute("SET max_vacuum_tasks = 0")
        # Its answers count ignored rows from the inserted ones (group commit), and telling
        # conflicts from re-sends would scan the table again under the write lock.
        self._count_conflicts = False
        self.appender()

    def appender(self) -> Appender:
        """What small appends check, in memory (read now if not yet: 0.7 s at 1.76M events;
        a writer that answers requests calls this at start)."""
        if self._appender is None:
            self._appender = Appender.load(self.con)
        return self._appender

    def customer_keys(self) -> dict[str, int]:
        """Customer id -> key: the writer's own map when it keeps one (its appends keep it
        current, and it is not read twice), else read now."""
        if self._appender is not None:
            return self._appender.keys
        return read_keys(self.con)

    def _append_small(self, batch: pa.Table, returning: bool) -> AppendResult:
        received = batch.num_rows
        rows = self.appender().append(batch)
        conflicts = (len(differing_ids(self.con, batch))
                     if self._count_conflicts and rows.num_rows < received else 0)
        return AppendResult(received, rows.num_rows, rows if returning else None, conflicts)

    def _commit_staged(self, received: int, returning: bool = False, order: str = ARRIVAL,
                       load: bool = False) -> tuple[AppendResult, pa.Table | None, int, int | None]:
        """Insert the staged rows' new events in one transaction; the result, the rows that
        conflict (``store_conflicts.staged_conflicts``) when any row was left out, how many
        rows without an id matched events of earlier loads (``store_derived``), and the
        load's number (``load``: a file load, whose events carry it; else None).
        ``order``: which of the rows repeating an explicit id is stored (DEDUP_STAGED)."""
        # The window that numbers repeated ids costs a sort; most loads have no repeats.
        row = self.con.execute("SELECT count(*) = count(DISTINCT event_id) FROM staged").fetchone()
        all_distinct = bool(row and row[0])
        dedup = (f"SELECT * EXCLUDE ({DERIVED_ID}, {LINE_COLUMN}) FROM staged" if all_distinct
                 else DEDUP_STAGED.format(order=order))
        before = self.count()
        last = self.con.execute("SELECT coalesce(max(rowid), -1) FROM events").fetchone()
        coded = f"""
            SELECT s.*, c.customer_key, t.code, ch.code, a.code FROM ({dedup}) s
            JOIN customers c USING (customer_id)
            JOIN vocab t ON t.kind = 'event_type' AND t.name = s.event_type
            JOIN vocab ch ON ch.kind = 'channel' AND ch.name = s.channel
            LEFT JOIN vocab a ON a.kind = 'action' AND a.name = s.action"""
        tail = f" RETURNING {COLUMNS}" if returning else ""
        rows: pa.Table | None = None
        self.con.execute("BEGIN TRANSACTION")
        try:
            assign_codes(self.con)
            # Numbered in the transaction that stores its events: no two loads share one.
            load_id = store_log.next_load_id(self.con) if load else None
            cur = self.con.execute(
                f"INSERT INTO events ({STORED_COLUMNS}, load_id, id_hash) "
                f"SELECT *, ?::INTEGER, {ID_HASH} FROM ({coded}) s WHERE NOT EXISTS "
                f"(SELECT 1 FROM events e WHERE e.event_id = s.event_id){tail}", [load_id]
            )
            if returning:
                rows = cur.to_arrow_table().cast(EVENT_SCHEMA)
            inserted = self.count() - before
            # Only a row left out can conflict: a load of new events pays nothing more.
            left_out, last_rowid = inserted < received, last[0] if last else -1
            conflicts = staged_conflicts(self.con, last_rowid) if left_out else None
            matched = matched_derived(self.con, last_rowid) if left_out else 0
            self.con.execute("COMMIT")
        except BaseException:
            rollback(self.con)
            raise
        finally:
            self.con.execute("DROP TABLE IF EXISTS staged")
            # Read again when next needed: cheaper than hashing a large load's ids here.
            self._appender = None
        found = 0 if conflicts is None else conflicts.num_rows
        return AppendResult(received, inserted, rows, found), conflicts, matched, load_id

    def load_attributes(self, table: pa.Table, id_column: str = "customer_id"
                        ) -> store_attributes.AttributeLoad:
        """Upsert customer attributes (every column but the id; a customer's last row wins);
        what was loaded (``features.store_attributes.load_attributes``)."""
        return store_attributes.load_attributes(self.con, table, id_column)

    def attributes_by_key(self, names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, pa.Array]]:
        """Per attribute: codes indexed by customer key (-1 unknown) and their dictionary."""
        return store_attributes.attributes_by_key(self.con, names)

    def stage_codes(self, taxonomy: Taxonomy) -> pa.Table:
        """Store event-type code -> stage index (-1: not a customer event) and conversion flag,
        for joins on the integer code column instead of event type strings."""
        stage_index = {s: i for i, s in enumerate(taxonomy.stages)}
        conv = set(taxonomy.conversion_event_types)
        codes = self.vocab("event_type")
        return pa.table({
            "code": pa.array(list(codes.values()), pa.int32()),
            "stage": pa.array([stage_index.get(taxonomy.event_stage.get(n) or "", -1)
                               for n in codes], pa.int32()),
            "conv": pa.array([n in conv for n in codes], pa.bool_()),
        })

    def vocab(self, kind: str) -> dict[str, int]:
        """The store's codes of one coded field (event_type, channel or action)."""
        rows = self.con.execute("SELECT name, code FROM vocab WHERE kind = ?", [kind]).fetchall()
        return {str(name): int(code) for name, code in rows}

    def ingest(
        self,
        path: str | Path,
        mapping: ColumnMapping,
        taxonomy: Taxonomy,
        rejects_path: Path | None = None,
        limits: ReadLimits | None = None,
        progress: Callable[[LoadReport, bool], None] | None = None,
    ) -> IngestReport:
        """Load a file (or directory) and append its valid rows in one transaction.

        ``progress(report, storing)`` is called after every batch read (``storing`` False)
        and once more when the staged rows start going into the store (True)."""
        report = LoadReport()
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE staged AS SELECT {COLUMNS}, "
            f"false AS {DERIVED_ID}, NULL::BIGINT AS {LINE_COLUMN} FROM events LIMIT 0"
        )
        received = 0
        sources: list[tuple[int, str]] = []  # (first staged row, file) of each batch
        rejects = RejectsWriter(rejects_path)  # named once the rows are stored
        batches = load_events(path, mapping, taxonomy, report, limits=limits, lines=True,
                              writer=rejects)
        try:
            for batch in batches:
                sources.append((received, report.files[-1]))
                self.con.register("incoming", batch)
                self.con.execute("INSERT INTO staged SELECT * FROM incoming")
                self.con.unregister("incoming")
                received += batch.num_rows
                if progress is not None:
                    progress(report, False)
            if progress is not None:
                progress(report, True)
            # A file's rows have no order that means anything: of rows sharing an event id
            # (a source that reuses ids for different users) the same one is stored whatever
            # their order, so a shuffled file gives the same store, features and labels.
            appended, conflicts, matched, load_id = self._commit_staged(
                received, order=CONTENT_ORDER, load=True)
            result = IngestReport(report, appended, matched, load_id)
        except BaseException as exc:
            batches.close()
            rejects.discard()  # they list rows of a load that stored nothing
            self.con.execute("DROP TABLE IF EXISTS staged")
            if isinstance(exc, duckdb.OutOfMemoryException):  # says nothing was stored
                raise StoreError(self._out_of_memory(path, exc)) from exc
            if isinstance(exc, JourneyError):
                raise nothing_loaded(exc, path) from exc
            raise
        rejects.commit()
        if conflicts is not None and conflicts.num_rows and rejects_path is not None:
            write_conflicts(conflicts_path(rejects_path), conflicts, sources)
        store_log.record(self.con, str(path), result)
        return result

    def _out_of_memory(self, source: str | Path, exc: duckdb.Error) -> str:
        row = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
        return out_of_memory(self.path, source, str(row[0]) if row else "?", exc)

    def ingest_log(self, limit: int = 20) -> list[dict[str, object]]:
        """The most recent loads, newest first (``features.store_log.recent``)."""
        return store_log.recent(self.con, limit)

    # -- reading -------------------------------------------------------------------------
    def count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def memory(self) -> dict[str, int]:
        """DuckDB's memory by component in bytes (``art_index``: indexes, read from disk as
        lookups reach them). On a cursor of its own: safe beside a running ingest."""
        try:
            cur = self.con.cursor()
            try:
                rows = cur.execute("SELECT tag, memory_usage_bytes FROM duckdb_memory()"
                                   ).fetchall()
            finally:
                cur.close()
        except duckdb.Error:  # closed under us (shutdown): nothing to report
            return {}
        return {str(tag).lower(): int(used) for tag, used in rows}

    def customer_history(self, customer_id: str, before: datetime | None = None) -> pa.Table:
        """One customer's events (strictly before ``before`` when given), oldest first."""
        key = self.con.execute(
            "SELECT customer_key FROM customers WHERE customer_id = ?", [customer_id]
        ).fetchone()
        sql = f"SELECT {COLUMNS} FROM events WHERE customer_key = ?"
        params: list[object] = [key[0] if key else -1]
        if before is not None:
            sql += " AND ts < ?"
            params.append(before)
        cur = self.con.execute(sql + " ORDER BY ts, event_id", params)
        return cur.to_arrow_table().cast(EVENT_SCHEMA)

    def events_before(self, cutoff: datetime) -> duckdb.DuckDBPyRelation:
        """All events strictly before ``cutoff``, as a lazy relation (push work into DuckDB)."""
        return self.con.sql(f"SELECT {COLUMNS} FROM events").filter(
            duckdb.ColumnExpression("ts") < duckdb.ConstantExpression(cutoff)
        )

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        row = self.con.execute(
            "SELECT min(ts)::TIMESTAMP, max(ts)::TIMESTAMP FROM events"
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)
