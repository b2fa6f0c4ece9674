"""Map source rows onto the event contract and validate them, one vectorised query per batch.

Every check is declared once (condition, field, reason, offending value); the first failing
check of a row names why it is rejected. Valid rows come out in EVENT_SCHEMA order and types.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import MappingError
from features.iso_time import bad_offset, iso_expr
from features.mapping import EPOCH_UNITS, ISO8601, ColumnMapping

# Where the loaders have always found a reject's reasons.
from features.normalize_checks import UNKNOWN_TYPE as UNKNOWN_TYPE
from features.normalize_checks import (
    VALUE_TEXT,
    Check,
    check_code,
    is_json_object,
    offending_value,
    out_of_range,
    row_checks,
)
from features.normalize_ids import id_sql
from features.normalize_zones import refused_zone, skipped_local_time, strptime_guard
from features.read_jsonl import non_text_ids
from features.readers import LINE_COLUMN
from features.schema import DEFAULT_CHANNEL, EVENT_SCHEMA
from features.taxonomy import TRIMMED, Taxonomy

# The Python twin of NORMALISE_TYPE_SQL lives with the taxonomy, which spells its keys so too.
from features.taxonomy import normal_event_type as normal_event_type
from features.zone_names import zone_lists

# Epoch numbers are clamped to +-1e17 us (years -1200..5138) before becoming timestamps: DuckDB
# raises, for the whole batch, on values past its range; clamped, they fail the range check.
EPOCH_CLAMP_US = 10**17
Columns = dict[str, tuple[str, ...]]  # canonical field -> its source columns, in order
MAX_CACHED_SQL = 64  # one query per raw schema seen; bounded, whatever a source throws at it
# Per batch, to find the rows behind an unforeseen DuckDB error: ~12 such rows are isolated
# exactly (about 34 queries each); past that a failing part is rejected whole, with the error.
MAX_ISOLATING_QUERIES = 400
# Rows without an event_id get one derived from their content; the store numbers identical rows
# of one load apart (two identical purchases on one day are two purchases, not a re-send).
DERIVED_ID = "_derived_id"
STAGED_SCHEMA = EVENT_SCHEMA.append(pa.field(DERIVED_ID, pa.bool_(), nullable=False))
# What the normalizer gives a batch's valid rows: each with the line it came from, which a load
# keeps while staging so a row found to conflict later is reported at its line.
LINED_SCHEMA = STAGED_SCHEMA.append(pa.field(LINE_COLUMN, pa.int64()))
REJECT_SCHEMA = pa.schema(
    [("line", pa.int64()), ("field", pa.string()), ("reason", pa.string()), ("value", pa.string())]
)


def clean_text(expr: str) -> str:
    """Text with surrounding whitespace (spaces, tabs, line breaks) removed; empty is missing.

    Trimming only values that start or end with whitespace is ~40% cheaper than trimming all.
    """
    text = f"CAST({expr} AS VARCHAR)"
    ws = "' ' || chr(9) || chr(10) || chr(13)"
    return (f"NULLIF(CASE WHEN ord({text}[1]) <= 32 OR ord({text}[-1]) <= 32 "
            f"THEN trim({text}, {ws}) ELSE {text} END, '')")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# How a source's event type becomes the taxonomy's spelling ("Add to Cart" -> add_to_cart) and
# a channel its stored one ("Email" -> email): SQL for files, Python for the service's requests;
# tests/features/test_normalize.py checks that the two agree.
NORMALISE_TYPE_SQL = "lower(regexp_replace({}, '[\\s\\-]+', '_', 'g'))"


def normal_channel(text: str) -> str:
    return text.strip(TRIMMED).lower()


def normal_action(text: str | None) -> str | None:
    """An action as the loader stores it (``clean_text``): trimmed, and blank is no action.

    Every engine reads a stored action through this rule too: the service stored actions as
    sent before it cleaned them, and "" must not be a marketing action in one engine and none
    in another."""
    if text is None:
        return None
    return text.strip(TRIMMED) or None


def _is_time(schema: pa.Schema, column: str) -> bool:
    typ = schema.field(column).type
    return bool(pa.types.is_timestamp(typ) or pa.types.is_date(typ))


# The id of a row without one: a hash of what it stores. TRY_CAST: the id is computed for
# rejected rows too, and nan/inf/huge values must not abort the batch (they fall back to the
# value's text).
DERIVED_ID_SQL = (
    "'d-' || md5(concat_ws(chr(31), customer_id, CAST(epoch_us(ts) AS VARCHAR), "
    "event_type, channel, "
    "coalesce(CAST(TRY_CAST(round(value * 1e6) AS HUGEINT) AS VARCHAR), "
    "CAST(value AS VARCHAR), ''), coalesce(action, ''), coalesce(properties, '')))")


def _value_sql(schema: pa.Schema, resolved: Columns) -> tuple[str, str]:
    """The value as a number in `s` (a numeric source column, cast there: the only CTE that
    sees the raw columns) and the value expression of `n` (text parsed when it is a number)."""
    value_col = resolved["value"][0] if "value" in resolved else None
    numeric = value_col is not None and (
        pa.types.is_integer(schema.field(value_col).type)
        or pa.types.is_floating(schema.field(value_col).type))
    if numeric and value_col:
        return f"CAST({quote(value_col)} AS DOUBLE)", "value_num"
    return ("CAST(NULL AS DOUBLE)",
            f"CASE WHEN regexp_full_match(value_raw, {sql_str(VALUE_TEXT)}) "
            "THEN TRY_CAST(value_raw AS DOUBLE) END")


class Normalizer:
    """Turns raw batches of one source into canonical events and rejects."""

    def __init__(self, mapping: ColumnMapping, taxonomy: Taxonomy) -> None:
        self.mapping = mapping
        self.taxonomy = taxonomy
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.register("etmap", pa.table({
            "src": pa.array(list(mapping.event_types), pa.string()),
            # Spelled as the taxonomy's names are, so "Cart Viewed: Add To Cart" finds add_to_cart.
            "dst": pa.array([normal_event_type(t) for t in mapping.event_types.values()],
                            pa.string()),
        }))
        # The mapping's channel renames, keyed as the query spells a row's channel (trimmed,
        # lower-case); joined only when there are some.
        self._con.register("chmap", pa.table({
            "src": pa.array(list(mapping.channels), pa.string()),
            "dst": pa.array(list(mapping.channels.values()), pa.string()),
        }))
        self._con.register("tax", pa.table({
            "name": pa.array(list(taxonomy.event_stage), pa.string()),
        }))
        # Zone names a timestamp may carry, and those refused with a reason (BST, Japan).
        accepted, refused = zone_lists(self._con)
        self._zones = "[" + ", ".join(sql_str(z) for z in accepted) + "]"
        self._refused = "[" + ", ".join(sql_str(z) for z in refused) + "]"
        self._checks = self._row_checks(mapping.ts_format, taxonomy.unknown_event_types)
        self._sql_cache: dict[tuple[tuple[str, str], ...], tuple[str, Columns]] = {}

    def _row_checks(self, formats: tuple[str, ...], policy: str) -> list[Check]:
        """The checks of a row; those of zone names and offsets only where a format reads
        them (their reasons replace "unparseable timestamp" for the rows they name)."""
        names = any(f == ISO8601 or "%Z" in f for f in formats)
        offsets = any(f == ISO8601 or f.rstrip().endswith("%z") for f in formats)
        return row_checks(policy, skipped_local_time("ts_raw", "ts", self._zones, formats),
                          bad_offset("ts_raw") if offsets else "false",
                          refused_zone("ts_raw", self._refused) if names else "false")

    def close(self) -> None:
        self._con.close()

    def reads_epochs(self, schema: pa.Schema) -> str | None:
        """The epoch unit a batch of ``schema`` reads its timestamps in (the mapping's first
        epoch format, which reads every number), None when it reads none: a typed time
        column or a constant ignores ts_format, and a mapping may list no epoch unit."""
        unit = next((f for f in self.mapping.ts_format if f in EPOCH_UNITS), None)
        if unit is None or "ts" in self.mapping.constants:
            return None
        column = next((c for c in self.mapping.candidates("ts") if c in schema.names), None)
        return None if column is None or _is_time(schema, column) else unit

    def __call__(
        self, raw: pa.Table, where: str, source_columns: list[str] | None = None
    ) -> tuple[pa.Table, pa.Table]:
        """(valid events in LINED_SCHEMA, rejects in REJECT_SCHEMA) for one raw batch.

        ``source_columns``: every column of the source, in its order, when the reader kept only
        some (the wanted ones); they name what the file has when a required column is missing.
        """
        if raw.num_rows == 0:
            return LINED_SCHEMA.empty_table(), REJECT_SCHEMA.empty_table()
        key = tuple((f.name, str(f.type)) for f in raw.schema)
        cached = self._sql_cache.get(key)
        if cached is None:
            if len(self._sql_cache) >= MAX_CACHED_SQL:
                self._sql_cache.clear()
            cached = self._sql_cache[key] = self._build_sql(raw.schema, where, source_columns)
        sql, id_columns = cached
        raw, id_rejects = self._without_non_text_ids(raw, id_columns)
        out, failed = self._execute(sql, raw)
        bad = pc.is_valid(out["check_no"])
        valid = out.filter(pc.invert(bad)).select(LINED_SCHEMA.names).cast(LINED_SCHEMA)
        rejected = out.filter(bad)
        codes = rejected["check_no"].to_numpy(zero_copy_only=False)
        values = rejected["bad_value"]
        rejects = pa.table({
            "line": rejected[LINE_COLUMN],
            "field": pa.array([self._checks[c].field for c in codes], pa.string()),
            "reason": pa.array(self._reasons(codes, values), pa.string()),
            "value": values,
        }).cast(REJECT_SCHEMA)
        if id_rejects is not None:
            rejects = pa.concat_tables([rejects, id_rejects])
        if failed:
            rejects = pa.concat_tables([rejects, pa.table({
                "line": pa.array([line for line, _ in failed], pa.int64()),
                "field": pa.array([""] * len(failed), pa.string()),
                "reason": pa.array([f"value the checks did not foresee: {why}"
                                    for _, why in failed], pa.string()),
                "value": pa.array([""] * len(failed), pa.string()),
            })])
        return valid, rejects

    def _reasons(self, codes: Iterable[int], values: pa.ChunkedArray) -> list[str]:
        """Each rejected row's reason; a check that explains its rows reads their values."""
        checks = [self._checks[c] for c in codes]
        if all(c.explain is None for c in checks):
            return [c.reason for c in checks]
        return [c.reason_of(v) for c, v in zip(checks, values.to_pylist(), strict=True)]

    def _without_non_text_ids(self, raw: pa.Table,
                              id_columns: Columns) -> tuple[pa.Table, pa.Table | None]:
        """The batch without the rows whose id was a JSON object, list, true/false or inexact
        number, and their rejects."""
        bad = non_text_ids(raw, id_columns)
        if not bad:
            return raw, None
        keep = pa.array([line not in bad for line in raw[LINE_COLUMN].to_pylist()], pa.bool_())
        rows = [(line, *bad[line]) for line in sorted(bad)]
        return raw.filter(keep), pa.Table.from_pylist(
            [dict(zip(REJECT_SCHEMA.names, row, strict=True)) for row in rows], REJECT_SCHEMA)

    def _execute(self, sql: str, raw: pa.Table,
                 budget: list[int] | None = None) -> tuple[pa.Table, list[tuple[int, str]]]:
        """The batch query's result, and (line, error) of rows it failed on. A DuckDB error means
        a value no check foresaw; halving the batch narrows it down to the rows that cause it,
        which are rejected with the error, instead of the whole load failing. ``budget`` caps
        the extra queries: past it, a failing part is rejected whole (a batch of 100k bad rows
        would otherwise take 200k queries)."""
        budget = [MAX_ISOLATING_QUERIES] if budget is None else budget
        self._con.register("raw", raw)
        try:
            return self._con.execute(sql).to_arrow_table(), []
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            why = str(exc).strip().splitlines()[0][:200]
        finally:
            self._con.unregister("raw")
        if raw.num_rows == 0:  # not a row's value: the query itself fails (halving won't end)
            raise MappingError(f"mapping {self.mapping.source}: the validation query fails "
                               f"whatever the rows: {why}")
        budget[0] -= 1
        if raw.num_rows == 1 or budget[0] <= 0:
            empty, _ = self._execute(sql, raw.slice(0, 0), budget)
            return empty, [(int(line), why) for line in raw[LINE_COLUMN].to_pylist()]
        half = raw.num_rows // 2
        first, bad_first = self._execute(sql, raw.slice(0, half), budget)
        second, bad_second = self._execute(sql, raw.slice(half), budget)
        return pa.concat_tables([first, second]), bad_first + bad_second

    # -- SQL construction -------------------------------------------------------------------
    def _text(self, canonical: str, resolved: dict[str, tuple[str, ...]]) -> str:
        if canonical in self.mapping.constants:
            return sql_str(self.mapping.constants[canonical])
        columns = resolved.get(canonical)
        if not columns:
            return "CAST(NULL AS VARCHAR)"
        texts = [clean_text(quote(c)) for c in columns]
        return texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"

    def _id(self, canonical: str, schema: pa.Schema, resolved: Columns) -> tuple[str, str]:
        """(SQL text of an id, SQL true when a typed column gave it a value with no text
        spelling): ``features.normalize_ids``."""
        columns = resolved.get(canonical)
        if canonical in self.mapping.constants or not columns:
            return self._text(canonical, resolved), "false"
        return id_sql(schema, columns, {c: clean_text(quote(c)) for c in columns},
                      {c: quote(c) for c in columns})

    def _ts_text(self, schema: pa.Schema, resolved: dict[str, tuple[str, ...]]) -> str:
        """The timestamp as the source wrote it, for the checks and the rejects file. A typed
        column's rows are never unparseable, so only a missing one (NULL) and one out of range
        (its text, for the rejects file) matter: formatting every timestamp as text was 23 %
        of the validation query on Parquet."""
        column = resolved["ts"][0] if "ts" in resolved else None
        if column is None or "ts" in self.mapping.constants or not _is_time(schema, column):
            return self._text("ts", resolved)
        col, ts = quote(column), self._ts_expr(schema, resolved)
        return (f"CASE WHEN {col} IS NULL THEN NULL WHEN {out_of_range(ts)} "
                f"THEN CAST({col} AS VARCHAR) ELSE '' END")

    def _ts_expr(self, schema: pa.Schema, resolved: dict[str, tuple[str, ...]]) -> str:
        column = resolved["ts"][0] if "ts" in resolved else None
        if column is None:
            return f"TRY_CAST({self._text('ts', resolved)} AS TIMESTAMPTZ)"
        col = quote(column)
        if _is_time(schema, column):
            return f"CAST({col} AS TIMESTAMPTZ)"
        text = self._text("ts", resolved)
        parts = []
        for fmt in self.mapping.ts_format:
            if fmt == ISO8601:
                parts.append(iso_expr(text, self._zones))
            elif fmt in EPOCH_UNITS:
                micros = f"TRY_CAST(TRY_CAST({text} AS DOUBLE) * {EPOCH_UNITS[fmt]} AS BIGINT)"
                # greatest/least skip NULLs: an unparseable number must stay NULL.
                clamped = (f"CASE WHEN {micros} IS NOT NULL THEN "
                           f"greatest(-{EPOCH_CLAMP_US}, least({EPOCH_CLAMP_US}, {micros})) END")
                parts.append(f"CAST(make_timestamp({clamped}) AS TIMESTAMPTZ)")
            else:
                read = f"CAST(TRY_STRPTIME({text}, {sql_str(fmt)}) AS TIMESTAMPTZ)"
                guard = strptime_guard(text, fmt, self._refused)
                parts.append(read if guard is None else f"CASE WHEN {guard} THEN {read} END")
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"

    def _properties_expr(self, schema: pa.Schema, resolved: dict[str, tuple[str, ...]]) -> str:
        base = self._text("properties", resolved)
        extras = self.mapping.extra_columns(schema.names)
        if not extras:
            return base
        pairs = ", ".join(f"{sql_str(c)}, {clean_text(quote(c))}" for c in extras)
        extra = f"CAST(json_object({pairs}) AS VARCHAR)"
        # A malformed base stays as it is so the properties check rejects it by name.
        return (f"CASE WHEN {base} IS NULL THEN {extra} WHEN {is_json_object(base)} "
                f"THEN CAST(json_merge_patch({base}, {extra}) AS VARCHAR) ELSE {base} END")

    def _channel_rename(self) -> tuple[str, str]:
        """What the `n` step adds to rename channels (the columns' REPLACE, the join); nothing
        without renames, so a mapping without them pays no join."""
        if not self.mapping.channels:
            return "", ""
        return (" REPLACE (coalesce(chmap.dst, s.channel) AS channel)",
                "LEFT JOIN chmap ON chmap.src = s.channel")

    def _build_sql(self, schema: pa.Schema, where: str, source_columns: list[str] | None
                   ) -> tuple[str, Columns]:
        """The batch query, and the columns of the ids (for the rows with JSON values as ids)."""
        # Source columns the reader left out are not the mapping's (it kept all of those), so
        # they only make a missing-column message name everything the file has.
        present = [n for n in schema.names if n != LINE_COLUMN]
        listed = [n for n in source_columns or [] if n != LINE_COLUMN]
        seen = set(listed)
        available = listed + [n for n in present if n not in seen]
        resolved = self.mapping.resolve(available, where)
        channel_default = sql_str(self.mapping.defaults.get("channel", DEFAULT_CHANNEL))
        value_num, value_expr = _value_sql(schema, resolved)
        normalise_type = NORMALISE_TYPE_SQL.format("d.event_type_raw")
        ev_id = DERIVED_ID_SQL
        checks = self._checks
        rename, rename_join = self._channel_rename()
        ids: Columns = {name: resolved[name] for name in ("customer_id", "event_id")
                        if name in resolved and name not in self.mapping.constants}
        customer, customer_typed = self._id("customer_id", schema, resolved)
        event, event_typed = self._id("event_id", schema, resolved)
        return f"""
        WITH s AS (
            SELECT {LINE_COLUMN},
                   {customer} AS customer_id, {customer_typed} AS customer_id_typed,
                   {event} AS event_id_raw, {event_typed} AS event_id_typed,
                   {self._ts_text(schema, resolved)} AS ts_raw,
                   {self._ts_expr(schema, resolved)} AS ts,
                   {self._text('event_type', resolved)} AS event_type_raw,
                   {self._text('value', resolved)} AS value_raw,
                   {value_num} AS value_num,
                   lower(coalesce({self._text('channel', resolved)}, {channel_default})) AS channel,
                   {self._text('action', resolved)} AS action,
                   {self._properties_expr(schema, resolved)} AS properties
            FROM raw
        ), types AS (  -- normalise each distinct source event type once
            SELECT d.event_type_raw, tax.name IS NOT NULL AS known_type,
                   coalesce(etmap.dst, {normalise_type}) AS event_type
            FROM (SELECT DISTINCT event_type_raw FROM s) d
            LEFT JOIN etmap ON etmap.src = d.event_type_raw
            LEFT JOIN tax ON tax.name = coalesce(etmap.dst, {normalise_type})
        ), n AS (
            SELECT s.*{rename}, {value_expr} AS value, types.event_type, types.known_type
            FROM s LEFT JOIN types ON types.event_type_raw IS NOT DISTINCT FROM s.event_type_raw
            {rename_join}
        ), c AS (
            SELECT *, {check_code(checks)} AS check_no FROM n
        )
        SELECT coalesce(event_id_raw, {ev_id}) AS event_id, customer_id, ts, event_type, channel,
               value, action, properties, event_id_raw IS NULL AS {DERIVED_ID}, {LINE_COLUMN},
               check_no, {offending_value(checks)} AS bad_value
        FROM c ORDER BY {LINE_COLUMN}
        """, ids
