"""Reading one detail file (``features.details_spec``): its rows' keys, values and channels,
checked as a load checks an event's, and the rows it rejects.

A row is rejected, with its file, line and column, when its key is missing or too long, its
value is not a plain non-negative decimal number within range (the events' own rules, from
``row_checks``), or its channel is too long; the other rows are joined. Two things stop the
load instead, before anything is stored: a file without the key column or without the columns
it is to give (the error lists the columns it has), and a key on two rows (the error names
both lines), since the join could not tell which row is the event's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from features.details_spec import DETAIL_FIELDS, DetailSource
from features.errors import MappingError, SourceError
from features.normalize import clean_text, quote, sql_str
from features.normalize_checks import VALUE_TEXT, Check, check_code, offending_value, row_checks
from features.normalize_ids import typed_id
from features.read_base import LINE_COLUMN, RawBatch, ReadLimits
from features.read_jsonl import non_text_ids
from features.readers import BATCH_ROWS, read_batches
from features.schema import MAX_ID_CHARS

if TYPE_CHECKING:
    from features.mapping import ColumnMapping

KEY_CHECKS = 2  # the first checks are the key's: a row failing a later one still has its key
RejectRow = dict[str, object]


@dataclass
class DetailTable:
    """A detail file's accepted rows (one per key), and what reading it found."""

    source: DetailSource
    used: dict[str, str]  # field -> the column it is read from (the first present)
    keys: pa.Array  # string, one per accepted row
    fields: dict[str, pa.Array]  # "value" (float64) and "channel" (string), of those rows
    rows: int = 0  # rows read: accepted and rejected
    rejects: list[RejectRow] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.source.path.name

    @property
    def rejected(self) -> Counter[str]:
        """Rejected rows per reason (the category before a reader's ":")."""
        return Counter(str(r["reason"]).split(":")[0] for r in self.rejects)


def read_detail(source: DetailSource, mapping: ColumnMapping,
                limits: ReadLimits | None = None) -> DetailTable:
    """Read and check one detail file; ``mapping`` gives the candidate columns (when the
    source names none) and the channel renames a joined channel goes through."""
    candidates = source.candidates(mapping.columns)
    wanted = frozenset({source.key, *(c for cols in candidates.values() for c in cols)})
    reader = _BatchReader(source, candidates, mapping.channels)
    try:
        for raw in read_batches(source.path, BATCH_ROWS, limits, wanted, source.text):
            reader.add(raw)
        return reader.table()
    finally:
        reader.close()


class _BatchReader:
    """Checks raw batches of one detail file, one DuckDB query per batch."""

    def __init__(self, source: DetailSource, candidates: dict[str, tuple[str, ...]],
                 renames: Mapping[str, str]) -> None:
        self.source, self.candidates = source, candidates
        self.where = str(source.path)
        self.used: dict[str, str] = {}
        self.parts: list[pa.Table] = []
        self.keyed: list[pa.Table] = []  # (key, line) of every row with a valid key
        self.rejects: list[RejectRow] = []
        self.rows = 0
        self._sql: dict[tuple[tuple[str, str], ...], tuple[str, list[Check]]] = {}
        self._con = duckdb.connect()
        self._con.register("chmap", pa.table({
            "src": pa.array(list(renames), pa.string()),
            "dst": pa.array(list(renames.values()), pa.string())}))

    def close(self) -> None:
        self._con.close()

    def add(self, raw: RawBatch) -> None:
        self.rows += raw.table.num_rows + len(raw.rejects)
        rejects = [{"source": r.source, "line": r.line, "field": r.field, "reason": r.reason,
                    "value": r.raw} for r in raw.rejects]
        if raw.table.num_rows == 0 and not raw.source_columns:  # an empty file: no header
            self.rejects += rejects
            return
        key = tuple((f.name, str(f.type)) for f in raw.table.schema)
        if key not in self._sql:
            self._sql[key] = self._build(raw)
        sql, checks = self._sql[key]
        table = raw.table
        bad_ids = non_text_ids(table, {self.source.key: (self.source.key,)})
        if bad_ids:
            keep = pa.array([line not in bad_ids for line in table[LINE_COLUMN].to_pylist()])
            table = table.filter(keep)
            rejects += [{"source": self.where, "line": line, "field": f, "reason": why,
                         "value": value} for line, (f, why, value) in bad_ids.items()]
        self._con.register("raw", table)
        try:
            out = self._con.execute(sql).to_arrow_table()
        finally:
            self._con.unregister("raw")
        failed = pc.is_valid(out["check_no"])
        for row in out.filter(failed).select([LINE_COLUMN, "check_no", "bad_value"]).to_pylist():
            check = checks[row["check_no"]]
            rejects.append({"source": self.where, "line": row[LINE_COLUMN],
                            "field": check.field, "reason": check.reason,
                            "value": row["bad_value"] or ""})
        self.parts.append(out.filter(pc.invert(failed)))
        has_key = pc.or_kleene(pc.invert(failed), pc.greater_equal(out["check_no"], KEY_CHECKS))
        self.keyed.append(out.filter(has_key).select(["key", LINE_COLUMN]))
        self.rejects += sorted(rejects, key=lambda r: int(str(r["line"])))

    def _build(self, raw: RawBatch) -> tuple[str, list[Check]]:
        """The batch query and its checks, for the columns this batch has."""
        schema = raw.table.schema
        present = [n for n in schema.names if n != LINE_COLUMN]
        listed = [n for n in raw.source_columns or [] if n != LINE_COLUMN]
        available = listed + [n for n in present if n not in set(listed)]
        used = self._resolve(present, available)
        self.used = used
        texts = {f: [clean_text(quote(c)) for c in self.candidates[f] if c in present]
                 for f in used}
        value_raw = _coalesce(texts.get("value", []))
        numeric = "value" in used and (pa.types.is_integer(schema.field(used["value"]).type)
                                       or pa.types.is_floating(schema.field(used["value"]).type))
        # A numeric column is cast in `s`, the only step that sees the raw columns.
        value_num = f"CAST({quote(used['value'])} AS DOUBLE)" if numeric else "NULL::DOUBLE"
        value = ("value_num" if numeric else
                 f"CASE WHEN regexp_full_match(value_raw, {sql_str(VALUE_TEXT)}) "
                 "THEN TRY_CAST(value_raw AS DOUBLE) END")
        channel = f"lower({_coalesce(texts.get('channel', []))})"
        checks = [
            Check(self.source.key, "missing key", "key IS NULL", "NULL"),
            Check(self.source.key, f"key longer than {MAX_ID_CHARS} characters",
                  f"length(key) > {MAX_ID_CHARS}", "left(key, 80)"),
            # The events' own rules and reasons for a value and a channel, at this file's column.
            *(replace(c, field=used[c.field]) for c in row_checks("keep") if c.field in used),
        ]
        # A whole number in a float key column is the integer an event id spells (7.0: "7").
        typed = typed_id(quote(self.source.key), schema.field(self.source.key).type)
        key = clean_text(quote(self.source.key) if typed is None else typed[0])
        sql = f"""
        WITH s AS (
            SELECT {LINE_COLUMN}, {key} AS key,
                   {value_raw} AS value_raw, {value_num} AS value_num,
                   {channel} AS channel_raw
            FROM raw
        ), n AS (
            SELECT s.*, {value} AS value, coalesce(chmap.dst, s.channel_raw) AS channel
            FROM s LEFT JOIN chmap ON chmap.src = s.channel_raw
        ), c AS (
            SELECT *, {check_code(checks)} AS check_no FROM n
        )
        SELECT {LINE_COLUMN}, key, value, channel, check_no,
               {offending_value(checks)} AS bad_value
        FROM c ORDER BY {LINE_COLUMN}"""
        return sql, checks

    def _resolve(self, present: list[str], available: list[str]) -> dict[str, str]:
        """Field -> the first of its columns the file has; fails naming what it lacks."""
        have = set(present)
        if self.source.key not in have:
            raise MappingError(f"{self.where}: detail file has no key column "
                               f"{self.source.key!r} (given at {self.source.where}); "
                               f"the file has columns {available}")
        used = {f: next(c for c in cols if c in have)
                for f, cols in self.candidates.items() if any(c in have for c in cols)}
        named = self.source.columns is not None
        missing = [f for f in self.candidates if f not in used] if named else (
            [] if used else list(self.candidates))
        if missing:
            tried = "; ".join(f"{f}: {list(self.candidates[f])}" for f in missing)
            what = "names columns it does not have" if named else "has none of the columns"
            raise MappingError(f"{self.where}: detail file {what} ({tried}; given at "
                               f"{self.source.where}); the file has columns {available}")
        return used

    def table(self) -> DetailTable:
        """The accepted rows, once every batch is read; a key on two rows fails."""
        self._refuse_repeated_keys()
        rows = pa.concat_tables(self.parts) if self.parts else pa.table(
            {"key": pa.array([], pa.string()), "value": pa.array([], pa.float64()),
             "channel": pa.array([], pa.string())})
        fields = {f: rows[f].combine_chunks() for f in DETAIL_FIELDS if f in self.used}
        return DetailTable(self.source, dict(self.used), rows["key"].combine_chunks(), fields,
                           self.rows, self.rejects)

    def _refuse_repeated_keys(self) -> None:
        if not self.keyed:
            return
        self._con.register("keyed", pa.concat_tables(self.keyed))
        try:
            repeats = self._con.execute(
                f"SELECT key, list({LINE_COLUMN} ORDER BY {LINE_COLUMN})[1:2], "
                "count(*) OVER () FROM keyed GROUP BY key HAVING count(*) > 1 "
                f"ORDER BY min({LINE_COLUMN}) LIMIT 1").fetchall()
        finally:
            self._con.unregister("keyed")
        if not repeats:
            return
        key, (first, second), n = repeats[0]
        more = f" ({n - 1:,} more keys are repeated)" if n > 1 else ""
        raise SourceError(
            f"{self.where}: line {second}: key {key!r} (column {self.source.key!r}) is on line "
            f"{first} too{more}: a detail file has one row per event, and which row's values "
            "the event should get cannot be told; keep one row per key")


def _coalesce(texts: list[str]) -> str:
    if not texts:
        return "CAST(NULL AS VARCHAR)"
    return texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"

