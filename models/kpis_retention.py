"""Retention as a survival rate over a window, and the CLV read from it (``models.kpis``).

A buyer is *active* at a time t when they converted before t and have customer activity (an
event mapped to a stage; marketing contacts are not) in the ``retention_days`` before t, that is
in [t - retention_days, t). The retention over a window [s, e) is, of the buyers active at s
(the base), the share still active at e. The whole history and its groups use the window of
the last ``retention_days`` before as_of (groups label customers as they are now); a month uses
the month itself, [month start, min(month end, as_of)).

The base is counted from each customer's activity around the window's edges, not from the
period's cells: a buyer who lapsed during a month has no event in it, and that lapse is what
the rate measures. With no base (no buyer yet at the window's start, as when the history is
shorter than the window) the rate is unknown: null, never 0 or 100 %, and so is the lifetime
that reads it.

CLV = V x L, L = (window / 365) / (1 - retention) years, capped at ``clv_years``: a buyer still
active after a window with probability r stays for a geometric number of windows, 1 / (1 - r)
on average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from features.spec import DAY_US
from models.journey_events import I64, Bool, StageEvents, first_ts

F64 = npt.NDArray[np.float64]
NEVER_BEFORE = np.iinfo(np.int64).min  # no activity before a time


@dataclass(frozen=True)
class Survival:
    """Per group (the last slot: customers without a group): the buyers active at the window's
    start (``base``), those of them still active at its end (``kept``), and the window's
    length in days (the period the CLV's lifetime counts in)."""

    base: I64
    kept: I64
    days: F64


def active_at(e: StageEvents, at: Sequence[int], retention_days: int) -> Bool:
    """(customers, len(at)): buyers active at each time of ``at`` (ascending, distinct).

    One pass over the recent activity events (older ones than ``retention_days`` before the
    first time cannot make anyone active): each falls before the first time of ``at`` after
    it, and a customer's last activity before that time ends their run of events sharing it
    (their events are in time order). A running maximum along the times then gives everyone's
    last activity before each."""
    times = np.asarray(at, np.int64)
    n, k = e.ev.n_customers, len(times)
    span = retention_days * DAY_US
    last = np.full((n, k), NEVER_BEFORE, np.int64)
    pos = np.flatnonzero(e.activity & (e.ev.ts >= times[0] - span)) if n and k else \
        np.zeros(0, np.int64)
    if len(pos):
        ts, cust = e.ev.ts[pos], e.ev.cust[pos]
        slot = np.searchsorted(times, ts, side="right")
        end = np.ones(len(pos), bool)
        end[:-1] = (cust[1:] != cust[:-1]) | (slot[1:] != slot[:-1])
        end &= slot < k  # at or after the last time: before none of them
        last[cust[end], slot[end]] = ts[end]
        np.maximum.accumulate(last, axis=1, out=last)
    first_conversion = first_ts(e, e.conversion)  # NEVER: no conversion, before no time
    active: Bool = (last >= times - span) & (first_conversion[:, None] < times)
    return active


def by_group(active: Bool, codes: I64, n_labels: int, window_days: float) -> Survival:
    """Survival per group over one window (``active``: (customers, 2), at its start and end);
    ``codes``: each customer's group (-1: none, counted in the last slot)."""
    g = np.where(codes >= 0, codes, n_labels).astype(np.int64)
    start, end = active[:, 0], active[:, 1]
    return Survival(np.bincount(g[start], minlength=n_labels + 1).astype(np.int64),
                    np.bincount(g[start & end], minlength=n_labels + 1).astype(np.int64),
                    np.full(n_labels + 1, float(window_days)))


def by_window(active: Bool, edges: Sequence[int]) -> Survival:
    """Survival per window [edges[i], edges[i+1]) (``active``: (customers, len(edges))); the
    last slot (no group) is empty."""
    start, end = active[:, :-1], active[:, 1:]
    days = np.diff(np.asarray(edges, np.int64)) / DAY_US
    return Survival(np.append(start.sum(axis=0), 0).astype(np.int64),
                    np.append((start & end).sum(axis=0), 0).astype(np.int64),
                    np.append(days, 0.0).astype(np.float64))


def clv(revenue: float | None, years: float, retention: float | None, window_days: float,
        clv_years: int) -> dict[str, Any]:
    """CLV of a group's ``revenue`` over its customers' ``years`` as customers (None: no
    revenue known, so no value either), with the ``retention`` measured over ``window_days``
    (None: unknown, so no lifetime either)."""
    annual = revenue / years if revenue is not None and years > 0 else None
    if retention is None:
        lifetime = None
    elif retention >= 1:
        lifetime = float(clv_years)
    else:
        lifetime = min(float(clv_years), window_days / 365 / (1 - retention))
    value = annual * lifetime if annual is not None and lifetime is not None else None
    return {"value": _r(value, 2), "annual_revenue_per_customer": _r(annual, 2),
            "expected_lifetime_years": _r(lifetime, 3)}


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)
