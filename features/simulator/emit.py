"""Turn one simulated day into touchpoint events (the event contract of DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import EVENT_SCHEMA
from features.simulator import rng
from features.simulator.day import Day
from features.simulator.params import SimParams
from features.simulator.streams import S_ACTION_TIME, S_GAP, S_TICKET_CHANNEL, S_TIME

Ints = npt.NDArray[np.int64]
EVENT_TYPES = (
    "action_sent",
    "email_open",
    "email_click",
    "ad_impression",
    "ad_click",
    "account_login",
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout",
    "purchase",
    "support_ticket",
    "review",
    "referral",
    "survey_response",
)
SESSION_FROM = EVENT_TYPES.index("ad_impression")
DAY_US = 86_400_000_000
MAX_REPEAT = 200  # cap per-visit repeats so event ids stay within their 10 bits


@dataclass(frozen=True)
class Rows:
    """A day's events as columns, before they become an Arrow table."""

    cust: Ints  # customer number
    k_in_day: Ints  # the event's rank among the customer's events that day
    ts: Ints  # microseconds since the epoch
    kind: Ints  # index into EVENT_TYPES
    channel: Ints
    value: npt.NDArray[np.float64]  # order value of a purchase, else NaN
    action: Ints  # action of an action_sent, else -1
    properties: npt.NDArray[np.object_]  # JSON text or None

    def merge(self, other: Rows) -> Rows:
        """Both sets of rows in customer order (each already is); ``self`` first among equal
        customers. Scattering into place is cheaper than concatenating and sorting."""
        at = np.searchsorted(self.cust, other.cust, side="right") + np.arange(len(other.cust))
        mine = np.ones(len(self.cust) + len(other.cust), bool)
        mine[at] = False
        columns = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            merged = np.empty(len(mine), a.dtype)
            merged[mine], merged[at] = a, b
            columns.append(merged)
        return Rows(*columns)


def _texts(key: str, values: npt.NDArray[np.float64] | Ints) -> list[str]:
    """The ``properties`` JSON of events carrying one number under ``key``."""
    if key == "propensity":
        return [f'{{"{key}": {v:.6g}}}' for v in values]
    return [f'{{"{key}": {int(v)}}}' for v in values]


def customer_ids(index: Ints) -> pa.Array:
    return pc.binary_join_element_wise(
        "C", pc.utf8_lpad(pa.array(index).cast(pa.string()), 7, "0"), ""
    )


class Emitter:
    def __init__(self, params: SimParams, seed: int) -> None:
        self.p = params
        self.seed = seed
        self.start_us = int(
            datetime(
                params.start.year, params.start.month, params.start.day, tzinfo=UTC
            ).timestamp()
            * 1_000_000
        )
        self.channels = list(params.session_channels)
        extra = sorted({*params.action_channel, "call_center"} - set(self.channels))
        self.channels += extra
        self.action_channel = np.array([self.channels.index(c) for c in params.action_channel])
        self.email = self.channels.index("email")
        self.call_center = self.channels.index("call_center")
        self.app = self.channels.index("app")

    def _counts(self, d: Day) -> list[Ints]:
        def as_int(flag: npt.NDArray[np.bool_]) -> Ints:
            return flag.astype(np.int64)

        return [
            as_int(d.contacted),
            as_int(d.opened),
            as_int(d.clicked_email),
            np.minimum(d.impressions, MAX_REPEAT),
            as_int(d.ad_click),
            as_int(d.login),
            as_int(d.visit),
            np.minimum(d.products, MAX_REPEAT),
            as_int(d.cart),
            as_int(d.checkout),
            as_int(d.buy),
            as_int(d.ticket),
            as_int(d.review),
            as_int(d.referral),
            as_int(d.survey),
        ]

    def events(self, d: Day, customer_index: Ints) -> pa.Table:
        """The day's events, customer by customer in customer order, each customer's in rank
        order; the contacts of lapsed customers (``d.lapsed``) slot in among the living's."""
        rows = self._rows(d, customer_index)
        if d.lapsed is not None and len(d.lapsed.idx):
            # A lapsed customer has no other event that day, so its contact's rank 0 (and with
            # it the event id) cannot collide with a living customer's event. Rows are merged
            # before any Arrow work, whose fixed cost per table would dominate these few rows.
            rows = rows.merge(self._contact_rows(d.lapsed, customer_index))
        if len(rows.cust) == 0:
            return EVENT_SCHEMA.empty_table()
        return self._table(d.day, rows)

    def _rows(self, d: Day, customer_index: Ints) -> Rows:
        counts = self._counts(d)
        n = len(d.idx)
        kinds = np.concatenate([np.full(int(c.sum()), k, np.int64) for k, c in enumerate(counts)])
        pos = np.concatenate([np.repeat(np.arange(n), c) for c in counts])
        order = np.lexsort((kinds, pos))  # stable: repeats keep their order
        kinds, pos = kinds[order], pos[order]
        first = np.searchsorted(pos, np.arange(n))
        k_in_day = np.arange(len(pos)) - first[pos]
        is_buy = kinds == EVENT_TYPES.index("purchase")
        return Rows(
            cust=customer_index[d.idx][pos],
            k_in_day=k_in_day,
            ts=self._times(d, kinds, pos, k_in_day),
            kind=kinds,
            channel=self._channel(d, kinds, pos),
            value=np.where(is_buy, d.value[pos], np.nan),
            action=np.where(kinds == 0, d.action[pos], -1),
            properties=self._properties(d, kinds, pos),
        )

    def _contact_rows(self, d: Day, customer_index: Ints) -> Rows:
        """``_rows`` of a contacts-only day (one action_sent per customer), without the general
        path's fixed cost, which is most of a millisecond a day for these few rows."""
        n = len(d.idx)
        return Rows(
            cust=customer_index[d.idx],
            k_in_day=np.zeros(n, np.int64),
            ts=self._micros(d.day, self._contact_seconds(d.keys)),
            kind=np.zeros(n, np.int64),
            channel=self.action_channel[d.action],
            value=np.full(n, np.nan),
            action=d.action,
            properties=np.array(_texts("propensity", d.propensity), dtype=object),
        )

    @staticmethod
    def _contact_seconds(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
        seconds: npt.NDArray[np.float64] = 60 + np.floor(rng.uniform(keys, S_ACTION_TIME) * 40_000)
        return seconds

    def _micros(self, day: int, secs: npt.NDArray[np.float64]) -> Ints:
        secs = np.minimum(secs, 86_399)
        micros: Ints = self.start_us + day * DAY_US + secs.astype(np.int64) * 1_000_000
        return micros

    def _times(self, d: Day, kinds: Ints, pos: Ints, k_in_day: Ints) -> Ints:
        """Microsecond timestamps: contacts at a random second, sessions as evenly spaced clicks."""
        act_t = self._contact_seconds(d.keys)
        sess_t = np.where(
            d.clicked_email, act_t + 660, 60 + np.floor(rng.uniform(d.keys, S_TIME) * 80_000)
        )
        gap = 20 + np.floor(rng.uniform(d.keys, S_GAP) * 100)
        n_pre = (d.contacted.astype(np.int64) + d.opened + d.clicked_email)[pos]
        session_rank = k_in_day - n_pre
        secs = np.select(
            [kinds == 0, kinds == 1, kinds == 2],
            [act_t[pos], act_t[pos] + 300, act_t[pos] + 600],
            sess_t[pos] + session_rank * gap[pos],
        )
        return self._micros(d.day, secs)

    def _channel(self, d: Day, kinds: Ints, pos: Ints) -> Ints:
        session_chan = d.channel[pos]
        ticket_by_mail = rng.uniform(d.keys, S_TICKET_CHANNEL)[pos] < 0.3
        return np.select(
            [
                kinds == 0,
                (kinds == 1) | (kinds == 2),
                kinds == EVENT_TYPES.index("support_ticket"),
                kinds == EVENT_TYPES.index("account_login"),
            ],
            [
                self.action_channel[np.maximum(d.action[pos], 0)],
                self.email,
                np.where(ticket_by_mail, self.email, self.call_center),
                np.where(session_chan == self.app, self.app, session_chan),
            ],
            session_chan,
        )

    def _properties(self, d: Day, kinds: Ints, pos: Ints) -> npt.NDArray[np.object_]:
        props = np.full(len(kinds), None, dtype=object)
        for kind, key, values in (
            ("action_sent", "propensity", d.propensity),
            ("support_ticket", "csat", d.csat),
            ("review", "rating", d.rating),
            ("survey_response", "nps", d.nps),
        ):
            sel = np.flatnonzero(kinds == EVENT_TYPES.index(kind))
            if len(sel):
                props[sel] = _texts(key, values[pos[sel]])
        return props

    def _table(self, day: int, rows: Rows) -> pa.Table:
        serial = (rows.cust << 24) | (day << 10) | rows.k_in_day
        event_id = pc.binary_join_element_wise(
            f"s{self.seed}-", pa.array(serial).cast(pa.string()), ""
        )
        is_buy = rows.kind == EVENT_TYPES.index("purchase")
        action_names = pa.array(list(self.p.actions), pa.string())
        return pa.table(
            {
                "event_id": event_id,
                "customer_id": customer_ids(rows.cust),
                "ts": pa.array(rows.ts, pa.timestamp("us", tz="UTC")),
                "event_type": pa.DictionaryArray.from_arrays(
                    pa.array(rows.kind, pa.int8()), pa.array(EVENT_TYPES)
                ),
                "channel": pa.DictionaryArray.from_arrays(
                    pa.array(rows.channel, pa.int8()), pa.array(self.channels)
                ),
                "value": pa.array(rows.value, mask=~is_buy),
                "action": pa.DictionaryArray.from_arrays(
                    pa.array(rows.action, pa.int8(), mask=rows.action < 0), action_names
                ),
                "properties": pa.array(rows.properties, pa.string()),
            }
        )
