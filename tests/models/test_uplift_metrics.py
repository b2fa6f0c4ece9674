"""Qini, uplift curves and deciles on synthetic trials whose true effect per row is known."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.uplift_metrics import (
    auuc,
    inverse_propensity_weights,
    qini_coefficient,
    qini_curve,
    uplift_by_decile,
    uplift_curve,
)

Floats = npt.NDArray[np.float64]


def trial(n: int = 40_000, seed: int = 0) -> tuple[Floats, Floats, Floats]:
    """(true effect, treated, y): effects from -0.05 to +0.15, half the rows treated."""
    rng = np.random.default_rng(seed)
    tau = rng.uniform(-0.05, 0.15, n)
    treated = rng.uniform(size=n) < 0.5
    y = rng.uniform(size=n) < 0.2 + treated * tau
    return tau, treated.astype(np.float64), y.astype(np.float64)


def test_true_effect_beats_random_and_reversed_is_negative() -> None:
    tau, t, y = trial()
    good = qini_coefficient(tau, t, y)
    noise = qini_coefficient(np.random.default_rng(1).uniform(size=len(y)), t, y)
    bad = qini_coefficient(-tau, t, y)
    # The perfect ranking (the normaliser) sorts on the outcomes themselves, so even the true
    # effect scores well below 1; a random score's coefficient has a spread of about 0.015 here.
    assert good > 0.05 and bad < -0.05 and abs(noise) < 0.03, (good, noise, bad)
    assert auuc(tau, t, y) > 0 > auuc(-tau, t, y)


def test_perfect_ranking_scores_one() -> None:
    _, t, y = trial(5_000)
    assert qini_coefficient(y * t - y * (1 - t), t, y) == pytest.approx(1.0)


def test_curves_start_at_zero_and_end_at_the_overall_effect() -> None:
    tau, t, y = trial()
    x, q = qini_curve(tau, t, y)
    assert x[0] == 0 and q[0] == 0 and x[-1] == pytest.approx(1.0)
    treated, control = y[t > 0], y[t == 0]
    assert q[-1] == pytest.approx(len(treated) * (treated.mean() - control.mean()))
    _, u = uplift_curve(tau, t, y)
    assert u[-1] == pytest.approx(len(y) * (treated.mean() - control.mean()))


def test_ties_give_no_points_inside() -> None:
    _, t, y = trial(1_000)
    x, q = qini_curve(np.zeros(len(y)), t, y)
    assert len(x) == len(q) == 2
    assert qini_coefficient(np.zeros(len(y)), t, y) == pytest.approx(0.0)


def test_constant_weights_equal_unweighted() -> None:
    tau, t, y = trial(5_000)
    w = np.full(len(y), 3.7)
    for curve in (qini_curve, uplift_curve):
        for plain, weighted in zip(curve(tau, t, y), curve(tau, t, y, w), strict=True):
            np.testing.assert_allclose(weighted, plain, rtol=1e-12, atol=1e-9)
    assert qini_coefficient(tau, t, y, w) == pytest.approx(qini_coefficient(tau, t, y))
    assert auuc(tau, t, y, w) == pytest.approx(auuc(tau, t, y))
    assert uplift_by_decile(tau, t, y, w).equals(uplift_by_decile(tau, t, y))


def test_weights_remove_confounding() -> None:
    """No effect at all, but treatment goes mostly to customers who convert anyway: the
    unweighted comparison shows a lift that inverse propensity weights remove."""
    rng = np.random.default_rng(2)
    n = 60_000
    x = rng.normal(size=n)
    e = 1 / (1 + np.exp(-1.5 * x))
    t = (rng.uniform(size=n) < e).astype(np.float64)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x - 1)))).astype(np.float64)
    score = rng.uniform(size=n)
    w = inverse_propensity_weights(t, e, 1 - e)
    naive = uplift_by_decile(score, t, y)
    weighted = uplift_by_decile(score, t, y, w)
    assert naive["uplift"].mean() > 0.1
    assert abs(weighted["uplift"].mean()) < 0.02
    assert (np.abs(weighted["uplift"]) < 4 * weighted["se"]).mean() >= 0.9


def test_deciles() -> None:
    tau, t, y = trial()
    table = uplift_by_decile(tau, t, y)
    assert list(table["decile"]) == list(range(1, 11))
    assert (table["n_treated"] + table["n_control"]).sum() == len(y)
    assert table["mean_score"].is_monotonic_decreasing
    assert table["uplift"].iloc[0] > table["uplift"].iloc[-1] + 3 * np.hypot(
        table["se"].iloc[0], table["se"].iloc[-1]
    )
    true = [tau[part].mean() for part in np.array_split(np.argsort(-tau), 10)]
    assert (np.abs(table["uplift"] - true) < 4 * table["se"]).all()


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="finite"):
        qini_curve([np.nan, 1.0], [1, 0], [0, 1])
    with pytest.raises(ValueError, match="one length"):
        qini_curve([1.0, 2.0], [1], [0, 1])
    with pytest.raises(ValueError, match="weights"):
        qini_curve([1.0, 2.0], [1, 0], [0, 1], [-1.0, 1.0])
