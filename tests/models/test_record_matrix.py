"""LightGBMClassifier.record_matrix (feature dicts, the serving path) equals matrix (frames)
on the same rows: numbers, missing values, categories seen, unseen and absent, derived
ratios, and the predictions made from either."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.lgbm import LightGBMClassifier


def frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(0, 300, n)
    recency = tenure * rng.uniform(0, 1, n)
    purchases = rng.poisson(2, n).astype(float)
    purchase_recency = np.where(purchases > 0, recency + rng.uniform(0, 20, n), np.nan)
    channel = rng.choice(["search", "email", "app"], n).astype(object)
    channel[rng.uniform(size=n) < 0.1] = None
    df = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "tenure_days": tenure, "recency_days": recency, "purchases_total": purchases,
        "events_total": purchases * 3 + rng.poisson(5, n),
        "purchase_recency_days": purchase_recency,
        "last_channel": pd.Categorical(channel, categories=["search", "email", "app"]),
        "attr_region": rng.choice(["north", "south"], n).astype(object),
    })
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(recency / 50 - 2))).astype(np.int64)
    return df, y


@pytest.fixture(scope="module")
def model() -> LightGBMClassifier:
    x, y = frame(3000, 1)
    xv, yv = frame(1000, 2)
    cols = [c for c in x.columns if c != "customer_id"]
    return LightGBMClassifier(columns=cols, num_threads=1, max_rounds=100,
                              min_data_in_leaf=20).fit(x, y, eval_set=(xv, yv))


def records(df: pd.DataFrame) -> list[dict[str, object]]:
    out = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{str(k): v for k, v in r.items()} for r in out]


def test_record_matrix_equals_frame_matrix(model: LightGBMClassifier) -> None:
    x, _ = frame(500, 3)
    x.loc[0, "attr_region"] = "atlantis"  # unseen in training
    x.loc[1, "tenure_days"] = 0.0  # ratios floor tenure at one day
    rec = records(x)
    del rec[2]["attr_region"]  # absent altogether
    x.loc[2, "attr_region"] = None
    np.testing.assert_array_equal(model.record_matrix(rec), model.matrix(x))


def test_predictions_from_records_match(model: LightGBMClassifier) -> None:
    x, _ = frame(200, 4)
    raw = model.booster_.predict(model.record_matrix(records(x)),
                                 num_iteration=model.best_iteration_)
    np.testing.assert_allclose(raw, model.predict_raw(x), rtol=0, atol=1e-12)


def test_non_numbers_are_missing(model: LightGBMClassifier) -> None:
    row = {"tenure_days": "ten", "recency_days": True, "purchases_total": None}
    got = model.record_matrix([row])
    names = list(model.encoder_.feature_names_out_)
    for col in ("tenure_days", "recency_days", "purchases_total"):
        assert np.isnan(got[0, names.index(col)])
