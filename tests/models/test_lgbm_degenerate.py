"""A booster that makes no split scores every customer alike: LightGBM stops without a word
(on the real Shapees log, `min_data_in_leaf: 100` on 92-162 training rows), so the classifier
says so, and why, for `journey train` to warn and keep it from being the challenger."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.lgbm import LightGBMClassifier


def _data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=rows) > 0).astype(np.int64)
    return pd.DataFrame(x, columns=["a", "b", "c"]), y


def _fit(rows: int, min_data_in_leaf: int, x: pd.DataFrame | None = None
         ) -> LightGBMClassifier:
    frame, y = _data(rows)
    frame = frame if x is None else x
    valid, y_valid = _data(200, seed=1)
    est = LightGBMClassifier(num_threads=1, max_rounds=50, ratios=False,
                             min_data_in_leaf=min_data_in_leaf)
    return est.fit(frame, y, eval_set=(valid, y_valid))


def test_too_few_rows_for_min_data_in_leaf_is_named() -> None:
    est = _fit(120, min_data_in_leaf=100)
    assert est.splits() == 0
    assert est.no_split() == ("the booster made no split (min_data_in_leaf 100 with 120 "
                              "training rows): every customer gets the same score")
    scores = est.predict_proba(_data(50, seed=2)[0])[:, 1]
    assert np.ptp(scores) == 0.0  # what the message claims


def test_a_booster_with_splits_is_not_flagged() -> None:
    est = _fit(120, min_data_in_leaf=10)
    assert est.splits() > 0
    assert est.no_split() is None
    assert np.ptp(est.predict_proba(_data(50, seed=2)[0])[:, 1]) > 0


def test_no_gain_with_enough_rows_is_told_apart() -> None:
    """Enough rows for a split, but nothing to split on (constant features)."""
    flat = pd.DataFrame({"a": np.ones(400), "b": np.zeros(400), "c": np.full(400, 2.0)})
    est = _fit(400, min_data_in_leaf=20, x=flat)
    assert est.splits() == 0
    message = est.no_split()
    assert message is not None
    assert "no split gained anything with 400 training rows, min_data_in_leaf 20" in message
