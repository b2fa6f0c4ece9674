"""Compiled passes over the events for the journey map and the KPIs (``models.journey_events``,
``models.kpis``, ``models.kpis_retention``).

Each is one loop over the events (grouped by customer, in time order within one) that writes
only its result. The NumPy forms they replace built several arrays of an event's size on the
way (positions, gathered times, keys: 8 bytes an event each): at 1M customers and 32.7M events
the map and KPIs phase of a scoring run grew the process by ~1.1-1.3 GB for ~7 s, above what
the scores had needed (``benchmarks/segments.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

I64 = npt.NDArray[np.int64]
Ints = npt.NDArray[np.integer[Any]]  # customer codes, stages (int8 to int64)
Bool = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]
NEVER = np.iinfo(np.int64).max  # "no such event" in first-time arrays
NEVER_BEFORE = np.iinfo(np.int64).min  # no activity before a time


@njit(cache=True, inline="always")
def _slot(times: I64, t: int) -> int:
    """The number of ``times`` (ascending) at or before ``t``: np.searchsorted(side="right")."""
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def edge_ts(cust: Ints, ts: I64, mask: Bool, n: int, last: bool) -> I64:
    """Per customer, the time of their first (``last``: last) event where ``mask`` holds, in
    the arrays' order; NEVER if none."""
    out = np.full(n, NEVER, np.int64)
    for i in range(len(ts)):
        if mask[i] and (last or out[cust[i]] == NEVER):
            out[cust[i]] = ts[i]
    return out


@njit(cache=True)
def first_by_stage(cust: Ints, ts: I64, stage: Ints, n: int, n_stages: int) -> I64:
    """(customers, stages): the time of each customer's first event of each stage."""
    out = np.full((n, n_stages), NEVER, np.int64)
    for i in range(len(ts)):
        s = stage[i]
        if s >= 0 and out[cust[i], s] == NEVER:
            out[cust[i], s] = ts[i]
    return out


@njit(cache=True)
def last_activity(cust: Ints, ts: I64, activity: Bool, times: I64, span: int, n: int
                  ) -> I64:
    """(customers, len(times)): each customer's last activity before ``times[j]`` and at or
    after ``times[j - 1]`` (``times[0] - span`` for the first), NEVER_BEFORE if none."""
    k = len(times)
    out = np.full((n, k), NEVER_BEFORE, np.int64)
    if k == 0:
        return out
    lo = times[0] - span
    for i in range(len(ts)):
        t = ts[i]
        if activity[i] and t >= lo:
            j = _slot(times, t)
            if j < k:  # in time order within a customer: the last one written stays
                out[cust[i], j] = t
    return out


@njit(cache=True)
def activity_runs(cust: Ints, ts: I64, activity: Bool, span: int) -> tuple[I64, I64, I64]:
    """Each customer's runs of activity with no gap over ``span``: (customer, first time, last
    time) per run, in the arrays' order."""
    runs, prev_c, prev_t = 0, -1, 0
    for i in range(len(ts)):
        if activity[i]:
            if cust[i] != prev_c or ts[i] - prev_t > span:
                runs += 1
            prev_c, prev_t = cust[i], ts[i]
    who = np.empty(runs, np.int64)
    first = np.empty(runs, np.int64)
    last = np.empty(runs, np.int64)
    r, prev_c, prev_t = -1, -1, 0
    for i in range(len(ts)):
        if activity[i]:
            if cust[i] != prev_c or ts[i] - prev_t > span:
                r += 1
                who[r], first[r] = cust[i], ts[i]
            last[r] = ts[i]
            prev_c, prev_t = cust[i], ts[i]
    return who, first, last


@njit(cache=True)
def period_runs(cust: Ints, ts: I64, stage: Ints, inner: I64, lo: int, hi: int
                ) -> tuple[I64, I64, I64, I64]:
    """The cells of the events in [lo, hi): one per run of (customer, period), the period being
    the number of ``inner`` edges at or before the event. Per cell: its first event's position
    in the arrays, the customer, the period and the furthest stage of its events (-1 none)."""
    cells, prev_c, prev_p = 0, -1, -1
    for i in range(len(ts)):
        if lo <= ts[i] < hi:
            p = _slot(inner, ts[i])
            if cust[i] != prev_c or p != prev_p:
                cells += 1
            prev_c, prev_p = cust[i], p
    start = np.empty(cells, np.int64)
    who = np.empty(cells, np.int64)
    period = np.empty(cells, np.int64)
    furthest = np.empty(cells, np.int64)
    r, prev_c, prev_p = -1, -1, -1
    for i in range(len(ts)):
        if lo <= ts[i] < hi:
            p = _slot(inner, ts[i])
            if cust[i] != prev_c or p != prev_p:
                r += 1
                start[r], who[r], period[r], furthest[r] = i, cust[i], p, -1
            furthest[r] = max(furthest[r], stage[i])
            prev_c, prev_p = cust[i], p
    return start, who, period, furthest


@njit(cache=True)
def path_events(cust: Ints, ts: I64, conversion: Bool, touch: Bool, lo: int, n: int
                ) -> tuple[Bool, I64, Bool]:
    """Attribution paths: the touchpoints at or after ``lo`` up to each customer's first
    conversion at or after ``lo`` (exclusive). (events kept, path length per customer, whether
    the customer converted there)."""
    keep = np.zeros(len(ts), np.bool_)
    length = np.zeros(n, np.int64)
    converted = np.zeros(n, np.bool_)
    prev_c, stopped = -1, False
    for i in range(len(ts)):
        c = cust[i]
        if c != prev_c:
            prev_c, stopped = c, False
        if stopped or ts[i] < lo:
            continue
        if conversion[i]:
            stopped = True
            converted[c] = True
        elif touch[i]:
            keep[i] = True
            length[c] += 1
    return keep, length, converted


@njit(cache=True)
def path_transitions(codes: Ints, offsets: I64, conversions: F64, nulls: F64, size: int
                     ) -> F64:
    """Weighted transition counts (flat, ``size`` x ``size``) of attribution paths: from the
    start (state 0) to each path's first touchpoint (state code + 1), between consecutive
    touchpoints, and from its last to conversion (``size - 2``) or null (``size - 1``). Each
    kind is summed in path order, then added in that order (as the NumPy form did: the same
    floats)."""
    inner = np.zeros(size * size)
    start = np.zeros(size * size)
    conv = np.zeros(size * size)
    null = np.zeros(size * size)
    for p in range(len(offsets) - 1):
        a, b = offsets[p], offsets[p + 1]
        if b <= a:
            continue
        w = conversions[p] + nulls[p]
        start[codes[a] + 1] += w
        for j in range(a, b - 1):
            inner[(codes[j] + 1) * size + codes[j + 1] + 1] += w
        last = (codes[b - 1] + 1) * size
        conv[last + size - 2] += conversions[p]
        null[last + size - 1] += nulls[p]
    return ((inner + start) + conv) + null
