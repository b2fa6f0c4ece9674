"""One simulated day's outcomes for a set of customers: the record the engine fills in, the
emitter turns into events and the oracle reads outcomes from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
F = npt.NDArray[np.float64]


@dataclass
class Day:
    """What happened on one day to the active customers ``idx`` (positions in the population)."""

    day: int
    idx: Ints
    keys: npt.NDArray[np.uint64]
    stage_before: npt.NDArray[np.int8]
    contacted: B
    action: Ints  # action index where contacted, else -1
    propensity: F
    opened: B
    clicked_email: B
    session: B
    channel: Ints  # session channel (index into params.session_channels), -1 without session
    impressions: Ints
    ad_click: B
    visit: B
    login: B
    products: Ints
    cart: B
    checkout: B
    buy: B
    value: F
    ticket: B
    csat: Ints
    review: B
    rating: Ints
    referral: B
    survey: B
    nps: Ints
    reached: npt.NDArray[np.int8]  # furthest stage among today's customer events, -1 none
    churned: B
    # The logging policy's contacts of customers who had already silently churned (a
    # contacts-only day), when the parameters ask for them; they change nothing.
    lapsed: Day | None = None

    @classmethod
    def blank(
        cls, day: int, idx: Ints, keys: npt.NDArray[np.uint64], stage: npt.NDArray[np.int8]
    ) -> Day:
        """A day on which nothing happens to ``idx``: every flag false, every count zero."""
        n = len(idx)

        def zb() -> B:
            return np.zeros(n, bool)

        def zi() -> Ints:
            return np.zeros(n, np.int64)

        return cls(
            day=day,
            idx=idx,
            keys=keys,
            stage_before=stage,
            contacted=zb(),
            action=np.full(n, -1, np.int64),
            propensity=np.full(n, np.nan),
            opened=zb(),
            clicked_email=zb(),
            session=zb(),
            channel=np.full(n, -1, np.int64),
            impressions=zi(),
            ad_click=zb(),
            visit=zb(),
            login=zb(),
            products=zi(),
            cart=zb(),
            checkout=zb(),
            buy=zb(),
            value=np.zeros(n),
            ticket=zb(),
            csat=zi(),
            review=zb(),
            rating=zi(),
            referral=zb(),
            survey=zb(),
            nps=zi(),
            reached=np.full(n, -1, np.int8),
            churned=zb(),
        )

    @classmethod
    def contacts_only(
        cls,
        day: int,
        idx: Ints,
        keys: npt.NDArray[np.uint64],
        stage: npt.NDArray[np.int8],
        action: Ints,
        propensity: F,
    ) -> Day:
        """Customers ``idx`` were contacted with ``action`` and nothing else happened."""
        d = cls.blank(day, idx, keys, stage)
        d.contacted[:] = True
        d.action, d.propensity = action, propensity
        return d

    @property
    def active(self) -> B:
        """Customer-initiated activity today (a contact alone is not activity)."""
        return self.session | self.opened
