"""Retention as a survival rate over a window, the time buyers are active, and the CLV read
from both (``models.kpis``).

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

CLV = V x L: what an active buyer is expected to spend over the rest of their lifetime. L, the
expected lifetime of an active buyer: (window / 365) / (1 - retention) years, capped at
``clv_years`` (a buyer still active after a window with probability r stays for a geometric
number of windows, 1 / (1 - r) on average). V, the revenue per year of a buyer while active:
the period's revenue over the time its buyers were active in it, with *active* as above, so V
and L describe the same customer; the years after a buyer lapsed (until they come back) earn
nothing and count nothing. Every purchase counts in the revenue: a purchase is activity, so
each one begins (a first purchase, or a lapsed buyer's return) or continues a run of active
time. A customer's active time is the union of (a, a + retention_days] over their activity
events a, after their first conversion (``active_spans``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from features.spec import DAY_US
from models.journey_events import I64, Bool, StageEvents, first_ts
from models.journey_kernels import activity_runs, last_activity

F64 = npt.NDArray[np.float64]
YEAR_US = 365 * DAY_US


@dataclass(frozen=True)
class Survival:
    """Per group (the last slot: customers without a group): the buyers active at the window's
    start (``base``), those of them still active at its end (``kept``), the window's length in
    days (the period the CLV's lifetime counts in), and the years the group's buyers were
    active in the period (the CLV's value per year is the period's revenue over them)."""

    base: I64
    kept: I64
    days: F64
    active_years: F64


@dataclass(frozen=True)
class ActiveSpans:
    """The time buyers are active, as disjoint spans [start, end) of each customer (µs): what
    the CLV's value per year divides revenue by."""

    cust: I64
    start: I64
    end: I64

    def years_by_customer(self, n: int) -> F64:
        """Each of the ``n`` customers' active years."""
        out: F64 = np.bincount(self.cust, (self.end - self.start) / YEAR_US, n).astype(
            np.float64)
        return out

    def years_by_window(self, edges: Sequence[int]) -> F64:
        """Active years of everyone in each window [edges[i], edges[i+1])."""
        bounds = np.asarray(edges, np.int64)
        if len(bounds) < 2:
            return np.zeros(0)
        late = self.end > bounds[0]  # spans over before the first window count in none
        start, end = self.start[late], self.end[late]
        # A loop over the windows (a dozen months), each a pass over the spans; the sums in
        # float: a million spans of months in µs overflow int64.
        return np.array([np.maximum(np.minimum(end, hi) - np.maximum(start, lo), 0).sum(
            dtype=np.float64) for lo, hi in pairwise(bounds.tolist())], np.float64) / YEAR_US


def active_spans(e: StageEvents, retention_days: int, until: int) -> ActiveSpans:
    """When each buyer is active before ``until``: the union of (a, a + retention_days] over
    their activity events a, after their first conversion c (``active_at``'s definition, at
    every time). A run of a customer's activity with no gap over ``retention_days`` makes one
    span of it, from the run's first event to its last + retention_days, clipped to [c,
    until); a run over before c makes none. One pass over the activity events finds the runs;
    the rest reads the runs alone (a few per customer, not an event each)."""
    first_conversion = first_ts(e, e.conversion)  # NEVER: no conversion, never active
    span = retention_days * DAY_US
    who, first, last = activity_runs(e.ev.cust, e.ev.ts, e.activity, span)
    start = np.maximum(first, first_conversion[who])
    end = np.minimum(last + span, until)
    keep = end > start
    return ActiveSpans(who[keep], start[keep], end[keep])


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
    last = last_activity(e.ev.cust, e.ev.ts, e.activity, times, span, n)
    if k:
        np.maximum.accumulate(last, axis=1, out=last)
    first_conversion = first_ts(e, e.conversion)  # NEVER: no conversion, before no time
    active: Bool = (last >= times - span) & (first_conversion[:, None] < times)
    return active


def by_group(active: Bool, codes: I64, n_labels: int, window_days: float,
             years: F64) -> Survival:
    """Survival per group over one window (``active``: (customers, 2), at its start and end);
    ``codes``: each customer's group (-1: none, counted in the last slot); ``years``: each
    customer's active years in the period."""
    g = np.where(codes >= 0, codes, n_labels).astype(np.int64)
    start, end = active[:, 0], active[:, 1]
    return Survival(np.bincount(g[start], minlength=n_labels + 1).astype(np.int64),
                    np.bincount(g[start & end], minlength=n_labels + 1).astype(np.int64),
                    np.full(n_labels + 1, float(window_days)),
                    np.bincount(g, years, n_labels + 1).astype(np.float64))


def by_window(active: Bool, edges: Sequence[int], years: F64) -> Survival:
    """Survival per window [edges[i], edges[i+1]) (``active``: (customers, len(edges));
    ``years``: the active years in each); the last slot (no group) is empty."""
    start, end = active[:, :-1], active[:, 1:]
    days = np.diff(np.asarray(edges, np.int64)) / DAY_US
    return Survival(np.append(start.sum(axis=0), 0).astype(np.int64),
                    np.append((start & end).sum(axis=0), 0).astype(np.int64),
                    np.append(days, 0.0).astype(np.float64),
                    np.append(years, 0.0).astype(np.float64))


def clv(revenue: float | None, years: float, retention: float | None, window_days: float,
        clv_years: int) -> dict[str, Any]:
    """CLV of a group's ``revenue`` over the ``years`` its buyers were active (None: no revenue
    known, so no value either; no active time, as in a group without buyers: no value per
    year either), with the ``retention`` measured over ``window_days`` (None: unknown, so no
    lifetime either)."""
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
