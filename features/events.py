"""Encoded, customer-sorted event arrays: what every feature kernel reads.

Customers are dense codes 0..G-1 in ascending order; within a customer events are ordered by
(ts, event_id), the tie order every engine uses. Categoricals are codes into the spec's
vocabularies, so kernels never touch strings.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.normalize import normal_action
from features.spec import SCORE_NUMBER, FeatureSpec

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
I16 = npt.NDArray[np.int16]
F64 = npt.NDArray[np.float64]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(SCORE_NUMBER)


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
    segments: tuple[I64, I64] | None = None  # each customer's [start, end), when known

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
        self._etype_set = pc.SetLookupOptions(value_set=pa.array(spec.event_types, pa.string()))
        self._channel_set = pc.SetLookupOptions(value_set=pa.array(spec.channel_vocab, pa.string()))
        self.score_of_type = np.full(len(spec.event_types) + 1, -1, np.int64)
        for k, score in enumerate(spec.scores):
            self.score_of_type[self.etype[score.event_type]] = k  # one each: FeatureSpec checks
        self._paths = [score.path for score in spec.scores]

    def one_customer(
        self,
        customer_id: str,
        events: list[dict[str, Any]] | pa.Table,
        cutoff_us: int | None = None,
    ) -> EventArrays:
        """Arrays for one customer's events (those before ``cutoff_us`` when given), in the
        tie order every engine uses: (ts, event type, channel, action, value, score)."""
        if isinstance(events, pa.Table):
            return self._from_table(customer_id, events, cutoff_us)
        if cutoff_us is not None:
            events = [e for e in events if _micros(e["ts"]) < cutoff_us]
        n = len(events)
        etype = np.fromiter((self.etype.get(e["event_type"], -1) for e in events), np.int16, n)
        return self._finish(
            customer_id,
            np.fromiter((_micros(e["ts"]) for e in events), np.int64, n),
            etype,
            np.fromiter(
                (self.channel.get(e.get("channel") or "", self.other_channel) for e in events),
                np.int16,
                n,
            ),
            self.action_codes([e.get("action") for e in events]),
            np.array(
                [np.nan if e.get("value") is None else e["value"] for e in events], dtype=np.float64
            ),
            [e.get("properties") for e in events],
        )

    def _from_table(self, customer_id: str, table: pa.Table, cutoff_us: int | None) -> EventArrays:
        """Columnar input (a store history): for a few hundred rows, list lookups beat Arrow
        kernels, whose per-call overhead dominates at this size."""
        ts = np.asarray(table["ts"].to_numpy()).view(np.int64)
        if cutoff_us is not None and len(ts) and ts.max() >= cutoff_us:
            keep = ts < cutoff_us
            table, ts = table.filter(pa.array(keep)), ts[keep]
        return self._finish(customer_id, *self._columns(table, ts))

    def by_customer(self, table: pa.Table) -> dict[str, EventArrays]:
        """Each customer's arrays from a table of many customers' events (a committed
        append): the columns are encoded once for the whole table, then split; encoding per
        customer costs ~0.7 ms of Arrow call overhead each, more than the store's commit."""
        if table.num_rows == 0:
            return {}
        ts = np.asarray(table["ts"].to_numpy()).view(np.int64)
        _, etype, channel, action, value, _ = self._columns(table, ts)
        properties = table["properties"].to_pylist()
        ids, who = np.unique(np.array(table["customer_id"].to_pylist(), dtype=object),
                             return_inverse=True)
        order = np.argsort(who, kind="stable")
        ends = np.cumsum(np.bincount(who, minlength=len(ids)))
        out: dict[str, EventArrays] = {}
        for k, cid in enumerate(ids.tolist()):
            rows = order[(ends[k - 1] if k else 0):ends[k]]
            out[cid] = self._finish(cid, ts[rows], etype[rows], channel[rows], action[rows],
                                    value[rows], [properties[i] for i in rows])
        return out

    def _columns(self, table: pa.Table, ts: I64) -> tuple[I64, I16, I16, I16, F64, Any]:
        """A table's columns as codes (rows in table order; properties as given)."""
        return (
            ts,
            _lookup(table["event_type"], self.etype, self._etype_set, -1),
            _lookup(table["channel"], self.channel, self._channel_set, self.other_channel),
            self.action_codes(table["action"].to_pylist()),
            table["value"].to_numpy(zero_copy_only=False).astype(np.float64),
            table["properties"],
        )

    def action_code(self, action: str | None) -> int:
        """The code of a stored action read by the loader's rule (``normal_action``): -1 for
        none or blank, "other" for a name the spec does not list."""
        name = normal_action(action)
        return -1 if name is None else self.action.get(name, self.other_action)

    def action_codes(self, actions: list[str | None]) -> I16:
        """``action_code`` of each; names stored as the spec spells them (nearly all) skip
        the trimming."""
        codes, slow = self.action, self.action_code
        return np.array([-1 if a is None else codes[a] if a in codes else slow(a)
                         for a in actions], np.int16)

    def _finish(
        self,
        customer_id: str,
        ts: I64,
        etype: I16,
        channel: I16,
        action: I16,
        value: F64,
        properties: Any,
    ) -> EventArrays:
        n = len(ts)
        score = np.full(n, np.nan)
        for i in np.flatnonzero(self.score_of_type[etype] >= 0):
            props = properties[i]
            props = props.as_py() if hasattr(props, "as_py") else props
            if props:
                score[i] = _score(props, self._paths[self.score_of_type[etype[i]]])
        order = tie_order(ts, etype, channel, action, value, score)
        return EventArrays(
            customer_ids=[customer_id],
            cust=np.zeros(n, np.int32),
            ts=ts[order],
            etype=etype[order],
            channel=channel[order],
            action=action[order],
            value=value[order],
            score=score[order],
        )


# Up to this many rows a column is coded in Python: an Arrow kernel call gives up the GIL,
# and behind a busy event loop taking it back can cost more than the lookups themselves.
FEW_ROWS = 64


def _lookup(column: pa.ChunkedArray, index: dict[str, int], value_set: pc.SetLookupOptions,
            missing: int) -> I16:
    """Index of each value in the vocabulary (``missing`` when absent or null): ``index`` and
    ``value_set`` hold the same vocabulary, for few rows and for many."""
    if len(column) <= FEW_ROWS:
        get = index.get
        return np.array([missing if v is None else get(v, missing) for v in column.to_pylist()],
                        np.int16)
    found = pc.index_in(column, options=value_set).to_numpy(zero_copy_only=False)
    if found.dtype.kind == "f":  # nulls came back as NaN
        found = np.where(np.isnan(found), missing, found)
    codes: I16 = found.astype(np.int16)
    return codes


def tie_order(ts: I64, etype: I16, channel: I16, action: I16, value: F64, score: F64) -> I64:
    """The engines' common order: ts, then type, channel, action, value, score (NaN last)."""
    order: I64 = np.lexsort((score, value, action, channel, etype, ts))
    return order


def _micros(ts: Any) -> int:
    if isinstance(ts, int | np.integer):
        return int(ts)
    if hasattr(ts, "value") and hasattr(ts, "tz_convert"):  # pandas Timestamp: ns
        return int(ts.value // 1000)
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} has no time zone; events are UTC")
    delta = ts - EPOCH
    micros: int = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros


class _NumberText(str):
    """A JSON number as written: numbers and numeric strings then go through one rule, as in
    the SQL engines, which read the value's text and cast it."""


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose repeated keys keep their first value, as DuckDB and Spark read it."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _parse(properties: str) -> Any:
    """Properties text as the engines read it: standard JSON only (NaN or Infinity tokens make
    the whole text unreadable, as for Spark's reader and the batch engine's check)."""
    return json.loads(properties, object_pairs_hook=_first_wins, parse_int=_NumberText,
                      parse_float=_NumberText, parse_constant=_not_json)


def score_number(value: Any) -> float:
    """The score a JSON value gives (NaN: none): a number, or text that is exactly a decimal
    number in ASCII digits (features.spec.SCORE_NUMBER); finite only. Not true/false, null,
    lists, objects, "٣", "1_000", " 3 " or "Infinity"."""
    if isinstance(value, bool):
        return np.nan
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            return np.nan
        value = float(value)
    elif isinstance(value, int | float):
        try:
            value = float(value)
        except OverflowError:  # an int beyond a double: infinite in the SQL engines too
            return np.nan
    else:
        return np.nan
    return value if math.isfinite(value) else np.nan


def _score(properties: str | dict[str, Any], path: tuple[str, ...]) -> float:
    """The score at ``path`` (property names, outermost first) of an event's properties."""
    try:
        value = properties if isinstance(properties, dict) else _parse(properties)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
        return np.nan
    for name in path:
        if not isinstance(value, dict):
            return np.nan
        value = value.get(name)
    return score_number(value)
