"""Encoded, customer-sorted event arrays: what every feature kernel reads.

Customers are dense codes 0..G-1 in ascending order; within a customer events are ordered by
(ts, event_id), the tie order every engine uses. Categoricals are codes into the spec's
vocabularies, so kernels never touch strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.spec import FeatureSpec

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
I16 = npt.NDArray[np.int16]
F64 = npt.NDArray[np.float64]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class EventArrays:
    customer_ids: list[str]  # code -> id
    cust: I32
    ts: I64  # microseconds since the epoch, UTC
    etype: I16  # code into spec.event_types, -1 unknown type
    channel: I16  # code into spec.channel_vocab
    action: I16  # code into spec.action_vocab, -1 none
    value: F64  # nan when absent
    score: F64  # the score of the event's type (CSAT, rating, NPS...), nan when none

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    def __len__(self) -> int:
        return len(self.ts)


class Encoder:
    """Maps event fields to the spec's codes (per value for online use, by table for batch)."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.etype = {t: i for i, t in enumerate(spec.event_types)}
        self.channel = {c: i for i, c in enumerate(spec.channel_vocab)}
        self.action = {a: i for i, a in enumerate(spec.action_vocab)}
        self.other_channel = len(spec.channels)
        self.other_action = len(spec.actions)
        stage_index = {s: i for i, s in enumerate(spec.stages)}
        self.stage_of_type = np.array(
            [stage_index[s] if s is not None else -1 for s in spec.taxonomy.event_stage.values()]
            + [-1],  # code -1 (unknown type) indexes the last slot
            dtype=np.int8,
        )
        conv = set(spec.taxonomy.conversion_event_types)
        self.conversion_of_type = np.array([t in conv for t in spec.event_types] + [False])
        # Per event type code (last slot: unknown type): index of its score in spec.scores, or -1.
        self.score_of_type = np.full(len(spec.event_types) + 1, -1, np.int64)
        for k, score in enumerate(spec.scores):
            self.score_of_type[self.etype[score.event_type]] = k

    def dims(self) -> dict[str, pa.Table]:
        """Small code tables for joins in SQL engines."""
        def table(names: tuple[str, ...]) -> pa.Table:
            return pa.table({"name": pa.array(names, pa.string()),
                             "code": pa.array(range(len(names)), pa.int16())})
        return {"etype_dim": table(self.spec.event_types), "channel_dim": table(self.spec.channels),
                "action_dim": table(self.spec.actions)}

    def one_customer(self, customer_id: str, events: list[dict[str, Any]] | pa.Table) -> EventArrays:
        """Arrays for one customer's events, in the tie order every engine uses:
        (ts, event type, channel, action, value, scores), by the spec's codes."""
        if isinstance(events, pa.Table):
            cols = {name: events[name].to_pylist()
                    for name in ("event_type", "channel", "action", "properties")}
            cols["value"] = events["value"].to_numpy(zero_copy_only=False).tolist()
            ts = events["ts"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
        else:
            cols = {name: [e.get(name) for e in events] for name in
                    ("event_type", "channel", "action", "value", "properties")}
            ts = np.fromiter((_micros(e["ts"]) for e in events), np.int64, len(events))
        n = len(ts)
        etype = np.fromiter((self.etype.get(t, -1) for t in cols["event_type"]), np.int16, n)
        channel = np.fromiter((self.channel.get(c or "", self.other_channel)
                               for c in cols["channel"]), np.int16, n)
        action = np.fromiter((-1 if not a else self.action.get(a, self.other_action)
                              for a in cols["action"]), np.int16, n)
        value = np.array([np.nan if v is None else v for v in cols["value"]], dtype=np.float64)
        score = np.full(n, np.nan)
        for i in np.flatnonzero(self.score_of_type[etype] >= 0):
            props = cols["properties"][i]
            if props:
                score[i] = _score(props, self.spec.scores[self.score_of_type[etype[i]]].key)
        order = tie_order(ts, etype, channel, action, value, score)
        return EventArrays(
            customer_ids=[customer_id], cust=np.zeros(n, np.int32), ts=ts[order],
            etype=etype[order], channel=channel[order], action=action[order],
            value=value[order], score=score[order],
        )


def tie_order(ts: I64, etype: I16, channel: I16, action: I16, value: F64, score: F64) -> I64:
    """The engines' common order: ts, then type, channel, action, value, score (NaN last)."""
    order: I64 = np.lexsort((score, value, action, channel, etype, ts))
    return order


def fix_ties(ev: EventArrays) -> None:
    """Arrays sorted by (customer, ts) only: put runs of equal (customer, ts) in tie order."""
    same = (ev.cust[1:] == ev.cust[:-1]) & (ev.ts[1:] == ev.ts[:-1])
    if not same.any():
        return
    in_run = np.zeros(len(ev), bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    idx = np.flatnonzero(in_run)
    run = (np.cumsum(np.concatenate(([True], ~same))) - 1)[idx]
    order = np.lexsort((ev.score[idx], ev.value[idx], ev.action[idx], ev.channel[idx],
                        ev.etype[idx], run))
    src = idx[order]
    for name in ("etype", "channel", "action", "value", "score"):
        arr = getattr(ev, name)
        arr[idx] = arr[src]


def _micros(ts: Any) -> int:
    if isinstance(ts, int | np.integer):
        return int(ts)
    if hasattr(ts, "value") and hasattr(ts, "tz_convert"):  # pandas Timestamp: ns
        return int(ts.value // 1000)
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} has no time zone; events are UTC")
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _score(properties: str | dict[str, Any], key: str) -> float:
    try:
        obj = properties if isinstance(properties, dict) else json.loads(properties)
        value = obj.get(key) if isinstance(obj, dict) else None
        # Like the SQL engines' TRY_CAST of the JSON text: a number or numeric string is a
        # score; null, true/false, lists and objects are not.
        if value is None or isinstance(value, bool | list | dict):
            return np.nan
        return float(value)
    except (ValueError, TypeError):
        return np.nan
