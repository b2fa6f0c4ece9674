"""Metrics for right-censored time-to-event predictions: Harrell's concordance index and the
integrated Brier score with inverse-probability-of-censoring weights (Graf et al., 1999), and
the Kaplan-Meier estimator they (and the baseline model) rest on.

Conventions (those of scikit-survival): a pair (i, j) is comparable when i's event is observed
and t_i < t_j, or t_i == t_j and j is censored (j outlived i's event time); two events at the
same time are not comparable. A higher risk should mean an earlier event; tied risks count
one half. Everything is vectorised numpy, O(n log² n) for the concordance index.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def validate_survival(duration: npt.ArrayLike, observed: npt.ArrayLike) -> tuple[Floats, Bools]:
    """Durations (finite, >= 0) and event flags as 1-D arrays of one length, or a ValueError
    that says which input is wrong."""
    d = np.asarray(duration, dtype=np.float64)
    e = np.asarray(observed)
    if d.ndim != 1 or e.ndim != 1 or len(d) != len(e):
        raise ValueError(f"duration and observed must be 1-D of one length, got shapes "
                         f"{d.shape} and {e.shape}")
    if len(d) == 0:
        raise ValueError("duration and observed are empty")
    if not np.all(np.isfinite(d)) or d.min() < 0:
        raise ValueError("duration must be finite and non-negative")
    if not np.isin(e, [0, 1]).all():
        raise ValueError("observed must be bool or 0/1")
    return d, e.astype(bool)


def kaplan_meier(duration: npt.ArrayLike, observed: npt.ArrayLike) -> tuple[Floats, Floats]:
    """The Kaplan-Meier estimate: distinct event times and the survival just after each.
    Subjects censored at an event time count as at risk at that time."""
    d, e = validate_survival(duration, observed)
    times = np.unique(d)
    order = np.sort(d)
    at_risk = len(d) - np.searchsorted(order, times, side="left")
    deaths = np.bincount(np.searchsorted(times, d[e]), minlength=len(times))
    keep = deaths > 0
    surv = np.cumprod(1.0 - deaths[keep] / at_risk[keep]).astype(np.float64)
    return times[keep], surv


def step_at(times: Floats, values: Floats, t: npt.ArrayLike, left: bool = False) -> Floats:
    """A right-continuous step function (1 before the first time) at ``t``; ``left``: the
    limit from the left, S(t-)."""
    pos = np.searchsorted(times, np.asarray(t, dtype=np.float64),
                          side="left" if left else "right")
    padded = np.concatenate([[1.0], values])
    out: Floats = padded[pos]
    return out


def _earlier_counts(rank: Ints) -> tuple[Ints, Ints]:
    """For each position i: how many earlier positions hold a smaller rank, and an equal one.
    Merge-sort levels, each one vectorised sort + searchsorted."""
    n = len(rank)
    less, equal = np.zeros(n, np.int64), np.zeros(n, np.int64)
    pos = np.arange(n, dtype=np.int64)
    span = int(rank.max()) + 2 if n else 1
    size = 1
    while size < n:
        block = pos // (2 * size)
        right = (pos // size) % 2 == 1
        keys = np.sort(block[~right] * span + rank[~right])
        base = block[right] * span
        query = base + rank[right]
        lo = np.searchsorted(keys, base, side="left")
        lt = np.searchsorted(keys, query, side="left")
        le = np.searchsorted(keys, query, side="right")
        less[right] += lt - lo
        equal[right] += le - lt
        size *= 2
    return less, equal


def concordance_index(duration: npt.ArrayLike, observed: npt.ArrayLike,
                      risk: npt.ArrayLike) -> float:
    """Harrell's C: the share of comparable pairs whose higher risk had the earlier event
    (ties in risk count one half). NaN when no pair is comparable."""
    d, e = validate_survival(duration, observed)
    r = np.asarray(risk, dtype=np.float64)
    if r.shape != d.shape or not np.all(np.isfinite(r)):
        raise ValueError(f"risk must be finite with shape {d.shape}, got {r.shape}")
    t_rank = np.unique(d, return_inverse=True)[1].astype(np.int64)
    r_rank = np.unique(r, return_inverse=True)[1].astype(np.int64)
    # Censored subjects sort as if a hair later than events at their time: they are
    # comparable with (outlived) those events. Within one key, smaller risks come first.
    key = 2 * t_rank + (~e).astype(np.int64)
    order = np.lexsort((r_rank, -key))
    key_o, rank_o, event_o = key[order], r_rank[order], e[order]
    less, equal = _earlier_counts(rank_o)
    # Events at one time were counted against each other (earlier ones within the group);
    # they are not comparable, so take those pairs back out.
    tied = np.unique(np.column_stack([key_o[event_o], rank_o[event_o]]), axis=0,
                     return_counts=True)[1] if event_o.any() else np.zeros(0, np.int64)
    groups = np.unique(key_o[event_o], return_counts=True)[1]
    same_rank = int((tied * (tied - 1) // 2).sum())
    same_time = int((groups * (groups - 1) // 2).sum())
    later = len(key_o) - np.searchsorted(np.sort(key_o), key_o, side="right")
    comparable = int(later[event_o].sum())
    concordant = int(less[event_o].sum()) - (same_time - same_rank)
    ties = int(equal[event_o].sum()) - same_rank
    if comparable == 0:
        return float("nan")
    return (concordant + 0.5 * ties) / comparable


def brier_scores(duration: npt.ArrayLike, observed: npt.ArrayLike, survival: npt.ArrayLike,
                 times: npt.ArrayLike) -> Floats:
    """IPCW Brier score at each of ``times`` (Graf et al.): survival is (n, len(times)), each
    row a subject's predicted S(t). The censoring distribution G is the Kaplan-Meier estimate
    of the censoring times of these same subjects."""
    d, e = validate_survival(duration, observed)
    s = np.asarray(survival, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if s.shape != (len(d), len(t)):
        raise ValueError(f"survival must have shape {(len(d), len(t))}, got {s.shape}")
    if not np.all((s >= -1e-9) & (s <= 1 + 1e-9)):
        raise ValueError("survival must lie in [0, 1]")
    g_times, g_surv = kaplan_meier(d, ~e)
    g_at_event = step_at(g_times, g_surv, d, left=True)  # G(T_i-)
    g_at_t = step_at(g_times, g_surv, t)  # G(t)
    if np.any(g_at_t <= 0):
        raise ValueError("times reach past the last censoring time (G(t) = 0); "
                         "choose times before the end of follow-up")
    died = (d[:, None] <= t[None, :]) & e[:, None]
    alive = d[:, None] > t[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        w_died = np.where(e, 1.0 / np.where(g_at_event > 0, g_at_event, np.inf), 0.0)
    terms = died * s**2 * w_died[:, None] + alive * (1 - s) ** 2 / g_at_t[None, :]
    out: Floats = terms.mean(axis=0)
    return out


def integrated_brier_score(duration: npt.ArrayLike, observed: npt.ArrayLike,
                           survival: npt.ArrayLike, times: npt.ArrayLike) -> float:
    """The Brier score integrated over ``times`` (trapezoid rule) and divided by their span:
    0 is perfect, 0.25 what a constant S = 0.5 scores."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or len(t) < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("times must be at least two increasing values")
    bs = brier_scores(duration, observed, survival, t)
    area = float(np.sum((bs[1:] + bs[:-1]) / 2 * np.diff(t)))
    return area / float(t[-1] - t[0])
