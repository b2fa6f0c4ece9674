"""Off-policy evaluation: what a deterministic targeting policy would have earned, from logs of
another (stochastic) policy that recorded the probability of what it did.

Arm numbering (shared with ``models.uplift``): arm 0 = no action, arm k = action k - 1 for
k = 1..K. Logs that code "no action" as -1 and actions as 0..K-1 convert with
``arms_from_actions`` (and back with ``actions_from_arms``).

Rewards are whatever the caller builds, typically economic: the value of the outcomes minus the
cost of the logged action. Every estimator returns the per-row terms whose mean is the estimate,
so the standard error is the terms' standard error and two policies evaluated on the same logs
can be compared row by row (``incremental``): the paired difference has far less variance than
the two estimates' variances added, because most rows contribute the same to both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

NO_ACTION = 0  # the arm of the "do nothing" policy


@dataclass(frozen=True)
class Estimate:
    """A policy value with its standard error; ``terms`` are the per-row influence terms
    (their mean is ``value``), kept so that estimates on the same rows can be differenced."""

    value: float
    se: float
    n: int
    terms: Floats = field(repr=False, compare=False)

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Normal-approximation confidence interval (z = 1.96: 95 %)."""
        return self.value - z * self.se, self.value + z * self.se

    @classmethod
    def of(cls, terms: Floats) -> Estimate:
        n = len(terms)
        se = float(np.std(terms, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        return cls(float(np.mean(terms)), se, n, terms)


def arms_from_actions(action: npt.ArrayLike) -> Ints:
    """Logged actions (-1 = none, 0..K-1) as arms (0 = none, 1..K)."""
    a = np.asarray(action)
    if a.ndim != 1:
        raise ValueError(f"actions must be one-dimensional, not shape {a.shape}")
    as_int = a.astype(np.int64)
    if a.size and (not np.array_equal(as_int, a) or as_int.min() < -1):
        raise ValueError("actions must be integers >= -1 (-1 = no action)")
    return as_int + 1


def actions_from_arms(arm: npt.ArrayLike) -> Ints:
    """Arms (0 = none, 1..K) as actions (-1 = none, 0..K-1)."""
    out: Ints = np.asarray(arm, dtype=np.int64) - 1
    return out


def no_action_policy(n: int) -> Ints:
    """The baseline every targeting policy is judged against: nobody gets an action."""
    return np.full(n, NO_ACTION, dtype=np.int64)


def _inputs(
    reward: npt.ArrayLike,
    logged_arm: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_arm: npt.ArrayLike,
    clip: float | None,
) -> tuple[Floats, Floats, Floats]:
    """(reward, match indicator, propensity floored at ``clip``) after checking shapes."""
    r = np.asarray(reward, dtype=np.float64)
    logged, target = np.asarray(logged_arm), np.asarray(target_arm)
    p = np.asarray(logged_propensity, dtype=np.float64)
    if not (r.ndim == 1 and r.shape == logged.shape == target.shape == p.shape):
        raise ValueError(
            "reward, logged_arm, logged_propensity and target_arm must be 1-D "
            f"of one length, not {r.shape}, {logged.shape}, {p.shape}, "
            f"{target.shape}"
        )
    if r.size == 0:
        raise ValueError("no rows to evaluate")
    if not np.all((p > 0) & (p <= 1)):
        raise ValueError("logged propensities must lie in (0, 1]: a logged arm had a chance")
    if clip is not None:
        if not 0 < clip <= 1:
            raise ValueError(f"clip must lie in (0, 1], not {clip}")
        p = np.maximum(p, clip)
    return r, (logged == target).astype(np.float64), p


def ips(
    reward: npt.ArrayLike,
    logged_arm: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_arm: npt.ArrayLike,
    clip: float | None = None,
) -> Estimate:
    """Inverse propensity scoring: rows where the log did what the target policy would do,
    reweighted by 1 / P(logged arm).

    ``clip`` floors the propensity in the denominator (so no weight exceeds 1 / clip): rows
    logged with probability below ``clip`` count as if logged with ``clip``. That trades the
    unbiasedness for variance; the estimate shrinks toward zero on those rows, so use a clip
    below nearly all logged propensities, and compare with the unclipped estimate.
    """
    r, match, p = _inputs(reward, logged_arm, logged_propensity, target_arm, clip)
    return Estimate.of(match / p * r)


def snips(
    reward: npt.ArrayLike,
    logged_arm: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_arm: npt.ArrayLike,
    clip: float | None = None,
) -> Estimate:
    """Self-normalised IPS: IPS divided by the mean weight, which is 1 in expectation. Slightly
    biased, but immune to the reward's offset (a constant added to every reward adds exactly
    that constant) and much less variable when weights are large. ``clip`` as in ``ips``.

    The terms are the linearised influence terms (value + w (r - value) / mean w), so the
    standard error is the delta-method one.
    """
    r, match, p = _inputs(reward, logged_arm, logged_propensity, target_arm, clip)
    w = match / p
    if not w.any():
        raise ValueError("no logged row took the target policy's arm: SNIPS is undefined")
    value = float(np.sum(w * r) / np.sum(w))
    return Estimate.of(value + w * (r - value) / np.mean(w))


def doubly_robust(
    reward: npt.ArrayLike,
    logged_arm: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_arm: npt.ArrayLike,
    q_hat: npt.ArrayLike,
    clip: float | None = None,
) -> Estimate:
    """Doubly robust: the model's predicted reward of the target arm, corrected by the
    IPS-weighted residual on rows where the log matches. Unbiased if either the propensities or
    ``q_hat`` are right; with a good ``q_hat`` the weighted terms are residuals, not rewards,
    hence far less variance than IPS.

    ``q_hat``: (n, K + 1), the predicted reward of every arm per row (column = arm), e.g. from
    ``TLearner.predict_arms`` turned into money. It must not have been fitted on these rows, or
    the residuals are too small and the standard error too optimistic. ``clip`` as in ``ips``.
    """
    r, match, p = _inputs(reward, logged_arm, logged_propensity, target_arm, clip)
    q = np.asarray(q_hat, dtype=np.float64)
    logged = np.asarray(logged_arm, dtype=np.int64)
    target = np.asarray(target_arm, dtype=np.int64)
    if q.ndim != 2 or q.shape[0] != len(r):
        raise ValueError(f"q_hat must be (n, K + 1) with n = {len(r)}, not {q.shape}")
    if max(logged.max(), target.max()) >= q.shape[1] or min(logged.min(), target.min()) < 0:
        raise ValueError(f"arms must lie in 0..{q.shape[1] - 1} (the columns of q_hat)")
    rows = np.arange(len(r))
    return Estimate.of(q[rows, target] + match / p * (r - q[rows, logged]))


def incremental(estimate: Estimate, baseline: Estimate) -> Estimate:
    """``estimate - baseline`` from the row-wise difference of their terms: the paired
    standard error. Both must come from the same logged rows, in the same order (e.g. a
    targeting policy and ``no_action_policy`` through the same estimator)."""
    if estimate.n != baseline.n:
        raise ValueError(f"estimates on different rows ({estimate.n} vs {baseline.n})")
    return Estimate.of(estimate.terms - baseline.terms)
