"""Batch features on the embedded engine: DuckDB scans the event store's integer columns
(ts < T), maps store codes to the spec's, sorts; the shared kernels aggregate. Customers are
processed in key partitions so memory stays bounded whatever the size of the log."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyarrow as pa

from features.events import EventArrays, Encoder
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
        scores = [
            f"CASE WHEN event_type_code = {types[s.event_type]} AND json_valid(properties) THEN "
            f"TRY_CAST(json_extract_string(properties, '$.{s.key}') AS DOUBLE) END AS score_{i}"
            if s.event_type in types else f"CAST(NULL AS DOUBLE) AS score_{i}"
            for i, s in enumerate(self.spec.scores)]
        return ", ".join([
            "customer_key AS k", "epoch_us(ts) AS ts", f"{etype} AS etype",
            f"{channel} AS channel", f"{action} AS action", "CAST(value AS DOUBLE) AS value",
            *scores])

    def _arrays(self, cutoff: datetime, part: int, parts: int, ids: np.ndarray) -> EventArrays:
        where = "ts < ?" + ("" if parts == 1 else f" AND customer_key % {parts} = {part}")
        table = self.con.execute(
            f"SELECT {self._select()} FROM events WHERE {where} ORDER BY {self._order()}",
            [cutoff]).to_arrow_table()
        keys = table["k"].to_numpy()
        change = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, bool)
        cust = (np.cumsum(change) - 1).astype(np.int32)

        def col(name: str, dtype: type) -> np.ndarray:
            return table[name].to_numpy(zero_copy_only=False).astype(dtype, copy=False)

        return EventArrays(
            customer_ids=list(ids[keys[change]]),
            cust=cust, ts=col("ts", np.int64), etype=col("etype", np.int16),
            channel=col("channel", np.int16), action=col("action", np.int16),
            value=col("value", np.float64),
            scores={s.name: col(f"score_{i}", np.float64) for i, s in enumerate(self.spec.scores)},
        )

    def _order(self) -> str:
        """The engines' common tie order (missing values last)."""
        scores = [f"score_{i} NULLS LAST" for i in range(len(self.spec.scores))]
        return ", ".join(["k", "ts", "etype", "channel", "action", "value NULLS LAST", *scores])

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
        tables = []
        for part in range(parts):
            ev = self._arrays(cutoff, part, parts, ids)
            matrix = self.kernel(ev, micros(cutoff))
            attrs = self.store.attributes(ev.customer_ids, self.spec.attributes)
            tables.append(to_table(matrix, attrs))
        if not tables:
            empty = Kernel(self.spec, self.enc)(self.enc.one_customer("", []), 0)
            return to_table(empty, {f"attr_{a}": np.array([None]) for a in self.spec.attributes}
                            ).slice(0, 0)
        return pa.concat_tables(tables)


def to_table(matrix: FeatureMatrix, attributes: dict[str, np.ndarray]) -> pa.Table:
    """customer_id, the numeric columns, the categorical ones, then attributes."""
    arrays: dict[str, pa.Array] = {"customer_id": pa.array(matrix.customer_ids, pa.string())}
    for k, name in enumerate(matrix.names):
        arrays[name] = pa.array(matrix.values[:, k])
    for name, values in {**matrix.categorical, **attributes}.items():
        arrays[name] = pa.array(values, pa.string())
    return pa.table(arrays)
