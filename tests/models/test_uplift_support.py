"""Where an uplift model's estimates can be checked against the log (models.uplift_support): the
floors a model learns under the logging policy's probability of each action, and what they
leave out on a log whose logging policy never sent one action to half the customers."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.uplift_model import JourneyUplift, SharedPropensities
from models.uplift_support import (
    SUPPORT_FLOOR,
    off_support,
    population_propensities,
    support_floors,
    within_support,
)

RATE = 0.2  # uncontacted customer-days kept as controls
ACTIONS = ("email", "sms")


def decision_log(n: int, seed: int) -> pd.DataFrame:
    """Customer-days as ``features.decisions`` keeps them: every contact, controls sampled
    at RATE. email goes to anyone (25 %); sms (15 %) only ever to customers with x < 0.5."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    sms = np.where(x < 0.5, 0.15, 0.0)
    u = rng.random(n)
    arm = np.where(u < 0.25, 1, np.where(u < 0.25 + sms, 2, 0))
    rate = 0.05 + 0.1 * x + np.where(arm == 1, 0.05, 0.0) + np.where(arm == 2, 0.08, 0.0)
    keep = (arm > 0) | (rng.random(n) < RATE)
    return pd.DataFrame({
        "x": x, "noise": rng.random(n),
        "action": np.array(["", *ACTIONS], dtype=object)[arm],
        "converted": (rng.random(n) < rate).astype(float),
    })[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def model() -> JourneyUplift:
    train, valid = decision_log(60_000, 1), decision_log(20_000, 2)
    est = JourneyUplift(learner="x", actions=ACTIONS, columns=["x", "noise"], ratios=False,
                        params={"max_rounds": 200}, num_threads=1, control_rate=RATE)
    return est.fit(train, train["action"].tolist(), train["converted"],
                   eval_set=(valid, valid["action"].tolist(), valid["converted"]))


def test_the_floors_leave_out_the_action_where_the_log_never_sent_it(
        model: JourneyUplift) -> None:
    grid = pd.DataFrame({"x": np.linspace(0.005, 0.995, 100), "noise": 0.5})
    support = model.supported(model.matrix(grid))
    assert support is not None and support.shape == (100, 2)
    low, high = grid["x"].to_numpy() < 0.45, grid["x"].to_numpy() > 0.55
    assert support[:, 0].all()  # email: sent to anyone
    assert support[low, 1].all() and not support[high, 1].any()
    # The floor is a tenth of the median probability where sms was sent (~15 % there).
    assert model.support_floor_[1] == pytest.approx(SUPPORT_FLOOR * 0.15, rel=0.25)
    assert off_support(ACTIONS, support[[0, 99]]) == [frozenset(), frozenset({"sms"})]


def test_support_is_judged_on_the_population_not_the_sampled_frame(
        model: JourneyUplift) -> None:
    """The frame kept a fifth of the uncontacted days: its propensity model says "no action"
    five times too seldom, so the floors and each customer's probabilities are rescaled."""
    train = decision_log(60_000, 1)
    sampled = model.propensities(train)
    arms = np.searchsorted(["", *ACTIONS], train["action"].to_numpy())
    np.testing.assert_allclose(model.support_floor_, support_floors(
        arms, population_propensities(sampled, RATE)))
    rows = model.matrix(train.head(500))
    np.testing.assert_array_equal(model.supported(rows), within_support(
        population_propensities(model.propensities(train.head(500)), RATE),
        model.support_floor_))
    assert population_propensities(sampled, RATE)[:, 0].mean() > 0.55 > sampled[:, 0].mean()


def test_an_x_learner_scores_the_logging_policy_once_for_support_and_uplift(
        model: JourneyUplift, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = model.matrix(decision_log(3_000, 3))
    scorer = model.learner_.propensity_model_
    calls: list[int] = []
    original = scorer.predict_proba

    def counted(m: np.ndarray) -> np.ndarray:
        calls.append(len(m))
        return np.asarray(original(m))

    monkeypatch.setattr(scorer, "predict_proba", counted)
    shared = SharedPropensities()
    model.supported(rows, shared)
    model.predict_shared(rows, shared)
    assert calls == [len(rows)]


def test_a_model_trained_before_the_floors_is_not_restricted(model: JourneyUplift) -> None:
    """A registered model pickled before it learned floors (and a control rate) loads, and
    ``supported`` says it cannot tell (serving then ranks every action, as before)."""
    state = model.__getstate__()
    del state["support_floor_"], state["control_rate"]
    old = JourneyUplift.__new__(JourneyUplift)
    old.__setstate__(state)
    again = pickle.loads(pickle.dumps(old))
    assert again.supported(again.matrix(decision_log(100, 4))) is None
    assert again.get_params()["control_rate"] == 1.0
