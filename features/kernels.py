"""The feature kernel: one compiled pass over each customer's events, shared by the batch and
online engines (so the two cannot drift).

Input arrays are sorted by customer, then by the tie order every engine uses: ts, event type,
channel, action, value, scores (by the spec's codes). Every event is strictly before the cutoff
T; a window of W days is [T - W, T). Definitions are in docs/features.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from features.events import Encoder, EventArrays
from features.layout import Layout, layout
from features.spec import DAY_US, FeatureSpec

F64 = npt.NDArray[np.float64]
NAN = np.nan


@dataclass(frozen=True)
class KernelParams:
    """Everything about the spec the compiled kernel needs, as arrays and numbers."""

    windows_us: npt.NDArray[np.int64]
    stage_of: npt.NDArray[np.int8]
    conv_of: npt.NDArray[np.bool_]
    n_types: int
    n_stages: int
    n_chans: int
    n_actions: int
    session_gap_us: int
    response_us: int
    score_of: npt.NDArray[np.int64]
    score_low: F64
    score_has_low: npt.NDArray[np.bool_]
    score_offsets: npt.NDArray[np.int64]

    @classmethod
    def of(cls, spec: FeatureSpec, enc: Encoder, lay: Layout) -> KernelParams:
        widths = np.array(lay.score_columns, np.int64)
        return cls(
            windows_us=np.array([w * DAY_US for w in spec.windows_days], np.int64),
            stage_of=enc.stage_of_type.astype(np.int8),
            conv_of=enc.conversion_of_type.astype(np.bool_),
            n_types=len(spec.event_types), n_stages=len(spec.stages),
            n_chans=len(spec.channel_vocab), n_actions=len(spec.action_vocab),
            session_gap_us=int(spec.session_gap_minutes * 60_000_000),
            response_us=int(spec.response_window_hours * 3_600_000_000),
            score_of=enc.score_of_type,
            score_low=np.array([np.nan if s.low is None else s.low for s in spec.scores]),
            score_has_low=np.array([s.low is not None for s in spec.scores], np.bool_),
            score_offsets=(np.concatenate(([0], np.cumsum(widths)[:-1])).astype(np.int64)
                           if len(widths) else np.zeros(0, np.int64)),
        )


@njit(cache=True)
def _days(us: float) -> float:
    return us / 86_400_000_000.0


@njit(cache=True)
def _customer(g, s, e, ts, etype, channel, action, value, score, cutoff, p_win, stage_of,
              conv_of, n_types, n_stages, n_chans, n_actions, gap_us, resp_us, score_of,
              score_low, score_has_low, score_off, o, out, last_type, last_chan):
    nw = len(p_win)
    if e == s:
        out[g, o[0]] = NAN
        out[g, o[0] + 1] = NAN
        out[g, o[0] + 2] = NAN
    else:
        out[g, o[0]] = _days(cutoff - ts[s])
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
                    out[g, o[3] + w * n_types + et] += 1.0
                out[g, o[5] + w * n_chans + ch] += 1.0
                if st >= 0:
                    out[g, o[4] + w * n_stages + st] += 1.0
                    out[g, o[1] + 3 * w] += 1.0
                if is_conv:
                    out[g, o[1] + 3 * w + 1] += 1.0
                    if value[i] == value[i]:
                        out[g, o[1] + 3 * w + 2] += value[i]
            elif st >= 0 and age <= 2 * p_win[w]:
                out[g, o[10] + w] += 1.0  # the window before: trend denominator for now
        if is_conv:
            last_conv = i
            out[g, o[2] + 1] += 1.0
            if value[i] == value[i]:
                out[g, o[2] + 2] += value[i]
        if action[i] >= 0:
            last_action = i
            n_actions_all += 1.0
            for w in range(nw):
                if age <= p_win[w]:
                    out[g, o[11] + w] += 1.0
            if age <= p_win[nw - 1]:
                out[g, o[12] + action[i]] += 1.0
        k = score_of[et] if et >= 0 else -1
        v = score[i]
        if k >= 0 and v == v:
            base = o[14] + score_off[k]
            out[g, base] += 1.0
            out[g, base + 1] += v
            out[g, base + 2] = v
            if score_has_low[k] and v <= score_low[k]:
                out[g, base + 3] += 1.0
        if st < 0:
            continue
        # -- a customer-initiated event: stage, gaps, sessions, responses -------------------
        out[g, o[2]] += 1.0
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
                    out[g, o[9] + w] += 1.0
        cur_size += 1.0
        furthest = st if st > furthest else furthest
        prev_stage = st
        last_beh = i
    if e > s:
        last_type[g] = etype[e - 1]
        last_chan[g] = channel[e - 1]
        out[g, o[0] + 1] = _days(cutoff - ts[last_beh]) if last_beh >= 0 else NAN
        out[g, o[0] + 2] = _days(cutoff - ts[last_conv]) if last_conv >= 0 else NAN
    if sess_start >= 0:
        sess_size += cur_size
        sess_minutes += (ts[last_beh] - ts[sess_start]) / 60_000_000.0
    tot = o[2]
    out[g, tot + 3] = out[g, tot + 2] / out[g, tot + 1] if out[g, tot + 1] > 0 else NAN
    out[g, o[6]] = stage_of_last(last_beh, etype, stage_of)
    out[g, o[6] + 1] = furthest
    out[g, o[6] + 2] = _days(cutoff - ts[run_start]) if run_start >= 0 else NAN
    out[g, o[6] + 3] = regress
    out[g, o[7]] = gap_mean if gap_n > 0 else NAN
    out[g, o[7] + 1] = np.sqrt(gap_m2 / gap_n) if gap_n > 0 else NAN
    out[g, o[7] + 2] = gap_max
    out[g, o[7] + 3] = gap_last
    out[g, o[8]] = sess_n
    out[g, o[8] + 1] = sess_size / sess_n if sess_n > 0 else NAN
    out[g, o[8] + 2] = sess_minutes / sess_n if sess_n > 0 else NAN
    out[g, o[8] + 3] = (_days(ts[sess_start] - ts[sess_first_start]) / (sess_n - 1)
                        if sess_n > 1 else NAN)
    for w in range(nw):
        recent = out[g, o[1] + 3 * w]
        out[g, o[10] + w] = (recent + 1.0) / (out[g, o[10] + w] + 1.0)
    out[g, o[13]] = _days(cutoff - ts[last_action]) if last_action >= 0 else NAN
    out[g, o[13] + 1] = responses
    out[g, o[13] + 2] = responses / n_actions_all if n_actions_all > 0 else NAN
    for k in range(len(score_off)):
        base = o[14] + score_off[k]
        n = out[g, base]
        out[g, base + 1] = out[g, base + 1] / n if n > 0 else NAN
        if n == 0:
            out[g, base + 2] = NAN


@njit(cache=True)
def stage_of_last(last_beh, etype, stage_of):
    return float(stage_of[etype[last_beh]]) if last_beh >= 0 else -1.0


@njit(cache=True)
def _all(starts, ends, ts, etype, channel, action, value, score, cutoff, p_win, stage_of,
         conv_of, n_types, n_stages, n_chans, n_actions, gap_us, resp_us, score_of, score_low,
         score_has_low, score_off, o, out, last_type, last_chan):
    for g in range(len(starts)):
        _customer(g, starts[g], ends[g], ts, etype, channel, action, value, score, cutoff,
                  p_win, stage_of, conv_of, n_types, n_stages, n_chans, n_actions, gap_us,
                  resp_us, score_of, score_low, score_has_low, score_off, o, out, last_type,
                  last_chan)


@njit(cache=True, parallel=True)
def _all_parallel(starts, ends, ts, etype, channel, action, value, score, cutoff, p_win,
                  stage_of, conv_of, n_types, n_stages, n_chans, n_actions, gap_us, resp_us,
                  score_of, score_low, score_has_low, score_off, o, out, last_type,
                  last_chan):
    # Each customer writes only its own row, so customers can run on all cores.
    for g in prange(len(starts)):
        _customer(g, starts[g], ends[g], ts, etype, channel, action, value, score, cutoff,
                  p_win, stage_of, conv_of, n_types, n_stages, n_chans, n_actions, gap_us,
                  resp_us, score_of, score_low, score_has_low, score_off, o, out, last_type,
                  last_chan)


PARALLEL_MIN_CUSTOMERS = 5_000  # below this, thread start-up costs more than it saves


@dataclass
class FeatureMatrix:
    """Numeric features (customers x columns) plus categorical columns as codes + vocabulary
    (code -1: missing)."""

    customer_ids: list[str]
    names: tuple[str, ...]
    values: F64
    categorical: dict[str, tuple[npt.NDArray[np.int64], tuple[str, ...]]]


class Kernel:
    def __init__(self, spec: FeatureSpec, enc: Encoder | None = None) -> None:
        self.spec = spec
        self.enc = enc or Encoder(spec)
        self.layout = layout(spec)
        self.params = KernelParams.of(spec, self.enc, self.layout)

    def __call__(self, ev: EventArrays, cutoff_us: int) -> FeatureMatrix:
        if len(ev) and int(ev.ts.max()) >= cutoff_us:
            raise ValueError("events at or after the cutoff reached the feature kernel")
        g = ev.n_customers
        starts = np.searchsorted(ev.cust, np.arange(g), side="left").astype(np.int64)
        ends = np.searchsorted(ev.cust, np.arange(g), side="right").astype(np.int64)
        # Column-major: consecutive customers fill each column sequentially, and every column is
        # contiguous for a zero-copy Arrow conversion.
        out = np.zeros((g, self.layout.width), order="F")
        last_type = np.full(g, -1, np.int64)
        last_chan = np.full(g, -1, np.int64)
        p = self.params
        run = _all_parallel if g >= PARALLEL_MIN_CUSTOMERS else _all
        run(starts, ends, ev.ts, ev.etype, ev.channel, ev.action, ev.value, ev.score,
            np.int64(cutoff_us), p.windows_us, p.stage_of, p.conv_of, p.n_types, p.n_stages,
            p.n_chans, p.n_actions, p.session_gap_us, p.response_us, p.score_of, p.score_low,
            p.score_has_low, p.score_offsets, self.layout.offsets, out, last_type, last_chan)
        return FeatureMatrix(ev.customer_ids, self.layout.names, out, {
            "last_event_type": (last_type, self.spec.event_types),
            "last_channel": (last_chan, self.spec.channel_vocab),
        })
