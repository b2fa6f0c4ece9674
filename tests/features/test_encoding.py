"""CategoricalEncoder: codes for LightGBM, one-hot for a linear baseline, learned on training."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from features.encoding import UNSEEN, CategoricalEncoder


@pytest.fixture
def train() -> pd.DataFrame:
    return pd.DataFrame({
        "recency_days": [1.0, 2.0, np.nan, 4.0],
        "last_channel": ["email", "email", "search", None],
        "attr_region": ["east", "west", "east", "east"],
        "events_total": [3, 1, 0, 7],
    })


@pytest.fixture
def test() -> pd.DataFrame:
    return pd.DataFrame({
        "recency_days": [5.0, 6.0, 7.0, 8.0],
        "last_channel": ["email", "tiktok", None, "search"],  # unseen and missing
        "attr_region": ["west", "north", "east", None],
        "events_total": [1, 2, 3, 4],
    }, index=[10, 11, 12, 13])


def rows(frame: pd.DataFrame) -> list[list[float | None]]:
    """Values with NaN as None (comparable with ==)."""
    return [[None if isinstance(x, float) and math.isnan(x) else x for x in r]
            for r in frame.to_numpy().tolist()]


def test_codes(train: pd.DataFrame, test: pd.DataFrame) -> None:
    enc = CategoricalEncoder().fit(train)
    assert enc.categorical_ == ["last_channel", "attr_region"]
    assert enc.numeric_ == ["recency_days", "events_total"]
    assert enc.categories_ == {"last_channel": ["email", "search"],
                               "attr_region": ["east", "west"]}
    names = ["recency_days", "events_total", "last_channel", "attr_region"]
    assert list(enc.get_feature_names_out()) == names
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unseen values must not hit pandas' deprecation
        out = enc.transform(test)
    assert list(out.columns) == names
    assert list(out.index) == [10, 11, 12, 13]
    assert (out.dtypes == np.float64).all()
    assert rows(out) == [[5.0, 1.0, 0.0, 1.0],
                         [6.0, 2.0, None, None],  # unseen -> NaN
                         [7.0, 3.0, None, 0.0],  # missing -> NaN
                         [8.0, 4.0, 1.0, None]]
    assert rows(enc.transform(train)) == [[1.0, 3.0, 0.0, 0.0], [2.0, 1.0, 0.0, 1.0],
                                          [None, 0.0, 1.0, 0.0], [4.0, 7.0, None, 0.0]]


def test_onehot(train: pd.DataFrame, test: pd.DataFrame) -> None:
    enc = CategoricalEncoder("onehot").fit(train)
    names = ["recency_days", "events_total",
             "last_channel=email", "last_channel=search", f"last_channel={UNSEEN}",
             "attr_region=east", "attr_region=west", f"attr_region={UNSEEN}"]
    assert list(enc.get_feature_names_out()) == names
    out = enc.transform(test)
    assert list(out.columns) == names
    assert rows(out) == [[5.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                         [6.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
                         [7.0, 3.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
                         [8.0, 4.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]]


def test_onehot_min_count(train: pd.DataFrame, test: pd.DataFrame) -> None:
    enc = CategoricalEncoder("onehot", min_count=2).fit(train)
    # search (1) and west (1) are too rare: they go to the rest
    assert enc.categories_ == {"last_channel": ["email"], "attr_region": ["east"]}
    assert list(enc.get_feature_names_out()) == [
        "recency_days", "events_total", "last_channel=email", f"last_channel={UNSEEN}",
        "attr_region=east", f"attr_region={UNSEEN}"]
    assert rows(enc.transform(test)) == [[5.0, 1.0, 1.0, 0.0, 0.0, 1.0],
                                         [6.0, 2.0, 0.0, 1.0, 0.0, 1.0],
                                         [7.0, 3.0, 0.0, 1.0, 1.0, 0.0],
                                         [8.0, 4.0, 0.0, 1.0, 0.0, 1.0]]
    codes = CategoricalEncoder("codes", min_count=3).fit(train)
    assert codes.categories_ == {"last_channel": [], "attr_region": ["east"]}
    assert rows(codes.transform(test))[2] == [7.0, 3.0, None, 0.0]


def test_from_an_arrow_snapshot_with_an_all_null_column() -> None:
    """Snapshots come as Arrow tables; an attribute may be missing for everyone."""
    frame = pa.table({"x": [1.0, 2.0], "attr_device": pa.array([None, None], pa.string()),
                      "last_event_type": ["purchase", "page_view"]}).to_pandas()
    for mode in ("codes", "onehot"):
        enc = CategoricalEncoder(mode).fit(frame)
        assert enc.categorical_ == ["attr_device", "last_event_type"]
        out = enc.transform(frame)
        assert len(out) == 2
    assert rows(CategoricalEncoder().fit(frame).transform(frame)) == [[1.0, None, 1.0],
                                                                     [2.0, None, 0.0]]


def test_errors(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="mode must be"):
        CategoricalEncoder("ordinal").fit(train)  # type: ignore[arg-type]
    enc = CategoricalEncoder().fit(train)
    with pytest.raises(ValueError, match=r"columns missing from the input: \['attr_region'\]"):
        enc.transform(train.drop(columns=["attr_region"]))


def test_in_a_pipeline_with_logistic_regression(train: pd.DataFrame,
                                                test: pd.DataFrame) -> None:
    big = pd.concat([train.fillna({"recency_days": 3.0})] * 10, ignore_index=True)
    y = np.array([1, 0, 1, 0] * 10)
    pipe = Pipeline([("enc", CategoricalEncoder("onehot")),
                     ("lr", LogisticRegression(max_iter=1000))])
    pipe.fit(big, y)
    proba = pipe.predict_proba(test)
    assert proba.shape == (4, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert pipe.named_steps["lr"].coef_.shape == (1, 8)
    assert list(pipe[:-1].get_feature_names_out()) == list(
        pipe.named_steps["enc"].get_feature_names_out())
    # a clone (as in model selection) is unfitted and refits to the same thing
    other = clone(pipe).fit(big, y)
    assert np.allclose(other.predict_proba(test), proba)
    assert clone(CategoricalEncoder("onehot", min_count=3)).get_params() == {
        "mode": "onehot", "min_count": 3}
