"""The compiled forest gives LightGBM's own leaves and probabilities, row for row, on data with
NaNs, exact zeros, negative, unseen and huge categories, for binary and multiclass models, and
in ``LightGBMClassifier`` its batch probabilities equal ``predict_proba``."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pytest

from models.forest import BLOCK, Forest
from models.paths import PathTables, from_raw, probabilities


def data(n: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 1] = np.where(rng.random(n) < 0.3, 0.0, x[:, 1])  # exact zeros
    x[rng.random(n) < 0.15, 2] = np.nan  # missing values
    x[:, 3] = rng.integers(0, 40, n)  # a categorical with many levels (a multi-word bitset)
    x[rng.random(n) < 0.1, 3] = np.nan
    x[:, 4] = rng.integers(0, 5, n)  # a small categorical
    score = x[:, 0] + np.nan_to_num(x[:, 2]) + (x[:, 3] % 7 == 0) - 0.5 * (x[:, 4] == 2)
    y = (score > 0.3).astype(np.int64) + (score > 1.2)
    return x, y


def hostile(n: int) -> npt.NDArray[np.float32]:
    x, _ = data(n, 99)
    x[:5, 3] = [-1, 45, 1e6, 0, 39]  # negative, unseen, huge and edge categories
    x[5:10, 0] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    return x


@pytest.mark.parametrize(("classes", "missing"), [(2, True), (3, True), (2, False)])
def test_leaves_and_probabilities_equal_lightgbm(classes: int, missing: bool) -> None:
    x, y = data(4000, classes)
    params = {"objective": "binary" if classes == 2 else "multiclass", "verbosity": -1,
              "num_leaves": 15, "min_data_in_leaf": 5, "use_missing": missing,
              "zero_as_missing": not missing, "cat_smooth": 1, "max_cat_to_onehot": 2,
              "num_threads": 1, **({} if classes == 2 else {"num_class": classes})}
    booster = lgb.train(params, lgb.Dataset(x, np.minimum(y, classes - 1),
                                            categorical_feature=[3, 4]), num_boost_round=30)
    test = hostile(2 * BLOCK + 77)  # several blocks and a partial one
    it = booster.current_iteration()
    forest, tables = Forest.of(booster, it), PathTables.of(booster, it)
    leaf = booster.predict(test, num_iteration=it, pred_leaf=True)
    want = np.asarray(leaf).reshape(len(test), -1)
    got = forest.leaves(test)
    assert np.array_equal(got, want)
    expected = booster.predict(test, num_iteration=it)
    np.testing.assert_array_equal(from_raw(tables, forest.raw(test, tables)), expected)
    np.testing.assert_array_equal(probabilities(tables, got), expected)


def test_a_best_iteration_short_of_the_trees_routes_only_those() -> None:
    x, y = data(2000, 5)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(x, np.minimum(y, 1)), num_boost_round=20)
    got = Forest.of(booster, 7).leaves(x)
    assert got.shape == (2000, 7)
    assert np.array_equal(got, booster.predict(x, num_iteration=7, pred_leaf=True))


def test_wrong_width_is_refused() -> None:
    x, y = data(500, 1)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(x, np.minimum(y, 1)), num_boost_round=3)
    with pytest.raises(ValueError, match="rows of 6 features"):
        Forest.of(booster, 3).leaves(x[:, :4])


def test_one_block_runs_on_one_thread_and_the_count_comes_back() -> None:
    """A served request's block runs on the calling thread alone; the thread's numba count is
    restored after, whichever way it is read."""
    import numba

    from models.forest import _thread_count, _threads

    before = numba.get_num_threads()
    with _threads(1):
        assert numba.get_num_threads() == 1
        assert _thread_count()[0]() == 1
    assert numba.get_num_threads() == before
    x, y = data(50, 2)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1},
                        lgb.Dataset(x, np.minimum(y, 1)), num_boost_round=3)
    Forest.of(booster, 3).leaves(x[:1])
    assert numba.get_num_threads() == before
