"""Uplift learners on synthetic logs with known, heterogeneous effects: three customer groups
visible through a feature; action 0 helps group A (+0.10) and hurts group B (-0.05), action 1
helps only group C (+0.10); each action goes to ~10 % of rows, more often when x1 is high
(which also raises the base rate, so a naive treated-vs-control comparison is confounded)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from models.uplift import PropensityModel, TLearner, XLearner

Floats = npt.NDArray[np.float64]
EFFECTS = np.array([[0.10, 0.0], [-0.05, 0.0], [0.0, 0.10]])  # group x action


class Small(TypedDict):
    """Keyword arguments shared by the learners and the propensity model."""

    learning_rate: float
    num_leaves: int
    min_data_in_leaf: int
    max_rounds: int
    early_stopping_rounds: int
    num_threads: int
    seed: int


SMALL: Small = {
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 50,
    "max_rounds": 200,
    "early_stopping_rounds": 20,
    "num_threads": 1,
    "seed": 0,
}
CATEGORICAL = (3,)


@dataclass
class Logs:
    X: npt.NDArray[np.float32]
    action: npt.NDArray[np.int64]
    y: Floats
    propensity: Floats  # (n, K + 1), column 0 = no action
    group: npt.NDArray[np.int64]
    effect: Floats  # (n, K) true uplift

    def eval_set(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], Floats, Floats]:
        return self.X, self.action, self.y, self.propensity


def make_logs(n: int, seed: int, k: int = 2) -> Logs:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    x0 = group + rng.normal(0.0, 0.2, n)  # the groups, slightly blurred
    x1 = rng.normal(size=n)  # base rate and targeting
    x2 = rng.normal(size=n)  # noise, partly missing
    x2[rng.uniform(size=n) < 0.2] = np.nan
    code = rng.integers(0, 4, n).astype(np.float64)  # a categorical column
    X = np.column_stack([x0, x1, x2, code]).astype(np.float32)  # noqa: N806
    effect = np.zeros((n, k))
    effect[:, :2] = EFFECTS[group]
    share = 0.1 * (1 + 0.6 * np.tanh(x1))  # per action
    propensity = np.column_stack([1 - k * share, *[share] * k])
    arm = (rng.uniform(size=(n, 1)) > propensity.cumsum(axis=1)).sum(axis=1)
    base = 1 / (1 + np.exp(-(-1.2 + 0.5 * x1 + 0.3 * (code == 1))))
    lift = np.where(arm > 0, effect[np.arange(n), np.maximum(arm - 1, 0)], 0.0)
    y = (rng.uniform(size=n) < np.clip(base + lift, 0, 1)).astype(np.float64)
    return Logs(X, arm - 1, y, propensity, group, effect)


@pytest.fixture(scope="module")
def data() -> tuple[Logs, Logs, Logs]:
    return make_logs(40_000, 1), make_logs(30_000, 2), make_logs(6_000, 3)


@pytest.fixture(scope="module")
def fitted(data: tuple[Logs, Logs, Logs]) -> dict[str, TLearner]:
    train, valid, _ = data
    out: dict[str, TLearner] = {}
    for name, cls in (("t", TLearner), ("x", XLearner)):
        out[name] = cls(**SMALL).fit(
            train.X,
            train.action,
            train.y,
            train.propensity,
            eval_set=valid.eval_set(),
            categorical=CATEGORICAL,
        )
    return out


@pytest.mark.parametrize("name", ["t", "x"])
def test_sign_of_each_effect_per_group(
    fitted: dict[str, TLearner],
    data: tuple[Logs, Logs, Logs],
    name: str,
) -> None:
    test = data[2]
    uplift = fitted[name].predict(test.X)
    assert uplift.shape == (len(test.y), 2) and uplift.dtype == np.float64
    means = np.array([uplift[test.group == g].mean(axis=0) for g in range(3)])
    # ~1,300 treated rows per group and action, and early stopping on a noisy eval set: group
    # means are shrunk toward the action's average, so the bounds check signs and order.
    for g in range(3):
        for a in range(2):
            if EFFECTS[g, a] > 0:
                assert means[g, a] > 0.03, (g, a, means)
            elif EFFECTS[g, a] < 0:
                assert means[g, a] < 0, (g, a, means)
            else:
                assert abs(means[g, a]) < 0.06, (g, a, means)
    assert means[0, 0] > means[2, 0] > means[1, 0], means
    assert means[2, 1] > max(means[0, 1], means[1, 1]) + 0.03, means
    for a in range(2):
        rho = spearmanr(uplift[:, a], test.effect[:, a]).statistic
        assert rho > 0.3, (a, rho)


def test_arms_are_rates_and_uplift_their_difference(
    fitted: dict[str, TLearner], data: tuple[Logs, Logs, Logs]
) -> None:
    X = data[2].X[:500]  # noqa: N806
    for model in fitted.values():
        mu = model.predict_arms(X)
        assert mu.shape == (500, 3) and ((mu > 0) & (mu < 1)).all()
    t = fitted["t"]
    np.testing.assert_array_equal(t.predict(X), t.predict_arms(X)[:, 1:] - t.predict_arms(X)[:, :1])
    # The control rate the arbitration values a discount against, with the same uplift.
    for model in fitted.values():
        control, uplift = model.predict_with_control(X)
        np.testing.assert_array_equal(control, model.predict_arms(X)[:, 0])
        np.testing.assert_array_equal(uplift, model.predict(X))


@pytest.mark.parametrize("name", ["t", "x"])
def test_one_row_equals_batch(
    fitted: dict[str, TLearner], data: tuple[Logs, Logs, Logs], name: str
) -> None:
    model, X = fitted[name], data[2].X[:50]  # noqa: N806
    batch, arms = model.predict(X), model.predict_arms(X)
    for i in range(0, 50, 7):
        np.testing.assert_array_equal(model.predict(X[i : i + 1])[0], batch[i])
        np.testing.assert_array_equal(model.predict_arms(X[i : i + 1])[0], arms[i])
    np.testing.assert_array_equal(model.predict(X[:5]), batch[:5])  # a few rows: one by one


@pytest.mark.parametrize("name", ["t", "x"])
def test_only_the_wanted_pairs_are_estimated(
    fitted: dict[str, TLearner], data: tuple[Logs, Logs, Logs], name: str
) -> None:
    """A scoring run asks for the actions open to each customer: those are the full answer's
    values to the bit (whatever else is asked with them), the others 0."""
    model, X = fitted[name], data[2].X[:3000]  # noqa: N806
    control, full = model.predict_with_control(X)
    rng = np.random.default_rng(3)
    for share in (0.0, 0.001, 0.3, 1.0):  # none, a few rows (one by one), many, all
        wanted = rng.uniform(size=full.shape) < share
        got_control, got = model.predict_with_control(X, wanted=wanted)
        np.testing.assert_array_equal(got_control, control)
        np.testing.assert_array_equal(got, np.where(wanted, full, 0.0))
    if name == "t":  # the other arms' rates stay the control's where not wanted
        wanted = np.zeros(full.shape, bool)
        wanted[:10, 0] = True
        arms = model.predict_arms(X, wanted=wanted)
        np.testing.assert_array_equal(arms[:10, 1], model.predict_arms(X[:10])[:, 1])
        np.testing.assert_array_equal(arms[10:, 1], arms[10:, 0])


@pytest.mark.parametrize("name", ["t", "x"])
def test_pickle_round_trips_exactly(
    fitted: dict[str, TLearner], data: tuple[Logs, Logs, Logs], name: str
) -> None:
    model, X = fitted[name], data[2].X[:300]  # noqa: N806
    model.predict(X[:1])  # builds the one-row predictors (C handles): must not be pickled
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict(X), model.predict(X))
    np.testing.assert_array_equal(copy.predict(X[:1]), model.predict(X[:1]))
    assert clone(model).get_params() == model.get_params()


def test_x_learner_takes_known_propensities(
    fitted: dict[str, TLearner], data: tuple[Logs, Logs, Logs]
) -> None:
    model, test = fitted["x"], data[2]
    assert isinstance(model, XLearner)
    known = model.predict(test.X, propensity=test.propensity)
    # g is small everywhere here, so the known and the fitted propensities nearly agree.
    assert np.abs(known - model.predict(test.X)).max() < 0.02


def test_propensity_model(data: tuple[Logs, Logs, Logs]) -> None:
    train, valid, test = data
    model = PropensityModel(**SMALL, clip=0.01).fit(
        train.X, train.action, eval_set=valid.eval_set()
    )
    p = model.predict_proba(test.X)
    assert p.shape == (len(test.y), 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p.min() >= 0.01 / (1 + 3 * 0.01)
    assert np.corrcoef(p[:, 1], test.propensity[:, 1])[0, 1] > 0.7
    np.testing.assert_array_equal(model.predict_proba(test.X[:1])[0], p[0])


@pytest.mark.parametrize("cls", [TLearner, XLearner])
def test_small_arms_are_skipped(cls: type[TLearner], data: tuple[Logs, Logs, Logs]) -> None:
    train = data[0]
    action = train.action.copy()
    action[np.flatnonzero(action == -1)[:30]] = 2  # action 2: 30 rows
    y = train.y.copy()
    y[action == 0] = 0.0
    y[np.flatnonzero(action == 0)[:3]] = 1.0  # action 0: 3 positives
    model = cls(**SMALL, n_actions=4).fit(train.X, action, y)  # action 3: never logged
    assert set(model.skipped_) == {0, 2, 3}
    assert "3 positive" in model.skipped_[0] and "30 rows" in model.skipped_[2]
    assert "0 rows" in model.skipped_[3]
    uplift = model.predict(train.X[:100])
    assert uplift.shape == (100, 4)
    assert (uplift[:, [0, 2, 3]] == 0).all() and (uplift[:, 1] != 0).any()
    mu = model.predict_arms(train.X[:100])
    np.testing.assert_array_equal(mu[:, 3], mu[:, 0])


def test_no_control_is_an_error(data: tuple[Logs, Logs, Logs]) -> None:
    train = data[0]
    with pytest.raises(ValueError, match="control"):
        TLearner(**SMALL).fit(train.X[:200], np.zeros(200, np.int64), train.y[:200])


def test_without_eval_set_is_deterministic(data: tuple[Logs, Logs, Logs]) -> None:
    train = make_logs(5_000, 4)
    fits = [TLearner(**SMALL).fit(train.X, train.action, train.y) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].predict(train.X), fits[1].predict(train.X))


def test_digest_is_equal_exactly_for_the_same_trees(
    fitted: dict[str, TLearner], data: tuple[Logs, Logs, Logs]
) -> None:
    model = fitted["x"]
    assert isinstance(model, XLearner)
    own = model.propensity_model_
    assert pickle.loads(pickle.dumps(own)).digest() == own.digest()
    train, valid, _ = data
    again = PropensityModel(**SMALL).set_params(n_actions=model.n_actions_).fit(
        train.X, train.action, eval_set=valid.eval_set(), categorical=CATEGORICAL)
    assert again.digest() == own.digest()  # the same rows, parameters and seed
    assert again.set_params(clip=0.01).digest() != own.digest()  # predicts otherwise
    assert fitted["t"].digest() != model.digest()
