"""Reason codes from LightGBM contributions: additivity, ranking, values and plain words, on a
small synthetic churn-like frame with real feature names."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from models.lgbm import LightGBMClassifier
from models.paths import path_contributions
from models.reasons import Reason, contributions, top_reasons
from models.wording import describe

STAGES = ("awareness", "consideration", "decision", "purchase", "retention", "advocacy")


def make_frame(n: int, seed: int, k: int = 2) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Churn depends strongly on recency_days; purchases lower it a little; the rest is noise."""
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 60, n)
    purchases = rng.poisson(1.0, n).astype(float)
    purchase_recency = rng.uniform(0, 200, n)
    purchase_recency[purchases == 0] = np.nan
    chan = rng.choice(["search", "email", "app"], n).astype(object)
    chan[rng.uniform(size=n) < 0.05] = None
    frame = pd.DataFrame({
        "customer_id": [f"c{seed}-{i}" for i in range(n)],
        "recency_days": recency,
        "purchases_90d": purchases,
        "purchase_recency_days": purchase_recency,
        "tenure_days": recency + rng.uniform(1, 400, n),
        "last_channel": chan,
    })
    logit = 0.2 * (recency - 30) - 0.3 * purchases
    if k == 2:
        return frame, (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    # 3 classes: active (low recency), lapsing, churned (high recency)
    y = np.digitize(recency + rng.normal(0, 3, n), [20, 40])
    return frame, y.astype(np.int64)


def fit(k: int) -> LightGBMClassifier:
    X, y = make_frame(2000, seed=1, k=k)  # noqa: N806
    X_val, y_val = make_frame(1000, seed=2, k=k)  # noqa: N806
    classes = ("0", "1") if k == 2 else ("active", "lapsing", "churned")
    model = LightGBMClassifier(
        classes=classes, num_threads=1, learning_rate=0.1, max_rounds=100, min_data_in_leaf=20
    )
    model.fit(X, y, eval_set=(X_val, y_val))
    return model


@pytest.fixture(scope="module")
def binary() -> LightGBMClassifier:
    return fit(2)


@pytest.fixture(scope="module")
def multi() -> LightGBMClassifier:
    return fit(3)


def test_contributions_add_up_to_the_raw_score(binary: LightGBMClassifier) -> None:
    X, _ = make_frame(200, seed=3)  # noqa: N806
    contrib = contributions(binary, X)
    assert contrib.shape == (200, binary.booster_.num_feature() + 1)
    raw = binary.booster_.predict(
        binary.matrix(X), num_iteration=binary.best_iteration_, raw_score=True
    )
    np.testing.assert_allclose(contrib.sum(axis=1), raw, atol=1e-6)
    # the precomputed matrix gives the same answer
    np.testing.assert_array_equal(contributions(binary, X, binary.matrix(X)), contrib)


def test_multiclass_shape_and_additivity(multi: LightGBMClassifier) -> None:
    X, _ = make_frame(50, seed=4, k=3)  # noqa: N806
    contrib = contributions(multi, X)
    assert contrib.shape == (50, 3, multi.booster_.num_feature() + 1)
    raw = multi.booster_.predict(
        multi.matrix(X), num_iteration=multi.best_iteration_, raw_score=True
    )
    np.testing.assert_allclose(contrib.sum(axis=2), raw, atol=1e-6)


def test_high_recency_is_the_top_reason_for_churn(binary: LightGBMClassifier) -> None:
    X, _ = make_frame(20, seed=5)  # noqa: N806
    X = X.assign(recency_days=[57.0] * 10 + [2.0] * 10)  # noqa: N806
    reasons = top_reasons(binary, X, STAGES)
    assert len(reasons) == 20
    for row in reasons[:10]:
        assert row[0].feature == "recency_days"
        assert row[0].direction == "raises" and row[0].contribution > 0
        assert row[0].value == 57.0 and row[0].text == "no activity in 57 days"
    for row in reasons[10:]:
        assert row[0].feature == "recency_days" and row[0].direction == "lowers"
    # class_index=0 explains the other class: same features, opposite signs
    flipped = top_reasons(binary, X, STAGES, class_index=0)
    assert flipped[0][0].feature == "recency_days" and flipped[0][0].direction == "lowers"


@pytest.mark.parametrize("k", [0, 1, 3, 100])
def test_k_is_respected_and_reasons_are_ranked(binary: LightGBMClassifier, k: int) -> None:
    X, _ = make_frame(30, seed=6)  # noqa: N806
    n_features = binary.booster_.num_feature()
    for row in top_reasons(binary, X, STAGES, k=k):
        assert len(row) <= min(k, n_features)
        sizes = [abs(r.contribution) for r in row]
        assert sizes == sorted(sizes, reverse=True)
        assert all(r.contribution != 0 for r in row)
        assert all(isinstance(r, Reason) for r in row)
    assert top_reasons(binary, X.iloc[:0], STAGES) == []


def test_values_are_the_inputs(binary: LightGBMClassifier) -> None:
    """NaNs and categoricals come back as inputs (None, the string), derived ratios by value."""
    X, _ = make_frame(300, seed=7)  # noqa: N806
    X = X.reset_index(drop=True).set_axis(range(1000, 1300))  # positions, not labels  # noqa: N806
    reasons = top_reasons(binary, X, STAGES, k=100)
    seen = set()
    for i, row in enumerate(reasons):
        for r in row:
            seen.add(r.feature)
            source = X.iloc[i]
            if r.feature == "purchase_recency_days" and math.isnan(source[r.feature]):
                assert r.value is None and r.text == "has never purchased"
            elif r.feature == "last_channel":
                chan = X["last_channel"]
                expected = str(chan.iat[i]) if chan.notna().iat[i] else None  # never NaN
                assert r.value == expected
                assert r.text == (
                    "no last touch recorded" if expected is None else f"last touch via {expected}"
                )
            elif r.feature == "recency_share":
                share = source["recency_days"] / max(source["tenure_days"], 1.0)
                assert r.value == pytest.approx(share, rel=1e-6)
            elif r.feature in X.columns and r.value is not None:
                assert r.value == pytest.approx(float(source[r.feature]))
    assert {"recency_days", "last_channel", "purchase_recency_days", "recency_share"} <= seen


def test_feature_dicts_give_the_frame_answer(binary: LightGBMClassifier) -> None:
    """Serving passes online vectors (dicts), not frames: same reasons, same values."""
    X, _ = make_frame(60, seed=9)  # noqa: N806
    records = [
        {str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in X.to_dict("records")
    ]
    assert top_reasons(binary, records, STAGES, k=4) == top_reasons(binary, X, STAGES, k=4)


def test_multiclass_explains_the_predicted_class(multi: LightGBMClassifier) -> None:
    X, _ = make_frame(40, seed=8, k=3)  # noqa: N806
    X = X.assign(recency_days=[58.0] * 20 + [1.0] * 20)  # noqa: N806
    predicted = np.argmax(multi.predict_proba(X), axis=1)
    assert list(predicted[:20]) == [2] * 20 and list(predicted[20:]) == [0] * 20
    j = multi.booster_.feature_name().index("recency_days")
    path = path_contributions(multi.booster_, multi.path_tables(), multi.matrix(X), predicted)
    shap = contributions(multi, X)
    reasons = top_reasons(multi, X, STAGES, k=2)
    by_shap = top_reasons(multi, X, STAGES, k=2, method="shap")
    for i, row in enumerate(reasons):
        assert len(row) == 2
        assert row[0].feature == "recency_days" and row[0].direction == "raises"
        assert row[0].contribution == pytest.approx(path[i, j])
        assert by_shap[i][0].feature == "recency_days"
        assert by_shap[i][0].contribution == pytest.approx(shap[i, predicted[i], j])
    # an explicit class, one for all rows or one per row
    churned = top_reasons(multi, X, STAGES, k=1, class_index=2)
    assert churned[25][0].feature == "recency_days" and churned[25][0].direction == "lowers"
    per_row = top_reasons(multi, X, STAGES, k=1, class_index=predicted)
    assert per_row == [row[:1] for row in reasons]


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("recency_days", 23.4, "no activity in 23 days"),
        ("recency_days", 1.0, "no activity in 1 day"),
        ("recency_days", 0.2, "active in the last day"),
        ("recency_days", None, "no activity on record"),
        ("purchase_recency_days", float("nan"), "has never purchased"),
        ("purchase_recency_days", 40.0, "last purchase 40 days ago"),
        ("tenure_days", 365.0, "customer for 365 days"),
        ("purchases_90d", 3.0, "3 purchases in the last 90 days"),
        ("purchases_90d", 1.0, "1 purchase in the last 90 days"),
        ("purchases_total", 0.0, "no purchases yet"),
        ("events_30d", 0.0, "no touchpoints in the last 30 days"),
        ("events_total", 12.0, "12 touchpoints in total"),
        ("revenue_90d", 1234.5, "spent 1,234.50 in the last 90 days"),
        ("revenue_7d", 0.0, "no spend in the last 7 days"),
        ("revenue_total", 99.999, "spent 100.00 in total"),
        ("avg_order_value", None, "no orders yet"),
        ("n_add_to_cart_30d", 2.0, "2 add to cart events in the last 30 days"),
        ("n_purchase_7d", 1.0, "1 purchase event in the last 7 days"),
        ("st_decision_7d", 1.0, "1 decision-stage event in the last 7 days"),
        ("ch_email_30d", 4.0, "4 events via email in the last 30 days"),
        ("ch_call_center_90d", 0.0, "no events via call center in the last 90 days"),
        ("stage_current", 2.0, "currently in the decision stage"),
        ("stage_current", -1.0, "no stage yet"),
        ("stage_furthest", 4.0, "has reached the retention stage"),
        ("days_in_stage", 12.2, "12 days in the current stage"),
        ("stage_regressions", 1.0, "moved back a stage once"),
        ("stage_regressions", 0.0, "never moved back a stage"),
        ("gap_mean_days", 5.2, "on average 5 days between touchpoints"),
        ("gap_max_days", 40.0, "longest gap between touchpoints 40 days"),
        ("gap_last_days", None, "fewer than two touchpoints"),
        ("sessions_total", 12.0, "12 sessions in total"),
        ("sessions_30d", 1.0, "1 session in the last 30 days"),
        ("session_minutes_mean", 6.54, "sessions last 6.5 minutes on average"),
        ("days_between_sessions", 9.3, "9 days between sessions on average"),
        ("trend_events_30d", 2.5, "2.5 times more activity in the last 30 days than the 30 days "
         "before"),
        ("trend_events_30d", 0.4, "activity down 60% in the last 30 days vs the 30 days before"),
        ("trend_events_7d", 1.0, "activity steady over the last 7 days"),
        ("actions_30d", 0.0, "no marketing contacts in the last 30 days"),
        ("act_discount_email_90d", 2.0, "2 discount emails in the last 90 days"),
        ("act_support_outreach_90d", 1.0, "1 support outreach contact in the last 90 days"),
        ("days_since_action", 5.0, "last marketing contact 5 days ago"),
        ("days_since_action", None, "never contacted by marketing"),
        ("action_responses", 3.0, "responded to marketing 3 times"),
        ("action_response_rate", 0.4, "responds to 40% of marketing contacts"),
        ("csat_low", 2.0, "2 poor support experiences (CSAT)"),
        ("csat_low", 1.0, "1 poor support experience (CSAT)"),
        ("csat_count", 0.0, "no CSAT responses"),
        ("csat_mean", 3.5, "average CSAT 3.5"),
        ("nps_last", 3.0, "last NPS score 3"),
        ("nps_mean", None, "no NPS score yet"),
        ("rating_last", 5.0, "last review rating 5"),
        ("last_channel", "search", "last touch via search"),
        ("last_channel", None, "no last touch recorded"),
        ("last_event_type", "add_to_cart", "last event: add to cart"),
        ("attr_region", "north", "region: north"),
        ("attr_acquisition_channel", "paid_search", "acquisition channel: paid search"),
        ("attr_device", None, "device: unknown"),
        ("rate_purchases", 1 / 30, "about one purchase every 30 days"),
        ("rate_events", 3.2, "about 3.2 touchpoints a day"),
        ("rate_events", 0.0, "no touchpoints yet"),
        ("recency_share", 0.4, "quiet for the last 40% of their time as a customer"),
        ("purchase_recency_share", None, "has never purchased"),
        ("purchase_recency_share", 0.25, "no purchase in the last 25% of their time as a customer"),
    ],
)
def test_describe(feature: str, value: float | str | None, text: str) -> None:
    assert describe(feature, value, STAGES) == text


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("mystery", 1.5, "mystery = 1.5"),
        ("mystery", 2.0, "mystery = 2"),
        ("mystery", "x", "mystery = x"),
        ("mystery", None, "mystery = missing"),
        ("recency_days", "soon", "recency_days = soon"),  # a string where a number belongs
        ("stage_current", 9.0, "stage_current = 9"),  # past the taxonomy
        ("csat_last", float("-inf"), "last CSAT -inf"),  # round(-inf) raised OverflowError
    ],
)
def test_describe_never_raises(feature: str, value: float | str | None, text: str) -> None:
    assert describe(feature, value, STAGES) == text
