"""How well an uplift score ranks customers by the effect of one action against no action.

There is no per-customer truth (nobody is both treated and not), so every metric compares
treated and control rows within slices of the ranking. When the chance of treatment depends on
the customer, those groups differ within a slice and the comparison is confounded: pass
``weight`` = inverse propensity weights (``inverse_propensity_weights``) so each group stands for
the whole slice. Weights are rescaled to mean 1, which keeps the curves in units of customers
(constant weights give exactly the unweighted curves).

Rows are the control rows plus the rows of the one action being judged; ``treated`` says which.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

Floats = npt.NDArray[np.float64]


class _Cumulative(NamedTuple):
    """Weighted running sums down the ranking, at the end of each group of tied scores (a
    ranking cannot order ties, so the curve has no points inside them)."""

    fraction: Floats  # share of the (weighted) rows targeted so far
    n_treated: Floats
    n_control: Floats
    y_treated: Floats
    y_control: Floats


def _inputs(
    score: npt.ArrayLike,
    treated: npt.ArrayLike,
    y: npt.ArrayLike,
    weight: npt.ArrayLike | None,
) -> tuple[Floats, Floats, Floats, Floats]:
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(treated, dtype=bool).astype(np.float64)
    yy = np.asarray(y, dtype=np.float64)
    w = np.ones(len(s)) if weight is None else np.asarray(weight, dtype=np.float64)
    if not (s.ndim == 1 and s.shape == t.shape == yy.shape == w.shape):
        raise ValueError(
            "score, treated, y and weight must be 1-D of one length, not "
            f"{s.shape}, {t.shape}, {yy.shape}, {w.shape}"
        )
    if s.size == 0 or not np.isfinite(s).all():
        raise ValueError("scores must be finite, and at least one row is needed")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return s, t, yy, w * (len(w) / w.sum())


def _cumulative(s: Floats, t: Floats, y: Floats, w: Floats) -> _Cumulative:
    order = np.argsort(-s, kind="stable")
    s, t, y, w = s[order], t[order], y[order], w[order]
    ends = np.append(np.flatnonzero(np.diff(s) != 0), len(s) - 1)
    wt, wc = w * t, w * (1 - t)

    def run(v: Floats) -> Floats:
        return np.concatenate([[0.0], np.cumsum(v)[ends]])

    return _Cumulative(run(w) / w.sum(), run(wt), run(wc), run(wt * y), run(wc * y))


def inverse_propensity_weights(
    treated: npt.ArrayLike,
    propensity_treated: npt.ArrayLike,
    propensity_control: npt.ArrayLike,
) -> Floats:
    """1 / P(action | x) on treated rows, 1 / P(no action | x) on control rows: each group then
    stands for every customer, whatever made the logging policy treat some more often."""
    t = np.asarray(treated, dtype=bool)
    p = np.where(t, np.asarray(propensity_treated, float), np.asarray(propensity_control, float))
    if not (p > 0).all():
        raise ValueError("propensities must be positive on the rows they weight")
    out: Floats = 1.0 / p
    return out


def qini_curve(
    score: npt.ArrayLike,
    treated: npt.ArrayLike,
    y: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
) -> tuple[Floats, Floats]:
    """(fraction targeted, Qini) from the highest scores down, starting at (0, 0).

    Radcliffe's Qini: Q = Y_t - Y_c N_t / N_c, the treated outcomes in the targeted slice minus
    the controls' scaled to as many rows: the incremental outcomes among the slice's treated
    customers. Weighted sums with ``weight``; see the module docstring for why to weight.
    """
    c = _cumulative(*_inputs(score, treated, y, weight))
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(c.n_control > 0, c.y_control * c.n_treated / c.n_control, 0.0)
    return c.fraction, c.y_treated - scaled


def uplift_curve(
    score: npt.ArrayLike,
    treated: npt.ArrayLike,
    y: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
) -> tuple[Floats, Floats]:
    """(fraction targeted, (Y_t / N_t - Y_c / N_c) (N_t + N_c)): the incremental outcomes if
    every customer in the slice were treated (0 until both groups have rows)."""
    c = _cumulative(*_inputs(score, treated, y, weight))
    both = (c.n_treated > 0) & (c.n_control > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(both, c.y_treated / c.n_treated - c.y_control / c.n_control, 0.0)
    return c.fraction, lift * (c.n_treated + c.n_control)


def _area_over_random(x: Floats, q: Floats) -> float:
    """Area between the curve and the straight line from (0, 0) to its end point."""
    return float(np.trapezoid(q, x) - q[-1] / 2)


def qini_coefficient(
    score: npt.ArrayLike,
    treated: npt.ArrayLike,
    y: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
) -> float:
    """Area between the Qini curve and the random line, divided by the same area for the
    perfect ranking (Radcliffe 2007's normalisation; scikit-uplift's ``qini_auc_score`` with
    negative effects allowed): treated responders first, control responders last. 1 = perfect,
    about 0 = random, negative = worse than random; NaN when no ranking beats random (e.g. no
    responders). Scale-free, so comparable across data sets of different sizes."""
    s, t, yy, w = _inputs(score, treated, y, weight)
    model = _area_over_random(*qini_curve(s, t, yy, w))
    perfect = _area_over_random(*qini_curve(yy * t - yy * (1 - t), t, yy, w))
    return model / perfect if perfect > 0 else math.nan


def auuc(
    score: npt.ArrayLike,
    treated: npt.ArrayLike,
    y: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
) -> float:
    """Area between the uplift curve and the random line, per customer (the curve divided by
    the (weighted) row count, as in Gutierrez & Gérardy 2017): how many more outcomes per
    customer, averaged over every targeting depth, the ranking earns over random targeting.
    Not normalised by the perfect ranking (``qini_coefficient`` is), so it keeps the units of
    the outcome."""
    x, u = uplift_curve(score, treated, y, weight)
    return _area_over_random(x, u) / len(np.asarray(score))


def _weighted_mean_se(y: Floats, w: Floats) -> tuple[float, float]:
    total = w.sum()
    if total <= 0:
        return math.nan, math.nan
    mean = float(np.sum(w * y) / total)
    return mean, float(np.sqrt(np.sum((w * (y - mean)) ** 2)) / total)


def uplift_by_decile(
    score: npt.ArrayLike,
    treated: npt.ArrayLike,
    y: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
    bins: int = 10,
) -> pd.DataFrame:
    """Observed uplift in each score decile (decile 1 = highest scores): the weighted outcome
    rates of treated and control rows, their difference and its standard error, with the raw
    row counts (what the rates rest on). Deciles are equal row counts by rank, so ties may
    straddle a boundary."""
    s, t, yy, w = _inputs(score, treated, y, weight)
    rows = []
    for i, part in enumerate(np.array_split(np.argsort(-s, kind="stable"), bins), start=1):
        on = t[part] > 0
        rate_t, se_t = _weighted_mean_se(yy[part][on], w[part][on])
        rate_c, se_c = _weighted_mean_se(yy[part][~on], w[part][~on])
        rows.append(
            {
                "decile": i,
                "mean_score": float(s[part].mean()) if len(part) else math.nan,
                "n_treated": int(on.sum()),
                "n_control": int((~on).sum()),
                "rate_treated": rate_t,
                "rate_control": rate_c,
                "uplift": rate_t - rate_c,
                "se": math.hypot(se_t, se_c),
            }
        )
    return pd.DataFrame(rows)
