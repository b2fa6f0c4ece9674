"""Grouping events by customer in O(n): a stable counting sort by integer key, then a sort
inside only those customers whose events are not already in time order (late arrivals), and
the common tie order for events with equal timestamps."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit, prange

I64 = npt.NDArray[np.int64]


SCATTER_PARTS = 4  # key ranges scattered by separate threads (disjoint output positions)


@njit(cache=True)
def _segments(keys, n_keys):  # pragma: no cover - numba
    """Counts per key: each key's first slot in key order, and the start, end and key of each
    key that has events."""
    offsets = np.zeros(n_keys + 1, np.int64)
    for k in keys:
        offsets[k + 1] += 1
    n_seg = 0
    for k in range(n_keys):
        if offsets[k + 1] > 0:
            n_seg += 1
        offsets[k + 1] += offsets[k]
    starts = np.empty(n_seg, np.int64)
    ends = np.empty(n_seg, np.int64)
    seg_keys = np.empty(n_seg, np.int64)
    g = 0
    for k in range(n_keys):
        if offsets[k + 1] > offsets[k]:
            starts[g], ends[g], seg_keys[g] = offsets[k], offsets[k + 1], k
            g += 1
    return offsets, starts, ends, seg_keys


@njit(cache=True, parallel=True)
def group_events(  # pragma: no cover - numba
    keys, n_keys, ts, etype, channel, action, value, score, lut_et, lut_ch, lut_ac
):
    """Group raw events by customer key in one pass (a stable counting-sort scatter), mapping
    store codes to spec codes (actions shifted by one); sort inside customers whose events are
    out of time order; put equal-ts runs in the common tie order.

    Returns the columns, dense customer codes, segment starts/ends and each segment's key."""
    n = len(keys)
    offsets, starts, ends, seg_keys = _segments(keys, n_keys)
    n_seg = len(starts)
    o_ts = np.empty(n, np.int64)
    o_et = np.empty(n, np.int16)
    o_ch = np.empty(n, np.int16)
    o_ac = np.empty(n, np.int16)
    o_v = np.empty(n, np.float64)
    o_s = np.empty(n, np.float64)
    step = (n_keys + SCATTER_PARTS - 1) // SCATTER_PARTS
    for p in prange(SCATTER_PARTS):
        lo, hi = p * step, min((p + 1) * step, n_keys)
        for i in range(n):
            k = keys[i]
            if lo <= k < hi:  # each thread owns a key range: no two write the same slot
                j = offsets[k]
                offsets[k] = j + 1
                o_ts[j] = ts[i]
                o_et[j] = lut_et[etype[i]]
                o_ch[j] = lut_ch[channel[i]]
                o_ac[j] = lut_ac[action[i] + 1]
                o_v[j] = value[i]
                o_s[j] = score[i]
    cust = np.empty(n, np.int32)
    for g in prange(n_seg):
        s, e = starts[g], ends[g]
        cust[s:e] = g
        for i in range(s + 1, e):
            if o_ts[i] < o_ts[i - 1]:  # late arrivals: sort this customer's events by time
                order = np.argsort(o_ts[s:e], kind="mergesort") + s
                o_ts[s:e] = o_ts[order]
                o_et[s:e] = o_et[order]
                o_ch[s:e] = o_ch[order]
                o_ac[s:e] = o_ac[order]
                o_v[s:e] = o_v[order]
                o_s[s:e] = o_s[order]
                break
        fix_ties(s, e, o_ts, o_et, o_ch, o_ac, o_v, o_s)
    return o_ts, o_et, o_ch, o_ac, o_v, o_s, cust, starts, ends, seg_keys


@njit(cache=True)
def _after(a_et, a_ch, a_ac, a_v, a_s, b_et, b_ch, b_ac, b_v, b_s):
    """Whether event a sorts after event b among equal timestamps (NaN after numbers)."""
    if a_et != b_et:
        return a_et > b_et
    if a_ch != b_ch:
        return a_ch > b_ch
    if a_ac != b_ac:
        return a_ac > b_ac
    for x, y in ((a_v, b_v), (a_s, b_s)):
        x_nan, y_nan = x != x, y != y
        if x_nan or y_nan:
            if x_nan != y_nan:
                return x_nan  # NaN sorts after numbers
            continue  # both NaN: equal here
        if x != y:
            return x > y
    return False


@njit(cache=True)
def fix_ties(start, end, ts, etype, channel, action, value, score):  # pragma: no cover
    """Put runs of equal ts within one customer's events [start, end) in the engines' tie
    order, in place (insertion sort: runs are short and rare). Same order as the online
    path's lexsort."""
    i = start + 1
    while i < end:
        if ts[i] == ts[i - 1]:
            run = i - 1
            stop = i + 1
            while stop < end and ts[stop] == ts[run]:
                stop += 1
            for k in range(run + 1, stop):
                et, ch, ac, v, sc = etype[k], channel[k], action[k], value[k], score[k]
                m = k - 1
                while m >= run and _after(
                    etype[m], channel[m], action[m], value[m], score[m], et, ch, ac, v, sc
                ):
                    etype[m + 1] = etype[m]
                    channel[m + 1] = channel[m]
                    action[m + 1] = action[m]
                    value[m + 1] = value[m]
                    score[m + 1] = score[m]
                    m -= 1
                etype[m + 1], channel[m + 1], action[m + 1] = et, ch, ac
                value[m + 1], score[m + 1] = v, sc
            i = stop
        else:
            i += 1
