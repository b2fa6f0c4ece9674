"""Decision-path contributions: exact additivity against LightGBM's own raw scores (binary and
multiclass, with missing values and categorical splits), and agreement on the strongest feature
with TreeSHAP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.lgbm import LightGBMClassifier
from models.paths import PathTables, path_contributions, top_credits
from models.reasons import contributions


def frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 60, n)
    recency[rng.uniform(size=n) < 0.1] = np.nan  # missing values take LightGBM's default side
    chan = rng.choice(["search", "email", "app", "store"], n).astype(object)
    X = pd.DataFrame({  # noqa: N806
        "customer_id": [f"c{i}" for i in range(n)],
        "recency_days": recency,
        "purchases_90d": rng.poisson(1.0, n).astype(float),
        "tenure_days": rng.uniform(1, 400, n),
        "last_channel": chan,
    })
    logit = 0.15 * (np.nan_to_num(recency, nan=45.0) - 30) + np.where(chan == "email", 1.5, 0.0)
    y = np.digitize(logit + rng.normal(0, 1, n), [-1.0, 1.0])
    return X, y


def fitted(k: int) -> LightGBMClassifier:
    X, y = frame(3000, seed=1)  # noqa: N806
    if k == 2:
        y = (y == 2).astype(np.int64)
    Xv, yv = frame(1000, seed=2)  # noqa: N806
    if k == 2:
        yv = (yv == 2).astype(np.int64)
    classes = ("0", "1") if k == 2 else ("a", "b", "c")
    model = LightGBMClassifier(classes=classes, min_data_in_leaf=20, num_threads=1, seed=0)
    return model.fit(X, y, eval_set=(Xv, yv))


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "multiclass"])
def model(request: pytest.FixtureRequest) -> LightGBMClassifier:
    return fitted(request.param)


def test_credits_add_up_to_the_raw_score(model: LightGBMClassifier) -> None:
    X, _ = frame(400, seed=3)  # noqa: N806
    matrix = model.matrix(X)
    raw = model.booster_.predict(matrix, num_iteration=model.best_iteration_, raw_score=True)
    assert isinstance(raw, np.ndarray)
    tables = model.path_tables()
    if model.multiclass:
        for c in range(3):
            got = path_contributions(model.booster_, tables, matrix, np.full(400, c))
            np.testing.assert_allclose(got.sum(axis=1), raw[:, c], atol=1e-9)
    else:
        got = path_contributions(model.booster_, tables, matrix)
        np.testing.assert_allclose(got.sum(axis=1), raw, atol=1e-9)
    assert got.shape == (400, model.booster_.num_feature() + 1)
    # the bias is the same for every row: the sum of the roots of the explained class's trees
    assert np.ptp(got[:, -1]) == pytest.approx(0.0, abs=1e-12)


def test_strongest_feature_agrees_with_treeshap(model: LightGBMClassifier) -> None:
    X, _ = frame(300, seed=4)  # noqa: N806
    matrix = model.matrix(X)
    chosen = np.argmax(model.proba_matrix(matrix), axis=1) if model.multiclass else None
    path = path_contributions(model.booster_, model.path_tables(), matrix, chosen)[:, :-1]
    shap = contributions(model, X, matrix)
    if model.multiclass:
        shap = shap[np.arange(300), chosen]
    agree = np.argmax(np.abs(path), axis=1) == np.argmax(np.abs(shap[:, :-1]), axis=1)
    assert agree.mean() > 0.8


def test_tables_are_built_once_and_empty_input_is_fine(model: LightGBMClassifier) -> None:
    assert model.path_tables() is model.path_tables()
    tables = model.path_tables()
    assert isinstance(tables, PathTables)
    assert tables.n_trees == model.best_iteration_ * (3 if model.multiclass else 1)
    empty = path_contributions(model.booster_, tables, np.zeros((0, tables.n_features), np.float32))
    assert empty.shape == (0, tables.n_features + 1)


def test_proba_matrix_is_predict_proba(model: LightGBMClassifier) -> None:
    X, _ = frame(200, seed=5)  # noqa: N806
    np.testing.assert_allclose(model.proba_matrix(model.matrix(X)), model.predict_proba(X))


def test_top_credits_are_the_largest_path_credits(model: LightGBMClassifier) -> None:
    """The compiled top-k pass picks what sorting the full credit matrix would pick."""
    X, _ = frame(300, seed=6)  # noqa: N806
    matrix = model.matrix(X)
    leaves = model.leaves(matrix)
    chosen = np.argmax(model.proba_from_leaves(leaves), axis=1) if model.multiclass else None
    full = path_contributions(model.booster_, model.path_tables(), matrix, chosen, leaves)[:, :-1]
    idx, val = top_credits(model.path_tables(), leaves, 3, chosen)
    for i in range(300):
        nonzero = np.flatnonzero(full[i])
        expect = sorted(nonzero, key=lambda j: (-abs(full[i, j]), j))[:3]
        got = [j for j in idx[i] if j >= 0]
        assert got == expect
        np.testing.assert_allclose(val[i, : len(got)], full[i, got], atol=1e-12)
    flipped = top_credits(model.path_tables(), leaves, 3, chosen, sign=-1.0)
    np.testing.assert_array_equal(flipped[0], idx)
    np.testing.assert_allclose(flipped[1], -val)
