"""Survival metrics on hand-computed cases, and the hazard model against Kaplan-Meier on data
with a known hazard."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from models.survival import (
    KaplanMeierSurvival,
    LightGBMSurvival,
    curve_at,
    median_from,
    person_period,
    restricted_mean,
)
from models.survival_metrics import (
    brier_scores,
    concordance_index,
    integrated_brier_score,
    kaplan_meier,
)

H, GAP = 91, 30


def brute_c_index(d: np.ndarray, e: np.ndarray, r: np.ndarray) -> float:
    num = den = 0.0
    for i, j in itertools.permutations(range(len(d)), 2):
        if e[i] and (d[i] < d[j] or (d[i] == d[j] and not e[j])):
            den += 1
            num += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    return num / den if den else float("nan")


def test_c_index_hand_cases() -> None:
    d, e = np.array([1.0, 2.0, 3.0]), np.array([True, True, False])
    # Comparable pairs: (1,2), (1,3), (2,3): all concordant when risk falls with time.
    assert concordance_index(d, e, [3, 2, 1]) == 1.0
    assert concordance_index(d, e, [1, 2, 3]) == 0.0
    # Subject 1 and 2 tied in risk: one of three pairs is a tie.
    assert concordance_index(d, e, [2, 2, 1]) == pytest.approx(2.5 / 3)
    # Two events at one time are not comparable; a censoring at that time is (it outlived).
    assert concordance_index([2, 2, 2], [True, True, False], [5, 1, 3]) == pytest.approx(0.5)
    assert np.isnan(concordance_index([1, 2], [False, False], [1, 2]))


def test_c_index_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        d = rng.integers(0, 5, n).astype(float)
        e = rng.random(n) < 0.6
        r = rng.integers(0, 4, n).astype(float)
        want = brute_c_index(d, e, r)
        got = concordance_index(d, e, r)
        assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want, abs=1e-12)


def test_c_index_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one length"):
        concordance_index([1, 2], [1], [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        concordance_index([-1, 2], [1, 1], [1, 2])
    with pytest.raises(ValueError, match="risk"):
        concordance_index([1, 2], [1, 1], [1, np.nan])


def test_kaplan_meier_hand_case() -> None:
    times, surv = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    # At risk 5, 4, 2: S(1) = 4/5, S(2) = 4/5 * 3/4, S(3) = 3/5 * 1/2.
    assert times.tolist() == [1, 2, 3]
    assert surv == pytest.approx([0.8, 0.6, 0.3])


def test_brier_without_censoring_is_the_plain_brier_score() -> None:
    d, e = np.array([1.0, 3.0]), np.array([True, True])
    s = np.array([[0.2], [0.9]])  # predicted S(2)
    # Subject 1 died by t=2 (target 0), subject 2 alive (target 1).
    assert brier_scores(d, e, s, [2.0]) == pytest.approx([(0.2**2 + 0.1**2) / 2])


def test_brier_weights_by_inverse_censoring_probability() -> None:
    d, e = np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, False, True, False])
    s = np.full((4, 1), 0.5)
    # G, the Kaplan-Meier curve of the censorings: one of the three at risk at 2 is censored,
    # so G(2) = G(3-) = G(3.5) = 2/3, and G(1-) = 1.
    # At t = 3.5: subject 1 died (w 1/G(1-) = 1), subject 3 died (w 1/G(3-) = 3/2),
    # subject 4 alive (w 1/G(3.5) = 3/2), subject 2 censored before: 0.
    want = (0.25 * 1 + 0.25 * 1.5 + 0.25 * 1.5) / 4
    assert brier_scores(d, e, s, [3.5]) == pytest.approx([want])


def test_integrated_brier_trapezoid() -> None:
    d, e = np.array([1.0, 3.0]), np.array([True, True])
    s = np.array([[0.5, 0.0], [1.0, 1.0]])
    # BS(0.5) = (0.25 + 0) / 2; BS(2) = (0 + 0) / 2; mean of the two over the span.
    assert integrated_brier_score(d, e, s, [0.5, 2.0]) == pytest.approx(0.0625)
    with pytest.raises(ValueError, match="increasing"):
        integrated_brier_score(d, e, s, [2.0, 0.5])


def test_person_period_rows() -> None:
    edges = np.array([0.0, 7, 14, 21])
    subject, interval, churned = person_period(
        np.array([3.0, 7.0, 10.0, 21.0, 9.0]), np.array([True, True, True, False, False]),
        edges)
    # 3: event in interval 0; 7: event in (0, 7] -> interval 0; 10: at risk 0 and 1, churns in
    # 1; censored at 21: all three intervals, no churn; censored at 9: only interval 0 complete.
    assert subject.tolist() == [0, 1, 2, 2, 3, 3, 3, 4]
    assert interval.tolist() == [0, 0, 0, 1, 0, 1, 2, 0]
    assert churned.tolist() == [1, 1, 0, 1, 0, 0, 0, 0]


def test_curve_helpers_on_a_constant_hazard() -> None:
    edges = np.array([0.0, 10.0, 20.0])
    edge = np.array([[1.0, 0.5, 0.25], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    s = curve_at(edge, edges, [0, 5, 10, 20])
    assert s[0] == pytest.approx([1, 0.5**0.5, 0.5, 0.25])
    assert s[1].tolist() == [1, 1, 1, 1]
    # The area under 0.5^(t/10) from 0 to 20: 10 * (1 - 0.25) / ln 2.
    assert restricted_mean(edge, edges) == pytest.approx([7.5 / np.log(2), 20.0, 0.0])
    med = median_from(edge, edges)
    assert med[0] == pytest.approx(10.0) and np.isinf(med[1]) and med[2] == 0.0
    with pytest.raises(ValueError, match="horizon"):
        curve_at(edge, edges, [21])


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Exponential churn times whose rate grows with ``x`` (hazard x 10 across its range),
    censored at the horizon; ``noise`` carries nothing."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    rate = 0.004 * np.exp(2.3 * x)
    t = rng.exponential(1 / rate)
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "x": x,
                          "noise": rng.random(n), "recency_days": rng.random(n) * 20})
    return frame, np.minimum(t, H), t <= H


@pytest.fixture(scope="module")
def fitted() -> tuple[LightGBMSurvival, KaplanMeierSurvival]:
    x, d, e = synthetic(3000, 0)
    xv, dv, ev = synthetic(1000, 1)
    model = LightGBMSurvival(horizon_days=H, churn_gap_days=GAP, min_data_in_leaf=50,
                             learning_rate=0.1, num_threads=1)
    return model.fit(x, d, e, eval_set=(xv, dv, ev)), KaplanMeierSurvival(H).fit(x, d, e)


def test_hazard_model_beats_kaplan_meier(fitted: tuple[LightGBMSurvival, KaplanMeierSurvival]
                                         ) -> None:
    model, km = fitted
    x, d, e = synthetic(2000, 2)
    days = np.arange(1, H, dtype=float)
    ours = integrated_brier_score(d, e, model.predict_survival(x, days), days)
    base = integrated_brier_score(d, e, km.predict_survival(x, days), days)
    assert ours < base
    c = concordance_index(d, e, -model.expected_days(x))
    truth = concordance_index(d, e, x["x"].to_numpy())  # the true risk order
    assert c > 0.95 * truth > 0.6
    assert concordance_index(d, e, -km.expected_days(x)) == 0.5


def test_survival_is_monotone_and_bounded(fitted: tuple[LightGBMSurvival, KaplanMeierSurvival]
                                          ) -> None:
    model, _ = fitted
    x = synthetic(300, 3)[0]
    s = model.predict_survival(x, np.arange(0, H + 1, dtype=float))
    assert np.all(s[:, 0] == 1.0) and np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s, axis=1) <= 1e-12)
    expected = model.expected_days(x)
    assert np.all((expected > 0) & (expected <= H))
    med = model.median_days(x)
    assert np.all(np.isinf(med) | ((med > 0) & (med <= H)))
    assert np.array_equal(model.predict(x), expected)
    with pytest.raises(ValueError, match="horizon"):
        model.predict_survival(x, [H + 1])


def test_customers_already_churned_get_zero(fitted: tuple[LightGBMSurvival, KaplanMeierSurvival]
                                            ) -> None:
    model, _ = fitted
    x = synthetic(3, 4)[0].assign(recency_days=[GAP + 1.0, np.nan, 5.0])
    s = model.predict_survival(x, [0, 7, 30])
    assert s[0].tolist() == [0, 0, 0] and s[1].tolist() == [0, 0, 0] and s[2, 0] == 1
    assert model.expected_days(x)[:2].tolist() == [0, 0]
    assert model.median_days(x)[:2].tolist() == [0, 0]


def test_sklearn_api(fitted: tuple[LightGBMSurvival, KaplanMeierSurvival]) -> None:
    model, _ = fitted
    fresh = clone(model)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "booster_")
    x, d, e = synthetic(500, 5)
    x0 = x.assign(recency_days=np.where(np.arange(500) < 50, GAP + 1, x["recency_days"]))
    d0 = np.where(np.arange(500) < 50, 0.0, d)  # already churned: left out of the fit
    assert fresh.set_params(max_rounds=20).fit(x0, d0, e) is fresh
    assert list(fresh.feature_names_in_) == ["x", "noise", "recency_days"]
    with pytest.raises(ValueError, match="feature columns missing"):
        fresh.predict_survival(x.drop(columns="x"), [7])
    with pytest.raises(ValueError, match="rows"):
        clone(model).fit(x, d[:10], e[:10])
