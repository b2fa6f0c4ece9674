"""Batch features on the embedded engine: DuckDB scans the event store's integer columns
(ts < T), maps store codes to the spec's, sorts; the shared kernels aggregate. Customers are
processed in key partitions so memory stays bounded whatever the size of the log."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from features.events import Encoder, EventArrays
from features.kernels import FeatureMatrix, Kernel
from features.normalize import sql_str
from features.ordering import group_events
from features.spec import SCORE_NUMBER, FeatureSpec
from features.store import EventStore

ROWS_PER_PARTITION = 25_000_000
# Events per key range when every customer is read into one set of arrays: ~85 bytes an
# event while a range is scanned and grouped (~340 MB) on top of the result's 38.
RANGE_ROWS = 4_000_000
# Each range scans the whole table (a customer's events are spread through it): ~0.25 s a scan
# at 17.4M events. Past MAX_RANGES ranges, ranges grow instead.
MAX_RANGES = 8


def micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError(f"cutoff {when.isoformat()} has no time zone; give UTC")
    return round(when.timestamp() * 1_000_000)


# Properties a score is read from: valid JSON that is also standard JSON. DuckDB's parser takes
# NaN, Infinity and trailing commas, which Spark's and Python's refuse: with them the whole text
# gives no score in any engine. Strings are blanked first so their content cannot match.
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_NOT_STANDARD = r"(?i)nan|inf|,\s*[}\]]"
STANDARD_PROPERTIES = (
    f"json_valid(properties) AND NOT regexp_matches(regexp_replace(properties, "
    f"{sql_str(_JSON_STRING)}, '0', 'g'), {sql_str(_NOT_STANDARD)})"
)


def json_path(path: tuple[str, ...]) -> str:
    """A DuckDB JSON path of property names (each quoted: spaces, quotes, $ and the like are
    names; features.spec.key_problem keeps out what a quoted name cannot hold)."""
    return "$" + "".join(f'."{name}"' for name in path)


def score_query(common: str, where: str, codes: str, type_codes: list[int]) -> str:
    """The scored events with their score: the text at the score's path (``$path<i>`` for the
    i-th type code) read by the rule of every engine (features.spec.SCORE_NUMBER, finite)."""
    whens = " ".join(f"WHEN {code} THEN json_extract_string(p, $path{i})"
                     for i, code in enumerate(type_codes))
    number = (f"regexp_full_match(t, {sql_str(SCORE_NUMBER)}) "
              "AND isfinite(TRY_CAST(t AS DOUBLE))")
    return (
        f"WITH scored AS (SELECT {common}, CASE WHEN {STANDARD_PROPERTIES} THEN properties END "
        f"AS p FROM events WHERE {where} AND event_type_code IN ({codes})), "
        f"texts AS (SELECT *, CASE etype {whens} END AS t FROM scored) "
        f"SELECT k, ts, etype, channel, action, value, "
        f"coalesce(CASE WHEN {number} THEN TRY_CAST(t AS DOUBLE) END, 'nan'::DOUBLE) AS score "
        f"FROM texts"
    )


@dataclass(frozen=True)
class KeyRanges:
    """Events before a cutoff: how many, the first and last one's time (µs), and the
    customer-key ranges ``[lo, hi)`` to read them in, each with its number of events."""

    total: int
    first_us: int
    last_us: int
    bounds: tuple[tuple[int, int, int], ...]


class BatchEngine:
    """Feature vectors for every customer with events before a cutoff, from an event store."""

    def __init__(self, store: EventStore, spec: FeatureSpec) -> None:
        self.store = store
        self.con = store.con
        self.spec = spec
        self.enc = Encoder(spec)
        self.kernel = Kernel(spec, self.enc)

    def _luts(self) -> dict[str, np.ndarray]:
        """Store code -> spec code lookup arrays (actions shifted by one: -1 is "none")."""

        def lut(kind: str, spec_code: Callable[[str], int], shift: int = 0) -> np.ndarray:
            store_codes = self.store.vocab(kind)
            table = np.full(max(store_codes.values(), default=-1) + 1 + shift, -1, np.int16)
            for name, code in store_codes.items():
                table[code + shift] = spec_code(name)
            return table  # with a shift, slot 0 (no action) stays -1

        enc = self.enc
        return {
            "etype": lut("event_type", lambda n: enc.etype.get(n, -1)),
            "channel": lut("channel", lambda n: enc.channel.get(n, enc.other_channel)),
            # By the online rule: a blank action stored by the service is no action.
            "action": lut("action", enc.action_code, shift=1),
        }

    def _fetch(self, where: str, cutoff: datetime, n: int | None) -> dict[str, np.ndarray]:
        """Stream the unsorted scan into preallocated arrays (no ORDER BY, no null bitmaps).

        Event types that carry a score are read by a second, small query: referencing the
        properties column in the main scan would decode it for every event. ``where`` takes
        the cutoff as ``$cutoff``."""
        types = self.store.vocab("event_type")
        scored = [s for s in self.spec.scores if s.event_type in types]
        codes = ", ".join(str(types[s.event_type]) for s in scored) or "-1"
        common = (
            "customer_key AS k, epoch_us(ts) AS ts, event_type_code AS etype, "
            "channel_code AS channel, coalesce(action_code, -1) AS action, "
            "coalesce(value, 'nan'::DOUBLE) AS value"
        )
        at_cutoff: dict[str, object] = {"cutoff": cutoff}
        queries = [(
            f"SELECT {common}, 'nan'::DOUBLE AS score FROM events "
            f"WHERE {where} AND event_type_code NOT IN ({codes})", at_cutoff
        )]
        if scored:  # the paths are parameters: a key is the user's text, never SQL
            paths = {f"path{i}": json_path(s.path) for i, s in enumerate(scored)}
            sql = score_query(common, where, codes, [types[s.event_type] for s in scored])
            queries.append((sql, at_cutoff | paths))
        if n is None:  # a partition: count its rows to size the arrays
            sql = f"SELECT count(*) FROM events WHERE {where}"
            row = self.con.execute(sql, at_cutoff).fetchone()
            n = int(row[0]) if row else 0
        dtypes = {
            "k": np.int32,
            "ts": np.int64,
            "etype": np.int32,
            "channel": np.int32,
            "action": np.int32,
            "value": np.float64,
            "score": np.float64,
        }
        out = {name: np.empty(n, dtype) for name, dtype in dtypes.items()}
        at = 0
        for sql, params in queries:
            for batch in self.con.execute(sql, params).to_arrow_reader(1 << 20):
                m = batch.num_rows
                for i, name in enumerate(dtypes):
                    out[name][at : at + m] = batch.column(i).to_numpy(zero_copy_only=False)
                at += m
        return {name: arr[:at] for name, arr in out.items()}

    def _arrays(
        self, cutoff: datetime, part: int, parts: int, ids: np.ndarray, total: int
    ) -> tuple[EventArrays, np.ndarray]:
        """The partition's encoded events, and the store key of each customer segment.

        Events are grouped by customer with a counting sort; customers whose events are not in
        time order are sorted inside; equal-ts runs get the common tie order (as online)."""
        where = "ts < $cutoff" + ("" if parts == 1 else f" AND customer_key % {parts} = {part}")
        return self._grouped(where, cutoff, total if parts == 1 else None, ids)

    def _grouped(
        self, where: str, cutoff: datetime, n: int | None, ids: np.ndarray
    ) -> tuple[EventArrays, np.ndarray]:
        """The events ``where`` selects, grouped by customer in key order (``n``: how many)."""
        raw = self._fetch(where, cutoff, n)
        luts = self._luts()
        (ts, etype, channel, action, value, score, cust, starts, ends, seg_keys) = group_events(
            raw["k"],
            len(ids),
            raw["ts"],
            raw["etype"],
            raw["channel"],
            raw["action"],
            raw["value"],
            raw["score"],
            luts["etype"],
            luts["channel"],
            luts["action"],
        )
        ev = EventArrays(
            customer_ids=ids[seg_keys].tolist(),
            cust=cust,
            ts=ts,
            etype=etype,
            channel=channel,
            action=action,
            value=value,
            score=score,
            segments=(starts, ends),
        )
        return ev, seg_keys

    def encoded(self, cutoff: datetime, rows: int = RANGE_ROWS) -> tuple[EventArrays, np.ndarray]:
        """Every customer's encoded events before ``cutoff`` in one set of arrays (a scoring
        run's population), and the store key of each customer segment.

        Past ``rows`` events the store is read in key ranges into arrays sized up front: the
        raw scan (~40 bytes an event) and the grouping's copy are then one range's, not the
        whole's. At 17.4M events the peak above the 564 MB result falls from 0.86-0.90 GB to
        0.49-0.50 GB in about the same time (2.7-2.9 s against 2.8-3.3 s), and the one-pass
        peak grows with the store (~85 bytes an event) where a range's does not."""
        plan = self.key_ranges(cutoff, rows)
        if len(plan.bounds) <= 1:
            return self._arrays(cutoff, 0, 1, self._customer_ids(), plan.total)
        return joined_ranges(self.encoded_ranges(cutoff, plan), plan.total)

    def key_ranges(self, cutoff: datetime, rows: int) -> KeyRanges:
        """The events before ``cutoff`` split into customer-key ranges of about ``rows``
        events each, or more when that would make over MAX_RANGES ranges (a customer is never
        split), with their count and time span: one aggregate over the events."""
        got = self.con.execute(
            "SELECT customer_key AS k, count(*) AS n, min(epoch_us(ts)) AS first, "
            "max(epoch_us(ts)) AS last FROM events WHERE ts < ? GROUP BY 1 ORDER BY 1",
            [cutoff]).fetchnumpy()
        keys = np.asarray(got["k"], np.int64)
        counts = np.asarray(got["n"], np.int64)
        if not len(keys):
            return KeyRanges(0, 0, 0, ())
        total = int(counts.sum())
        rows = max(rows, 1, -(-total // MAX_RANGES))
        part = (np.cumsum(counts) - counts) // rows  # by each customer's first event
        firsts = np.concatenate([[0], np.flatnonzero(np.diff(part)) + 1, [len(keys)]]).tolist()
        bounds = tuple((int(keys[a]), int(keys[b - 1]) + 1, int(counts[a:b].sum()))
                       for a, b in itertools.pairwise(firsts))
        return KeyRanges(total, int(np.min(got["first"])), int(np.max(got["last"])), bounds)

    def encoded_ranges(self, cutoff: datetime, plan: KeyRanges
                       ) -> Iterator[tuple[EventArrays, np.ndarray]]:
        """``encoded(cutoff)`` range by range of ``plan`` (customer codes from 0 in each):
        joined in order, the same arrays, with one range at a time in memory as the scan
        reads it."""
        ids = self._customer_ids()
        for lo, hi, n in plan.bounds:
            where = f"ts < $cutoff AND customer_key >= {lo} AND customer_key < {hi}"
            yield self._grouped(where, cutoff, n, ids)

    def _customer_ids(self) -> np.ndarray:
        """Customer id by store key."""
        got = self.con.execute("SELECT customer_key, customer_id FROM customers").fetchnumpy()
        keys = np.asarray(got["customer_key"], dtype=np.int64)
        ids = np.full(int(keys.max()) + 1 if len(keys) else 0, None, dtype=object)
        ids[keys] = got["customer_id"]
        return ids

    def features(self, cutoff: datetime) -> pa.Table:
        """One row per customer with at least one event before ``cutoff``."""
        row = self.con.execute("SELECT count(*) FROM events WHERE ts < ?", [cutoff]).fetchone()
        total = int(row[0]) if row else 0
        parts = max(1, math.ceil(total / ROWS_PER_PARTITION))
        ids = self._customer_ids()
        by_key = self.store.attributes_by_key(self.spec.attributes)
        tables = []
        for part in range(parts):
            ev, keys = self._arrays(cutoff, part, parts, ids, total)
            matrix = self.kernel(ev, micros(cutoff))
            attrs = {f"attr_{a}": (codes[keys], vocab) for a, (codes, vocab) in by_key.items()}
            tables.append(to_table(matrix, attrs))
        if not tables or tables[0].num_rows == 0:
            empty = self.kernel(self.enc.one_customer("", []), 0)
            nulls = {
                f"attr_{a}": (np.array([-1], np.int32), pa.array([], pa.string()))
                for a in self.spec.attributes
            }
            return to_table(empty, nulls).slice(0, 0)
        return pa.concat_tables(tables)


def joined_ranges(ranges: Iterable[tuple[EventArrays, np.ndarray]], total: int
                  ) -> tuple[EventArrays, np.ndarray]:
    """Customer-sorted parts' arrays (with their store keys) in one set sized ``total`` up
    front, customer codes and segments renumbered; a part the iterable lets go of is freed
    once copied."""
    out = EventArrays([], np.empty(total, np.int32), np.empty(total, np.int64),
                      np.empty(total, np.int16), np.empty(total, np.int16),
                      np.empty(total, np.int16), np.empty(total, np.float64),
                      np.empty(total, np.float64))
    starts, ends, keys = [], [], []
    at = 0
    for part, part_keys in ranges:
        assert part.segments is not None
        m, first = len(part), len(out.customer_ids)
        out.cust[at:at + m] = part.cust + first
        for name in ("ts", "etype", "channel", "action", "value", "score"):
            getattr(out, name)[at:at + m] = getattr(part, name)
        out.customer_ids.extend(part.customer_ids)
        starts.append(part.segments[0] + at)
        ends.append(part.segments[1] + at)
        keys.append(part_keys)
        at += m
        del part  # else held while the next range is scanned: two ranges at the peak
    if at != total:  # the store changed between the count and the scans
        raise RuntimeError(f"read {at:,} events where {total:,} were counted")
    out.segments = (np.concatenate(starts), np.concatenate(ends))
    return out, np.concatenate(keys)


def to_table(matrix: FeatureMatrix, attributes: dict[str, tuple[np.ndarray, pa.Array]]) -> pa.Table:
    """customer_id, the numeric columns, the categorical ones, then attributes."""
    names = ["customer_id", *matrix.names, *matrix.categorical, *attributes]
    if len(set(names)) != len(names):  # a dict would keep the last column silently
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"feature columns named twice: {twice}")
    arrays: dict[str, pa.Array] = {"customer_id": pa.array(matrix.customer_ids, pa.string())}
    for k, name in enumerate(matrix.names):
        arrays[name] = pa.array(matrix.values[:, k])  # column-major: contiguous columns
    for name, (codes, vocab) in matrix.categorical.items():
        arrays[name] = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32), mask=codes < 0), pa.array(vocab, pa.string())
        )
    for name, (codes, dictionary) in attributes.items():
        arrays[name] = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32), mask=codes < 0), dictionary
        )
    return pa.table(arrays)
