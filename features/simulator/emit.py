"""Turn one simulated day into touchpoint events (the event contract of DESIGN.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import EVENT_SCHEMA
from features.simulator import rng
from features.simulator.engine import S_ACTION_TIME, S_GAP, S_TICKET_CHANNEL, S_TIME, Day
from features.simulator.params import SimParams

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
        counts = self._counts(d)
        n = len(d.idx)
        kinds = np.concatenate([np.full(int(c.sum()), k, np.int64) for k, c in enumerate(counts)])
        pos = np.concatenate([np.repeat(np.arange(n), c) for c in counts])
        if len(pos) == 0:
            return EVENT_SCHEMA.empty_table()
        order = np.lexsort((kinds, pos))  # stable: repeats keep their order
        kinds, pos = kinds[order], pos[order]
        first = np.searchsorted(pos, np.arange(n))
        k_in_day = np.arange(len(pos)) - first[pos]
        ts = self._times(d, kinds, pos, k_in_day)
        return self._table(d, customer_index, kinds, pos, k_in_day, ts)

    def _times(self, d: Day, kinds: Ints, pos: Ints, k_in_day: Ints) -> Ints:
        """Microsecond timestamps: contacts at a random second, sessions as evenly spaced clicks."""
        act_t = 60 + np.floor(rng.uniform(d.keys, S_ACTION_TIME) * 40_000)
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
        secs = np.minimum(secs, 86_399)
        micros: Ints = self.start_us + d.day * DAY_US + secs.astype(np.int64) * 1_000_000
        return micros

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

    def _properties(self, d: Day, kinds: Ints, pos: Ints) -> pa.Array:
        props = np.full(len(kinds), None, dtype=object)
        for kind, key, values in (
            ("action_sent", "propensity", d.propensity),
            ("support_ticket", "csat", d.csat),
            ("review", "rating", d.rating),
            ("survey_response", "nps", d.nps),
        ):
            sel = np.flatnonzero(kinds == EVENT_TYPES.index(kind))
            if len(sel):
                vals = values[pos[sel]]
                text = (
                    (f'{{"{key}": {v:.6g}}}' for v in vals)
                    if key == "propensity"
                    else (f'{{"{key}": {int(v)}}}' for v in vals)
                )
                props[sel] = list(text)
        return pa.array(props, pa.string())

    def _table(
        self, d: Day, customer_index: Ints, kinds: Ints, pos: Ints, k_in_day: Ints, ts: Ints
    ) -> pa.Table:
        cust = customer_index[d.idx][pos]
        serial = (cust << 24) | (d.day << 10) | k_in_day
        event_id = pc.binary_join_element_wise(
            f"s{self.seed}-", pa.array(serial).cast(pa.string()), ""
        )
        is_buy = kinds == EVENT_TYPES.index("purchase")
        action = np.where(kinds == 0, d.action[pos], -1)
        action_names = pa.array(list(self.p.actions), pa.string())
        return pa.table(
            {
                "event_id": event_id,
                "customer_id": customer_ids(cust),
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "event_type": pa.DictionaryArray.from_arrays(
                    pa.array(kinds, pa.int8()), pa.array(EVENT_TYPES)
                ),
                "channel": pa.DictionaryArray.from_arrays(
                    pa.array(self._channel(d, kinds, pos), pa.int8()), pa.array(self.channels)
                ),
                "value": pa.array(np.where(is_buy, d.value[pos], np.nan), mask=~is_buy),
                "action": pa.DictionaryArray.from_arrays(
                    pa.array(action, pa.int8(), mask=action < 0), action_names
                ),
                "properties": self._properties(d, kinds, pos),
            }
        )
