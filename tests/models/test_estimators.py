"""The two model families (LogisticBaseline, LightGBMClassifier) on small synthetic frames:
a numeric signal, a pandas-category and a plain-string column, missing values, binary and
multiclass labels, unseen categories, cloning, pickling and early stopping."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from models.estimators import JourneyClassifier, LogisticBaseline
from models.lgbm import LightGBMClassifier

BINARY = ("0", "1")
STAGES = ("browse", "cart", "buy")
FAMILIES: dict[str, Callable[..., JourneyClassifier]] = {
    "baseline": lambda **kw: LogisticBaseline(**kw),
    # One thread: the machine is shared, and OpenMP spin-waiting on a busy core is slow.
    "lightgbm": lambda **kw: LightGBMClassifier(
        **{"num_threads": 1, "learning_rate": 0.1, "max_rounds": 200, "min_data_in_leaf": 20,
           **kw}
    ),
}


def make_frame(n: int, seed: int, k: int = 2) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Features and labels whose log-odds depend on x1 and the segment (x2 is noise with NaNs)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0.0, 1.0, n)
    seg = rng.choice(["A", "B", "C"], n, p=[0.4, 0.4, 0.2])
    chan = rng.choice(["web", "app", "mail"], n).astype(object)
    chan[rng.uniform(size=n) < 0.05] = None
    x2 = rng.normal(0.0, 1.0, n)
    x2[rng.uniform(size=n) < 0.3] = np.nan
    frame = pd.DataFrame({
        "customer_id": [f"c{seed}-{i}" for i in range(n)],
        "x1": x1,
        "x2": x2,
        "seg": pd.Categorical(seg, categories=["A", "B", "C"]),
        "chan": chan,
    })
    shift = np.select([seg == "A", seg == "B"], [1.0, -0.5], 0.0)
    if k == 2:
        p = 1 / (1 + np.exp(-(2.0 * x1 + shift)))
        return frame, (rng.uniform(size=n) < p).astype(np.int64)
    logits = np.column_stack([np.zeros(n), 1.5 * x1, 3.0 * x1 + shift][:k])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    return frame, np.minimum(y, k - 1).astype(np.int64)


def fit(family: str, k: int = 2, **kw: Any) -> JourneyClassifier:
    """Fit one family on the standard synthetic rows (data seeds 1 and 2)."""
    classes = BINARY if k == 2 else STAGES[:k]
    X, y = make_frame(2000, seed=1, k=k)  # noqa: N806
    X_val, y_val = make_frame(1000, seed=2, k=k)  # noqa: N806
    est: JourneyClassifier = FAMILIES[family](classes=classes, **kw)
    return est.fit(X, y, eval_set=(X_val, y_val))


@pytest.fixture(scope="module")
def fitted() -> dict[tuple[str, int], JourneyClassifier]:
    return {(f, k): fit(f, k) for f in FAMILIES for k in (2, 3)}


def assert_probabilities(proba: npt.NDArray[np.float64], n: int, k: int) -> None:
    assert proba.shape == (n, k)
    assert np.all(np.isfinite(proba))
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("k", [2, 3])
def test_fit_and_predict_proba(
    family: str, k: int, fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    est = fitted[(family, k)]
    X, y = make_frame(1500, seed=99, k=k)  # noqa: N806
    proba = est.predict_proba(X)
    assert_probabilities(proba, len(X), k)
    # The numeric signal is learned (one-vs-rest AUC of the last class, well above chance).
    assert roc_auc_score(y == k - 1, proba[:, -1]) > 0.75
    labels = est.predict(X)
    assert set(labels) <= set(est.classes_)
    np.testing.assert_array_equal(labels, est.classes_[np.argmax(proba, axis=1)])
    assert list(est.feature_names_in_) == ["x1", "x2", "seg", "chan"]  # customer_id left out
    assert est.calibrator_.method_ in ("isotonic", "sigmoid", "none")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_customer_id_and_column_order_do_not_matter(
    family: str, fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    est = fitted[(family, 2)]
    X, _ = make_frame(300, seed=98)  # noqa: N806
    shuffled = X[["chan", "seg", "x2", "x1"]].assign(extra=1.0)
    np.testing.assert_array_equal(est.predict_proba(X), est.predict_proba(shuffled))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_plain_strings_and_category_dtype_agree(
    family: str, fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    """Serving sends plain strings (and None) where training had pandas categories."""
    est = fitted[(family, 2)]
    X, _ = make_frame(300, seed=97)  # noqa: N806
    plain = X.assign(seg=X["seg"].astype(object), chan=X["chan"].astype("category"))
    np.testing.assert_allclose(est.predict_proba(X), est.predict_proba(plain), atol=1e-12)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_unseen_categories_and_missing_values(
    family: str, fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    est = fitted[(family, 3)]
    X, _ = make_frame(200, seed=96, k=3)  # noqa: N806
    odd = X.assign(
        seg=pd.Categorical(["Z"] * 100 + ["A"] * 100),  # Z never seen in training
        chan=["fax"] * 50 + [None] * 150,  # type: ignore[list-item]  # pandas-stubs refuse None
        x2=np.nan,
        x1=np.where(np.arange(200) % 10 == 0, np.nan, X["x1"]),  # never missing in training
    )
    assert_probabilities(est.predict_proba(odd), 200, 3)
    one = odd.iloc[[0]]
    assert_probabilities(est.predict_proba(one), 1, 3)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_only_strings_training_frame(family: str) -> None:
    """Plain object columns in training (no pandas category) work as well."""
    X, y = make_frame(1500, seed=11)  # noqa: N806
    X_val, y_val = make_frame(800, seed=12)  # noqa: N806
    X, X_val = (f.assign(seg=f["seg"].astype(object)) for f in (X, X_val))  # noqa: N806
    est = FAMILIES[family]().fit(X, y, eval_set=(X_val, y_val))
    assert_probabilities(est.predict_proba(X_val), len(X_val), 2)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_missing_feature_column_at_fit_names_it(family: str) -> None:
    X, y = make_frame(500, seed=13)  # noqa: N806
    est = FAMILIES[family](columns=["x1", "recency_days"])
    with pytest.raises(ValueError, match="recency_days"):
        est.fit(X, y, eval_set=(X, y))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_missing_feature_column_at_predict_names_it(
    family: str, fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    X, _ = make_frame(50, seed=14)  # noqa: N806
    with pytest.raises(ValueError, match="x1"):
        fitted[(family, 2)].predict_proba(X.drop(columns="x1"))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_explicit_columns_select_the_features(family: str) -> None:
    est = fit(family, columns=["x1", "seg"])
    assert list(est.feature_names_in_) == ["x1", "seg"]
    X, _ = make_frame(100, seed=15)  # noqa: N806
    assert_probabilities(est.predict_proba(X[["x1", "seg"]]), 100, 2)
    names = set(est.importances().index)
    assert not any(n.startswith(("x2", "chan")) for n in names)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_labels_out_of_range_raise(family: str) -> None:
    X, y = make_frame(300, seed=16)  # noqa: N806
    with pytest.raises(ValueError, match=r"class indices 0\.\.1"):
        FAMILIES[family]().fit(X, y + 1, eval_set=(X, y))
    with pytest.raises(ValueError, match=r"class indices 0\.\.1"):
        FAMILIES[family]().fit(X, y, eval_set=(X, y - 1))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_class_absent_from_training_keeps_its_column(family: str) -> None:
    """Four classes declared, the last never observed: it still has a probability column."""
    classes = ("browse", "cart", "buy", "return")
    X, y = make_frame(2000, seed=17, k=3)  # noqa: N806
    X_val, y_val = make_frame(1000, seed=18, k=3)  # noqa: N806
    est = FAMILIES[family](classes=classes).fit(X, y, eval_set=(X_val, y_val))
    proba = est.predict_proba(X_val)
    assert_probabilities(proba, len(X_val), 4)
    assert proba[:, 3].max() < 0.05  # never seen, so (nearly) never predicted
    assert list(est.classes_) == list(classes)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_clone_refits_to_identical_predictions(
    family: str, fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    est = fitted[(family, 3)]
    twin = clone(est)
    assert type(twin) is type(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "calibrator_")  # a clone is unfitted
    X, y = make_frame(2000, seed=1, k=3)  # noqa: N806 -- the rows `fit` used
    X_val, y_val = make_frame(1000, seed=2, k=3)  # noqa: N806
    twin.fit(X, y, eval_set=(X_val, y_val))
    probe, _ = make_frame(500, seed=95, k=3)
    np.testing.assert_array_equal(twin.predict_proba(probe), est.predict_proba(probe))


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("k", [2, 3])
def test_pickle_round_trip(
    family: str, k: int, fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    est = fitted[(family, k)]
    back = pickle.loads(pickle.dumps(est))
    probe, _ = make_frame(500, seed=94, k=k)
    np.testing.assert_array_equal(back.predict_proba(probe), est.predict_proba(probe))
    np.testing.assert_array_equal(back.predict(probe), est.predict(probe))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_importances(family: str, fitted: dict[tuple[str, int], JourneyClassifier]) -> None:
    imp = fitted[(family, 2)].importances()
    assert isinstance(imp, pd.Series) and len(imp) > 0
    assert np.all(np.isfinite(imp.to_numpy())) and np.all(imp.to_numpy() >= 0)
    assert list(imp) == sorted(imp, reverse=True)
    assert imp.index[0] == "x1"  # the strongest signal comes first
    if family == "baseline":
        assert "x2_missing" in imp.index  # missing-value indicator
        assert {"seg=A", "seg=B"} <= set(imp.index)  # one-hot columns
    else:
        assert set(imp.index) == {"x1", "x2", "seg", "chan"}


def test_lightgbm_early_stopping_on_noise() -> None:
    """Labels independent of the features: validation loss stops improving almost at once."""
    rng = np.random.default_rng(20)
    X, _ = make_frame(2000, seed=21)  # noqa: N806
    X_val, _ = make_frame(1000, seed=22)  # noqa: N806
    y, y_val = rng.integers(0, 2, 2000), rng.integers(0, 2, 1000)
    est = LightGBMClassifier(max_rounds=500, early_stopping_rounds=20, learning_rate=0.1,
                             num_threads=1)
    est.fit(X, y, eval_set=(X_val, y_val))
    assert est.best_iteration_ < 100
    assert est.booster_.current_iteration() <= est.best_iteration_ + 20 < 500
    assert np.isfinite(est.valid_log_loss_)
    proba = est.predict_proba(X_val)
    assert abs(roc_auc_score(y_val, proba[:, 1]) - 0.5) < 0.1


def test_lightgbm_keeps_going_on_signal(
    fitted: dict[tuple[str, int], JourneyClassifier]
) -> None:
    est = fitted[("lightgbm", 2)]
    assert isinstance(est, LightGBMClassifier)
    assert 5 < est.best_iteration_ < 200
    # valid_log_loss_ is the booster's best raw validation loss, below the base-rate loss.
    assert est.valid_log_loss_ < 0.6


def test_same_seed_same_model_other_seed_other_bagging() -> None:
    a = fit("lightgbm", bagging_fraction=0.7, feature_fraction=0.7, seed=0)
    b = fit("lightgbm", bagging_fraction=0.7, feature_fraction=0.7, seed=0)
    c = fit("lightgbm", bagging_fraction=0.7, feature_fraction=0.7, seed=5)
    probe, _ = make_frame(300, seed=93)
    np.testing.assert_array_equal(a.predict_proba(probe), b.predict_proba(probe))
    assert not np.array_equal(a.predict_proba(probe), c.predict_proba(probe))
