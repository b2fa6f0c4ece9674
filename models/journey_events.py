"""What the journey map and the journey KPIs both read: the events before a time with their
stage, activity and conversion flags, per-customer first/last positions, and rates with Wilson
intervals."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from features.events import Encoder, EventArrays
from features.spec import FeatureSpec
from models.journey_kernels import edge_ts

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
Z95 = 1.959964


@dataclass(frozen=True)
class Rate:
    count: int
    of: int

    @property
    def value(self) -> float | None:
        return self.count / self.of if self.of else None

    def to_dict(self) -> dict[str, Any]:
        lo_hi = wilson(self.count, self.of)
        return {"value": None if self.value is None else round(self.value, 6),
                "count": self.count, "of": self.of,
                "ci95": None if lo_hi is None else [round(lo_hi[0], 6), round(lo_hi[1], 6)]}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score 95 % interval of a proportion k/n (sound near 0 and 1, unlike Wald's)."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class StageEvents:
    """The events before as_of with what every part needs: stage, activity, conversion."""

    ev: EventArrays
    stage: npt.NDArray[np.int8]
    activity: Bool
    conversion: Bool
    contact: Bool  # a marketing contact: a known event type that signals no stage
    present: Bool  # per customer: has events before as_of

    @cached_property  # the whole history and the monthly KPIs read it from the same events
    def occasion(self) -> Bool:
        """Conversions on a new occasion: not at the time of the customer's previous one (two
        order lines of one checkout, or a date-only log's same-day orders, are one purchase;
        the repeat stage, too, needs a conversion later than the first)."""
        pos = np.flatnonzero(self.conversion)
        same = np.zeros(len(pos), bool)
        same[1:] = ((self.ev.cust[pos[1:]] == self.ev.cust[pos[:-1]])
                    & (self.ev.ts[pos[1:]] == self.ev.ts[pos[:-1]]))
        out = self.conversion.copy()
        out[pos[same]] = False
        return out

    @classmethod
    def before(cls, arrays: EventArrays, spec: FeatureSpec, as_of_us: int) -> StageEvents:
        keep = arrays.ts < as_of_us
        ev = arrays if keep.all() else EventArrays(
            arrays.customer_ids, arrays.cust[keep], arrays.ts[keep], arrays.etype[keep],
            arrays.channel[keep], arrays.action[keep], arrays.value[keep], arrays.score[keep])
        enc = Encoder(spec)
        conversion = enc.conversion_of_type[ev.etype]
        stage = repeat_conversion_stages(ev, enc.stage_of_type[ev.etype], conversion,
                                         spec.taxonomy.repeat_stage_index)
        return cls(ev, stage, stage >= 0, conversion, (stage < 0) & (ev.etype >= 0),
                   present(ev))

    def score_mask(self, spec: FeatureSpec, name: str) -> Bool | None:
        """Events carrying the score ``name`` (features.yaml ``scores``); None: no such score."""
        score = next((s for s in spec.scores if s.name == name), None)
        if score is None:
            return None
        code = spec.event_types.index(score.event_type)
        mask: Bool = (self.ev.etype == code) & ~np.isnan(self.ev.score)
        return mask


def present(ev: EventArrays) -> Bool:
    """Per customer: has an event. Events are grouped by customer, so each customer's first
    position is enough (a bincount would first copy the int32 codes to int64: 8 bytes an
    event)."""
    out = np.zeros(ev.n_customers, bool)
    if len(ev.cust):
        first = np.ones(len(ev.cust), bool)
        first[1:] = ev.cust[1:] != ev.cust[:-1]
        out[ev.cust[first]] = True
    return out


def repeat_conversion_stages(ev: EventArrays, stage: npt.NDArray[np.int8], conversion: Bool,
                             repeat: int) -> npt.NDArray[np.int8]:
    """The taxonomy's repeat_conversion_stage (-1: none): a conversion later than the
    customer's first signals that stage when it is further on (as the feature kernel does)."""
    if repeat < 0 or not conversion.any():
        return stage
    first = edge_ts(ev.cust, ev.ts, conversion, ev.n_customers, False)
    # Only conversions can be later ones: compared at their positions, not at every event's.
    pos = np.flatnonzero(conversion & (stage >= 0) & (stage < repeat))
    out = stage.copy()
    out[pos[ev.ts[pos] > first[ev.cust[pos]]]] = repeat
    return out


def first_ts(e: StageEvents, mask: Bool, last: bool = False) -> I64:
    """Per customer, the time of their first (``last``: last) event where ``mask`` holds,
    NEVER if none."""
    out: I64 = edge_ts(e.ev.cust, e.ev.ts, mask, e.ev.n_customers, last)
    return out
