"""Batch features on the embedded engine: DuckDB scans the event store's integer columns
(ts < T), maps store codes to the spec's, sorts; the shared kernels aggregate. Customers are
processed in key partitions so memory stays bounded whatever the size of the log."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyarrow as pa

from features.events import Encoder, EventArrays, fix_ties
from features.kernels import FeatureMatrix, Kernel
from features.spec import FeatureSpec
from features.store import EventStore

ROWS_PER_PARTITION = 25_000_000


def micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError(f"cutoff {when.isoformat()} has no time zone; give UTC")
    return int(round(when.timestamp() * 1_000_000))


def _recode(column: str, store_codes: dict[str, int], spec_codes: dict[str, int], other: int) -> str:
    """SQL mapping the store's codes of a field to the spec's (``other`` when the spec lacks it)."""
    whens = " ".join(f"WHEN {code} THEN {spec_codes.get(name, other)}"
                     for name, code in sorted(store_codes.items(), key=lambda kv: kv[1]))
    return f"CAST(CASE {column} {whens} ELSE {other} END AS SMALLINT)" if whens else \
        f"CAST({other} AS SMALLINT)"


class BatchEngine:
    """Feature vectors for every customer with events before a cutoff, from an event store."""

    def __init__(self, store: EventStore, spec: FeatureSpec) -> None:
        self.store = store
        self.con = store.con
        self.spec = spec
        self.enc = Encoder(spec)
        self.kernel = Kernel(spec, self.enc)

    def _select(self) -> str:
        types, chans, acts = (self.store.vocab(k) for k in ("event_type", "channel", "action"))
        etype = _recode("event_type_code", types, self.enc.etype, -1)
        channel = _recode("channel_code", chans, self.enc.channel, self.enc.other_channel)
        action = ("CASE WHEN action_code IS NULL THEN CAST(-1 AS SMALLINT) ELSE "
                  f"{_recode('action_code', acts, self.enc.action, self.enc.other_action)} END")
        # One score per event: its type's score (CSAT, rating, NPS...) read from properties.
        whens = " ".join(
            f"WHEN {types[s.event_type]} THEN TRY_CAST(json_extract_string(properties, "
            f"'$.{s.key}') AS DOUBLE)" for s in self.spec.scores if s.event_type in types)
        score = (f"CASE WHEN json_valid(properties) THEN CASE event_type_code {whens} END END"
                 if whens else "NULL")
        # NaN rather than NULL: numpy receives plain arrays (no null bitmaps to convert).
        return ", ".join([
            "customer_key AS k", "epoch_us(ts) AS ts", f"{etype} AS etype",
            f"{channel} AS channel", f"{action} AS action",
            "coalesce(CAST(value AS DOUBLE), 'nan'::DOUBLE) AS value",
            f"coalesce(CAST({score} AS DOUBLE), 'nan'::DOUBLE) AS score"])

    def _arrays(self, cutoff: datetime, part: int, parts: int,
                ids: np.ndarray) -> tuple[EventArrays, np.ndarray]:
        """The partition's encoded events, and the store key of each customer segment."""
        where = "ts < ?" + ("" if parts == 1 else f" AND customer_key % {parts} = {part}")
        # DuckDB sorts by (customer, ts) only; the rare equal-ts runs are put in the full tie
        # order in numpy, by the same lexsort the online path uses.
        got = self.con.execute(f"SELECT {self._select()} FROM events WHERE {where} "
                               "ORDER BY k, ts", [cutoff]).fetchnumpy()
        keys = np.asarray(got["k"])
        change = np.concatenate(([True], keys[1:] != keys[:-1])) if len(keys) else \
            np.zeros(0, bool)
        ev = EventArrays(
            customer_ids=list(ids[keys[change]]),
            cust=(np.cumsum(change) - 1).astype(np.int32), ts=np.asarray(got["ts"]),
            etype=np.asarray(got["etype"]), channel=np.asarray(got["channel"]),
            action=np.asarray(got["action"]), value=np.asarray(got["value"]),
            score=np.asarray(got["score"]),
        )
        fix_ties(ev)
        return ev, keys[change]

    def _customer_ids(self) -> np.ndarray:
        got = self.con.execute("SELECT customer_key, customer_id FROM customers").fetchnumpy()
        ids = np.empty(int(got["customer_key"].max()) + 1 if len(got["customer_key"]) else 0,
                       dtype=object)
        ids[got["customer_key"]] = got["customer_id"]
        return ids

    def features(self, cutoff: datetime) -> pa.Table:
        """One row per customer with at least one event before ``cutoff``."""
        row = self.con.execute("SELECT count(*) FROM events WHERE ts < ?", [cutoff]).fetchone()
        parts = max(1, math.ceil((row[0] if row else 0) / ROWS_PER_PARTITION))
        ids = self._customer_ids()
        by_key = self.store.attributes_by_key(self.spec.attributes)
        tables = []
        for part in range(parts):
            ev, keys = self._arrays(cutoff, part, parts, ids)
            matrix = self.kernel(ev, micros(cutoff))
            attrs = {f"attr_{a}": values[keys] for a, values in by_key.items()}
            tables.append(to_table(matrix, attrs))
        if not tables or tables[0].num_rows == 0:
            empty = self.kernel(self.enc.one_customer("", []), 0)
            nulls = {f"attr_{a}": np.array([None], object) for a in self.spec.attributes}
            return to_table(empty, nulls).slice(0, 0)
        return pa.concat_tables(tables)


def to_table(matrix: FeatureMatrix, attributes: dict[str, np.ndarray]) -> pa.Table:
    """customer_id, the numeric columns, the categorical ones, then attributes."""
    arrays: dict[str, pa.Array] = {"customer_id": pa.array(matrix.customer_ids, pa.string())}
    for k, name in enumerate(matrix.names):
        arrays[name] = pa.array(matrix.values[:, k])  # column-major: contiguous columns
    for name, (codes, vocab) in matrix.categorical.items():
        arrays[name] = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32), mask=codes < 0), pa.array(vocab, pa.string()))
    for name, values in attributes.items():
        arrays[name] = pa.array(values, pa.string()).dictionary_encode()
    return pa.table(arrays)
