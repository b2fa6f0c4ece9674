"""The request-path inputs and outputs of a LightGBM model give its offline numbers: the
encoded matrix from online vectors or dicts equals the frame's, LightGBM's one-row fast path
equals ``Booster.predict``, probabilities from leaf indices equal ``predict_proba``; the
serving caches never travel in a pickle."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from features.kernels import FeatureMatrix
from features.online import CodedAttributes, Vectors
from models.lgbm import CACHES, LightGBMClassifier


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 60, n)
    recency[rng.uniform(size=n) < 0.1] = np.nan
    tenure = recency + rng.uniform(0, 300, n)
    tenure[rng.uniform(size=n) < 0.05] = np.nan
    chan = rng.choice(["search", "email", "app"], n).astype(object)
    chan[rng.uniform(size=n) < 0.1] = None
    region = rng.choice(["north", "south", "mars"], n).astype(object)
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "recency_days": recency,
        "purchases_total": rng.poisson(2.0, n).astype(float),
        "tenure_days": tenure,
        "last_channel": chan,
        "attr_region": region,
    })


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "multiclass"])
def model(request: pytest.FixtureRequest) -> LightGBMClassifier:
    X = frame(3000, 1)  # noqa: N806
    rng = np.random.default_rng(2)
    score = np.nan_to_num(X["recency_days"].to_numpy(), nan=50) / 20 + rng.normal(0, 1, 3000)
    y = np.digitize(score, [1.0, 2.0]) if request.param == 3 else (score > 1.5).astype(int)
    Xv = frame(800, 3)  # noqa: N806
    sv = np.nan_to_num(Xv["recency_days"].to_numpy(), nan=50) / 20
    yv = np.digitize(sv, [1.0, 2.0]) if request.param == 3 else (sv > 1.5).astype(int)
    classes = ("a", "b", "c") if request.param == 3 else ("0", "1")
    m = LightGBMClassifier(classes=classes, min_data_in_leaf=20, num_threads=1)
    return m.fit(X, y, eval_set=(Xv, yv))


def as_vectors(X: pd.DataFrame) -> Vectors:  # noqa: N803
    """The frame as the online engine delivers it; ``mars`` is a region the model never saw
    in a categorical, ``last_channel`` a kernel categorical with its vocabulary."""
    vocab = ("search", "email", "app", "web")
    codes = np.array([vocab.index(c) if isinstance(c, str) else -1 for c in X["last_channel"]])
    fm = FeatureMatrix(
        customer_ids=list(X["customer_id"]),
        names=("recency_days", "purchases_total", "tenure_days"),
        values=X[["recency_days", "purchases_total", "tenure_days"]].to_numpy(np.float64),
        categorical={"last_channel": (codes, vocab)},
    )
    return Vectors(fm, [{"region": r} for r in X["attr_region"]])


def test_matrices_agree(model: LightGBMClassifier) -> None:
    X = frame(300, 5)  # noqa: N806
    expected = model.matrix(X)
    np.testing.assert_array_equal(model.vectors_matrix(as_vectors(X)), expected)
    records = [{str(k): (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in row.items()} for row in X.to_dict("records")]
    np.testing.assert_array_equal(model.record_matrix(records), expected)
    # a dict with a non-number where a number belongs takes the careful path: missing
    odd = [{**records[0], "recency_days": "12"}]
    assert math.isnan(model.record_matrix(odd)[0, 0])


def test_attributes_as_codes_encode_as_the_dicts_do(model: LightGBMClassifier) -> None:
    X = frame(300, 8)  # noqa: N806
    v = as_vectors(X)
    vocab = ["south", "mars", "north", "venus"]  # a different order, and a value never used
    codes = np.array([vocab.index(r) for r in X["attr_region"]], np.int32)
    codes[::7] = -1  # no attribute: missing, as a None in the dicts
    dicts = [{"region": vocab[c] if c >= 0 else None} for c in codes]
    coded = Vectors(v.matrix, CodedAttributes({"region": (codes, vocab)}, len(codes)), None,
                    {"region": (codes, vocab)})
    assert list(coded.attributes) == dicts  # the lazy dicts read the codes
    np.testing.assert_array_equal(model.vectors_matrix(coded),
                                  model.vectors_matrix(Vectors(v.matrix, dicts)))


def test_vectors_without_a_model_column_read_as_missing(model: LightGBMClassifier) -> None:
    X = frame(20, 6)  # noqa: N806
    v = as_vectors(X)
    fm = v.matrix
    names = list(fm.names)
    drop = names.index("tenure_days")
    thin = Vectors(FeatureMatrix(fm.customer_ids, tuple(n for n in names if n != "tenure_days"),
                                 np.delete(fm.values, drop, axis=1), fm.categorical),
                   v.attributes)
    expected = model.matrix(X.assign(tenure_days=np.nan))
    np.testing.assert_array_equal(model.vectors_matrix(thin), expected)


def test_fast_paths_give_lightgbms_numbers(model: LightGBMClassifier) -> None:
    X = frame(200, 7)  # noqa: N806
    matrix = model.matrix(X)
    booster = model.booster_
    it = model.best_iteration_
    for row in matrix[:25]:
        fast = model.single_row()
        np.testing.assert_array_equal(fast.predict(row), np.atleast_1d(
            booster.predict(row[None], num_iteration=it))[0] if model.multiclass
            else booster.predict(row[None], num_iteration=it))
        np.testing.assert_array_equal(fast.leaves(row),
                                      booster.predict(row[None], num_iteration=it,
                                                      pred_leaf=True)[0])
    leaves = model.leaves(matrix)
    np.testing.assert_allclose(model.proba_from_leaves(leaves), model.predict_proba(X),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.proba_matrix(matrix[:1]), model.predict_proba(X.iloc[:1]),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.proba_batch(matrix), model.predict_proba(X),
                               rtol=0, atol=1e-12)
    booster_leaves = booster.predict(matrix, num_iteration=it, pred_leaf=True)
    assert isinstance(booster_leaves, np.ndarray)
    assert np.array_equal(leaves, booster_leaves.reshape(len(matrix), -1))
    with pytest.raises(ValueError, match="float32 row"):
        model.single_row().predict(matrix[0].astype(np.float64))


def test_caches_are_not_pickled(model: LightGBMClassifier) -> None:
    X = frame(10, 8)  # noqa: N806
    model.vectors_matrix(as_vectors(X))
    model.leaves(model.matrix(X)[:1])
    model.single_row()  # whatever the earlier tests built
    model.path_tables()
    model.proba_batch(model.matrix(X))
    missing = {"single_row_", "path_tables_", "vector_plans_", "forest_"} - set(model.__dict__)
    assert not missing
    copy = pickle.loads(pickle.dumps(model))
    assert not set(CACHES) & set(copy.__dict__)
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))
    one = model.matrix(X)[:1]
    np.testing.assert_array_equal(copy.leaves(one), model.leaves(one))


def test_one_row_leaves_and_reasons_are_the_batch_rows(model: LightGBMClassifier) -> None:
    """A served request scores one row (one compiled thread, the scalar reason values): the
    same leaves as LightGBM and the same reasons as that row in a batch."""
    from models.reasons import top_reasons

    X = frame(40, 11)  # noqa: N806
    v = as_vectors(X)
    matrix = model.vectors_matrix(v)
    batch = top_reasons(model, v, ("s0", "s1", "s2"), 4, None, matrix)
    expected_leaves = model.booster_.predict(matrix, pred_leaf=True,
                                             num_iteration=model.best_iteration_)
    for i in range(len(X)):
        one = as_vectors(X.iloc[[i]])
        row = model.vectors_matrix(one)
        np.testing.assert_array_equal(model.leaves(row)[0], expected_leaves[i])
        assert top_reasons(model, one, ("s0", "s1", "s2"), 4, None, row) == [batch[i]]


def test_vectors_are_encoded_once_per_input_signature(model: LightGBMClassifier) -> None:
    """The models trained on the same features (the three champions; the uplift models) read
    one matrix per batch: a scoring run built it once per model (~0.6 s per 100k customers)."""
    X = frame(50, 9)  # noqa: N806
    v = as_vectors(X)
    first = model.vectors_matrix(v)
    assert model.vectors_matrix(v) is first
    assert list(v.encoded) == [model.input_signature()]
    other = as_vectors(X)
    again = model.vectors_matrix(other)
    assert again is not first
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(first, model.matrix(X))
