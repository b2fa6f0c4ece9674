"""The compiled feature loop: one pass over each customer's events computes every family.

Called through ``features.kernels.Kernel``, which prepares its arguments from the spec. Input
arrays are sorted by customer, then by the engines' tie order; every event is before the
cutoff. Column offsets ``o`` follow ``features.layout.BLOCKS``.

The helpers are inlined into the loop (``inline="always"``: as plain calls the kernel ran 2.3x
slower). The running state stays in locals: keeping it in the row cost 1.5x, and passing the
session state through a helper as a tuple 1.3x.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NAN = np.nan
SINCE_ACTION, RESPONSES, RESPONSE_RATE = 0, 1, 2


@njit(cache=True, inline="always")
def _days(us: float) -> float:
    return us / 86_400_000_000.0


@njit(cache=True, inline="always")
def _windows(row, o, age, et, st, ch, is_conv, value, p_win, n_types, n_stages, n_chans):
    """Counts of one event in each window it falls in (and the window before, for trends)."""
    for w in range(len(p_win)):
        if age <= p_win[w]:
            if et >= 0:
                row[o[3] + w * n_types + et] += 1.0
            row[o[5] + w * n_chans + ch] += 1.0
            if st >= 0:
                row[o[4] + w * n_stages + st] += 1.0
                row[o[1] + 3 * w] += 1.0
            if is_conv:
                row[o[1] + 3 * w + 1] += 1.0
                if value == value:
                    row[o[1] + 3 * w + 2] += value
        elif st >= 0 and age <= 2 * p_win[w]:
            row[o[10] + w] += 1.0  # the window before: trend denominator for now


@njit(cache=True, inline="always")
def _in_windows(row, base, age, p_win):
    """One more in each window's column (from ``base``) that an event of this age falls in."""
    for w in range(len(p_win)):
        if age <= p_win[w]:
            row[base + w] += 1.0


@njit(cache=True, inline="always")
def _action(row, o, age, action, p_win):
    row[o[13] + RESPONSE_RATE] += 1.0  # every action: the rate's denominator for now
    _in_windows(row, o[11], age, p_win)
    if age <= p_win[len(p_win) - 1]:
        row[o[12] + action] += 1.0


@njit(cache=True, inline="always")
def _conversion(row, o, value):
    row[o[2] + 1] += 1.0
    if value == value:
        row[o[2] + 2] += value


@njit(cache=True, inline="always")
def _score(row, o, k, v, score_low, score_has_low, score_off):
    base = o[14] + score_off[k]
    row[base] += 1.0
    row[base + 1] += v
    row[base + 2] = v
    if score_has_low[k] and v <= score_low[k]:
        row[base + 3] += 1.0


@njit(cache=True, inline="always")
def _gap(gaps, gap):
    """Adds a gap between own events to (count, mean, sum of squares, max, last) (Welford)."""
    n, mean, m2, top, _ = gaps
    n += 1.0
    delta = gap - mean
    mean += delta / n
    m2 += delta * (gap - mean)
    top = gap if top != top or gap > top else top
    return n, mean, m2, top, gap


@njit(cache=True, inline="always")
def _responses(action, ts, start, i, resp_us):
    """Actions since the previous own event (itself included: it may carry an action) that own
    event ``i`` answers, coming within the response window."""
    n = 0.0
    for j in range(start, i):
        if action[j] >= 0 and ts[i] - ts[j] <= resp_us:
            n += 1.0
    return n


@njit(cache=True, inline="always")
def _finish_gaps(row, o, gaps):
    n, mean, m2, top, last = gaps
    b = o[7]
    row[b] = mean if n > 0 else NAN
    row[b + 1] = np.sqrt(m2 / n) if n > 0 else NAN
    row[b + 2] = top
    row[b + 3] = last


@njit(cache=True, inline="always")
def _finish_sessions(row, o, ts, sess, last_beh):
    """``sess``: (count, events in closed sessions, their minutes, current size, start of the
    current session, start of the first)."""
    n, size, minutes, cur, start, first = sess
    if start >= 0:
        size += cur
        minutes += (ts[last_beh] - ts[start]) / 60_000_000.0
    b = o[8]
    row[b] = n
    row[b + 1] = size / n if n > 0 else NAN
    row[b + 2] = minutes / n if n > 0 else NAN
    row[b + 3] = _days(ts[start] - ts[first]) / (n - 1) if n > 1 else NAN


@njit(cache=True, inline="always")
def _finish(row, o, ts, cutoff, s, e, last_beh, last_conv, last_action, stage, gaps, sess,
            responses, score_off, nw):
    """Turns the accumulators into features; NaN where a feature is undefined. ``stage`` is
    (current, furthest, start of the current stage's run, regressions)."""
    if e > s:
        row[o[0]] = _days(cutoff - ts[s])
        row[o[0] + 1] = _days(cutoff - ts[last_beh]) if last_beh >= 0 else NAN
        row[o[0] + 2] = _days(cutoff - ts[last_conv]) if last_conv >= 0 else NAN
    else:
        for c in range(3):
            row[o[0] + c] = NAN
    tot = o[2]
    row[tot + 3] = row[tot + 2] / row[tot + 1] if row[tot + 1] > 0 else NAN
    current, furthest, run_start, regress = stage
    row[o[6]] = current
    row[o[6] + 1] = furthest
    row[o[6] + 2] = _days(cutoff - ts[run_start]) if run_start >= 0 else NAN
    row[o[6] + 3] = regress
    _finish_gaps(row, o, gaps)
    _finish_sessions(row, o, ts, sess, last_beh)
    for w in range(nw):
        recent = row[o[1] + 3 * w]
        row[o[10] + w] = (recent + 1.0) / (row[o[10] + w] + 1.0)
    n_actions = row[o[13] + RESPONSE_RATE]
    row[o[13] + SINCE_ACTION] = _days(cutoff - ts[last_action]) if last_action >= 0 else NAN
    row[o[13] + RESPONSES] = responses
    row[o[13] + RESPONSE_RATE] = responses / n_actions if n_actions > 0 else NAN
    for k in range(len(score_off)):
        base = o[14] + score_off[k]
        n = row[base]
        row[base + 1] = row[base + 1] / n if n > 0 else NAN
        if n == 0:
            row[base + 2] = NAN


@njit(cache=True)
def _customer(g, s, e, ts, etype, channel, action, value, score, cutoff, p_win, stage_of,
              conv_of, repeat_st, n_types, n_stages, n_chans, n_actions, gap_us, resp_us,
              score_of, score_low, score_has_low, score_off, o, out, last_type, last_chan):
    # Accumulate in a local row (cache-friendly), then write it to the matrix once.
    row = np.zeros(out.shape[1])
    last_beh = last_conv = last_action = run_start = prev_stage = furthest = -1
    regress = responses = 0.0
    gaps = (0.0, 0.0, 0.0, NAN, NAN)
    sess_n = sess_size = sess_minutes = cur_size = 0.0  # sessions: see _finish_sessions
    sess_start = sess_first_start = -1
    converted, first_conv_ts = False, 0
    for i in range(s, e):
        age = cutoff - ts[i]
        et = etype[i]
        st = stage_of[et] if et >= 0 else -1
        is_conv = et >= 0 and conv_of[et]
        if is_conv:  # the taxonomy's repeat_conversion_stage (-1: none)
            if not converted:
                converted, first_conv_ts = True, ts[i]
            elif repeat_st > st >= 0 and ts[i] > first_conv_ts:
                st = repeat_st
        _windows(row, o, age, et, st, channel[i], is_conv, value[i], p_win, n_types, n_stages,
                 n_chans)
        if is_conv:
            last_conv = i
            _conversion(row, o, value[i])
        if action[i] >= 0:
            last_action = i
            _action(row, o, age, action[i], p_win)
        k = score_of[et] if et >= 0 else -1
        if k >= 0 and score[i] == score[i]:
            _score(row, o, k, score[i], score_low, score_has_low, score_off)
        if st < 0:
            continue
        # -- a customer-initiated event: stage, gaps, sessions, responses -------------------
        row[o[2]] += 1.0
        if last_beh >= 0:
            gaps = _gap(gaps, _days(ts[i] - ts[last_beh]))
            if st < prev_stage:
                regress += 1.0
        responses += _responses(action, ts, last_beh if last_beh >= 0 else s, i, resp_us)
        if last_beh < 0 or st != prev_stage:
            run_start = i
        if last_beh < 0 or ts[i] - ts[last_beh] > gap_us:
            if sess_start >= 0:
                sess_size += cur_size
                sess_minutes += (ts[last_beh] - ts[sess_start]) / 60_000_000.0
            sess_n += 1.0
            sess_start = i
            if sess_first_start < 0:
                sess_first_start = i
            cur_size = 0.0
            _in_windows(row, o[9], age, p_win)
        cur_size += 1.0
        furthest = st if st > furthest else furthest
        prev_stage = st
        last_beh = i
    if e > s:
        last_type[g] = etype[e - 1]
        last_chan[g] = channel[e - 1]
    stage = (float(prev_stage), float(furthest), run_start, regress)  # current: last event's
    sess = (sess_n, sess_size, sess_minutes, cur_size, sess_start, sess_first_start)
    _finish(row, o, ts, cutoff, s, e, last_beh, last_conv, last_action, stage, gaps, sess,
            responses, score_off, len(p_win))
    for c in range(len(row)):
        out[g, c] = row[c]


def _run(
    starts, ends, ts, etype, channel, action, value, score, cutoff, p_win, stage_of, conv_of,
    repeat_st, n_types, n_stages, n_chans, n_actions, gap_us, resp_us, score_of, score_low,
    score_has_low, score_off, o, out, last_type, last_chan,
):
    # Each customer writes only its own row, so customers can run on all cores.
    for g in prange(len(starts)):
        _customer(g, starts[g], ends[g], ts, etype, channel, action, value, score, cutoff,
                  p_win, stage_of, conv_of, repeat_st, n_types, n_stages, n_chans, n_actions,
                  gap_us, resp_us, score_of, score_low, score_has_low, score_off, o, out,
                  last_type, last_chan)


# One loop, compiled twice: prange is a plain range when not parallel (small inputs, where
# starting threads costs more than it saves).
run_serial = njit(cache=True)(_run)
run_parallel = njit(cache=True, parallel=True)(_run)
