"""The compiled feature loop: one pass over each customer's events computes every family.

Called through ``features.kernels.Kernel``, which prepares its arguments from the spec. Input
arrays are sorted by customer, then by the engines' tie order; every event is before the
cutoff. Column offsets ``o`` follow ``features.layout.BLOCKS``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NAN = np.nan


@njit(cache=True)
def _days(us: float) -> float:
    return us / 86_400_000_000.0


@njit(cache=True)
def _customer(
    g,
    s,
    e,
    ts,
    etype,
    channel,
    action,
    value,
    score,
    cutoff,
    p_win,
    stage_of,
    conv_of,
    n_types,
    n_stages,
    n_chans,
    n_actions,
    gap_us,
    resp_us,
    score_of,
    score_low,
    score_has_low,
    score_off,
    o,
    out,
    last_type,
    last_chan,
):
    nw = len(p_win)
    # Accumulate in a local row (cache-friendly), then write it to the matrix once.
    row = np.zeros(out.shape[1])
    if e == s:
        row[o[0]] = NAN
        row[o[0] + 1] = NAN
        row[o[0] + 2] = NAN
    else:
        row[o[0]] = _days(cutoff - ts[s])
    last_beh = -1
    last_conv = -1
    prev_stage = -1
    run_start = -1
    regress = 0.0
    furthest = -1
    gap_n = 0.0
    gap_mean = 0.0
    gap_m2 = 0.0
    gap_max = NAN
    gap_last = NAN
    sess_n = 0.0
    sess_size = 0.0
    sess_minutes = 0.0
    sess_start = -1
    sess_first_start = -1
    cur_size = 0.0
    last_action = -1
    n_actions_all = 0.0
    responses = 0.0
    for i in range(s, e):
        t = ts[i]
        age = cutoff - t
        et = etype[i]
        st = stage_of[et] if et >= 0 else -1
        ch = channel[i]
        is_conv = et >= 0 and conv_of[et]
        for w in range(nw):
            if age <= p_win[w]:
                if et >= 0:
                    row[o[3] + w * n_types + et] += 1.0
                row[o[5] + w * n_chans + ch] += 1.0
                if st >= 0:
                    row[o[4] + w * n_stages + st] += 1.0
                    row[o[1] + 3 * w] += 1.0
                if is_conv:
                    row[o[1] + 3 * w + 1] += 1.0
                    if value[i] == value[i]:
                        row[o[1] + 3 * w + 2] += value[i]
            elif st >= 0 and age <= 2 * p_win[w]:
                row[o[10] + w] += 1.0  # the window before: trend denominator for now
        if is_conv:
            last_conv = i
            row[o[2] + 1] += 1.0
            if value[i] == value[i]:
                row[o[2] + 2] += value[i]
        if action[i] >= 0:
            last_action = i
            n_actions_all += 1.0
            for w in range(nw):
                if age <= p_win[w]:
                    row[o[11] + w] += 1.0
            if age <= p_win[nw - 1]:
                row[o[12] + action[i]] += 1.0
        k = score_of[et] if et >= 0 else -1
        v = score[i]
        if k >= 0 and v == v:
            base = o[14] + score_off[k]
            row[base] += 1.0
            row[base + 1] += v
            row[base + 2] = v
            if score_has_low[k] and v <= score_low[k]:
                row[base + 3] += 1.0
        if st < 0:
            continue
        # -- a customer-initiated event: stage, gaps, sessions, responses -------------------
        row[o[2]] += 1.0
        if last_beh >= 0:
            gap = _days(t - ts[last_beh])
            gap_n += 1.0
            delta = gap - gap_mean
            gap_mean += delta / gap_n
            gap_m2 += delta * (gap - gap_mean)
            gap_max = gap if gap_max != gap_max or gap > gap_max else gap_max
            gap_last = gap
            if st < prev_stage:
                regress += 1.0
        # Actions since the previous own event (itself included: it may carry an action) are
        # answered by this event if it comes within the response window.
        for j in range(last_beh if last_beh >= 0 else s, i):
            if action[j] >= 0 and t - ts[j] <= resp_us:
                responses += 1.0
        if last_beh < 0 or st != prev_stage:
            run_start = i
        if last_beh < 0 or t - ts[last_beh] > gap_us:
            if sess_start >= 0:
                sess_size += cur_size
                sess_minutes += (ts[last_beh] - ts[sess_start]) / 60_000_000.0
            sess_n += 1.0
            sess_start = i
            if sess_first_start < 0:
                sess_first_start = i
            cur_size = 0.0
            for w in range(nw):
                if age <= p_win[w]:
                    row[o[9] + w] += 1.0
        cur_size += 1.0
        furthest = st if st > furthest else furthest
        prev_stage = st
        last_beh = i
    if e > s:
        last_type[g] = etype[e - 1]
        last_chan[g] = channel[e - 1]
        row[o[0] + 1] = _days(cutoff - ts[last_beh]) if last_beh >= 0 else NAN
        row[o[0] + 2] = _days(cutoff - ts[last_conv]) if last_conv >= 0 else NAN
    if sess_start >= 0:
        sess_size += cur_size
        sess_minutes += (ts[last_beh] - ts[sess_start]) / 60_000_000.0
    tot = o[2]
    row[tot + 3] = row[tot + 2] / row[tot + 1] if row[tot + 1] > 0 else NAN
    row[o[6]] = stage_of_last(last_beh, etype, stage_of)
    row[o[6] + 1] = furthest
    row[o[6] + 2] = _days(cutoff - ts[run_start]) if run_start >= 0 else NAN
    row[o[6] + 3] = regress
    row[o[7]] = gap_mean if gap_n > 0 else NAN
    row[o[7] + 1] = np.sqrt(gap_m2 / gap_n) if gap_n > 0 else NAN
    row[o[7] + 2] = gap_max
    row[o[7] + 3] = gap_last
    row[o[8]] = sess_n
    row[o[8] + 1] = sess_size / sess_n if sess_n > 0 else NAN
    row[o[8] + 2] = sess_minutes / sess_n if sess_n > 0 else NAN
    row[o[8] + 3] = (
        _days(ts[sess_start] - ts[sess_first_start]) / (sess_n - 1) if sess_n > 1 else NAN
    )
    for w in range(nw):
        recent = row[o[1] + 3 * w]
        row[o[10] + w] = (recent + 1.0) / (row[o[10] + w] + 1.0)
    row[o[13]] = _days(cutoff - ts[last_action]) if last_action >= 0 else NAN
    row[o[13] + 1] = responses
    row[o[13] + 2] = responses / n_actions_all if n_actions_all > 0 else NAN
    for k in range(len(score_off)):
        base = o[14] + score_off[k]
        n = row[base]
        row[base + 1] = row[base + 1] / n if n > 0 else NAN
        if n == 0:
            row[base + 2] = NAN
    for c in range(len(row)):
        out[g, c] = row[c]


@njit(cache=True)
def stage_of_last(last_beh, etype, stage_of):
    return float(stage_of[etype[last_beh]]) if last_beh >= 0 else -1.0


def _run(
    starts, ends, ts, etype, channel, action, value, score, cutoff, p_win, stage_of, conv_of,
    n_types, n_stages, n_chans, n_actions, gap_us, resp_us, score_of, score_low,
    score_has_low, score_off, o, out, last_type, last_chan,
):
    # Each customer writes only its own row, so customers can run on all cores.
    for g in prange(len(starts)):
        _customer(g, starts[g], ends[g], ts, etype, channel, action, value, score, cutoff,
                  p_win, stage_of, conv_of, n_types, n_stages, n_chans, n_actions, gap_us,
                  resp_us, score_of, score_low, score_has_low, score_off, o, out, last_type,
                  last_chan)


# One loop, compiled twice: prange is a plain range when not parallel (small inputs, where
# starting threads costs more than it saves).
run_serial = njit(cache=True)(_run)
run_parallel = njit(cache=True, parallel=True)(_run)
