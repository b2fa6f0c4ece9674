"""Random hyperparameter search: sampling the space, the first trial on the base parameters,
picking the lowest validation loss, stopping before a trial would overrun the budget, and
saying which of max_trials or the budget ended it (a budget stop is not reproducible)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.lgbm import LightGBMClassifier
from training.experiment import Range, Search
from training.search import random_search, sample


@dataclass
class FakeModel:
    params: dict[str, Any]
    valid_log_loss_: float
    best_iteration_: int


class Clock:
    """A perf_counter stand-in: every fit takes ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(1.0)
    monkeypatch.setattr("training.search.time.perf_counter", c)
    return c


def fake_fit(clock: Clock, losses: list[float]) -> tuple[Any, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def fit(params: dict[str, Any]) -> FakeModel:
        clock.now += clock.step
        seen.append(params)
        return FakeModel(params, losses[len(seen) - 1], 10 * len(seen))

    return fit, seen


SPACE: dict[str, Range | list[Any]] = {
    "learning_rate": Range(low=0.01, high=0.3, log=True),
    "num_leaves": Range(low=8, high=64, integer=True),
    "feature_fraction": Range(low=0.5, high=1.0),
    "min_data_in_leaf": [20, 50, 100],
}


def test_sample_stays_in_the_space() -> None:
    rng = np.random.default_rng(0)
    draws = [sample(SPACE, rng) for _ in range(200)]
    for d in draws:
        assert 0.01 <= d["learning_rate"] <= 0.3 and isinstance(d["learning_rate"], float)
        assert 8 <= d["num_leaves"] <= 64 and isinstance(d["num_leaves"], int)
        assert 0.5 <= d["feature_fraction"] <= 1.0
        assert d["min_data_in_leaf"] in (20, 50, 100)
    assert {d["min_data_in_leaf"] for d in draws} == {20, 50, 100}
    # Log scale: about as many draws below the geometric midpoint as above it.
    below = np.mean([d["learning_rate"] < np.sqrt(0.01 * 0.3) for d in draws])
    assert 0.35 < below < 0.65
    assert sample(SPACE, np.random.default_rng(0)) == draws[0]  # deterministic per seed


def test_first_trial_uses_the_base_params(clock: Clock) -> None:
    fit, seen = fake_fit(clock, [0.5, 0.4, 0.6])
    found = random_search(fit, Search(budget_seconds=100, max_trials=3, space=SPACE),
                          {"learning_rate": 0.1, "max_rounds": 300}, seed=1)
    best, trials = found.best, found.trials
    assert len(trials) == 3
    assert seen[0] == {"learning_rate": 0.1, "max_rounds": 300}
    for params in seen[1:]:
        assert params["max_rounds"] == 300  # base keys not in the space are kept
        assert set(SPACE) <= set(params)
        assert params["learning_rate"] != 0.1  # space keys override the base
    assert best.params == seen[1]  # the lowest validation loss wins
    assert [t.valid_log_loss for t in trials] == [0.5, 0.4, 0.6]
    assert [t.rounds for t in trials] == [10, 20, 30]
    assert all(t.seconds == pytest.approx(1.0) for t in trials)


def test_same_seed_same_trials(clock: Clock) -> None:
    fit_a, seen_a = fake_fit(clock, [0.5] * 5)
    fit_b, seen_b = fake_fit(clock, [0.5] * 5)
    fit_c, seen_c = fake_fit(clock, [0.5] * 5)
    s = Search(budget_seconds=1000, max_trials=5, space=SPACE)
    random_search(fit_a, s, {}, seed=3)
    random_search(fit_b, s, {}, seed=3)
    random_search(fit_c, s, {}, seed=4)
    assert seen_a == seen_b
    assert seen_a != seen_c


def test_budget_stops_before_an_overrun(clock: Clock) -> None:
    """Fits take 1 s; with 3.5 s the fourth trial (would end at 4 s) is not started."""
    fit, _ = fake_fit(clock, [0.9, 0.8, 0.7, 0.6, 0.5])
    found = random_search(fit, Search(budget_seconds=3.5, max_trials=30, space=SPACE),
                          {}, seed=0)
    assert len(found.trials) == 3
    assert found.best.valid_log_loss_ == 0.7
    assert found.stopped_by == "budget" and found.cut_short


def test_first_trial_runs_whatever_the_budget(clock: Clock) -> None:
    clock.step = 50.0
    fit, _ = fake_fit(clock, [0.3, 0.2])
    found = random_search(fit, Search(budget_seconds=1, space=SPACE), {}, seed=0)
    assert len(found.trials) == 1 and found.best.valid_log_loss_ == 0.3


def test_ties_keep_the_earlier_trial(clock: Clock) -> None:
    fit, _ = fake_fit(clock, [0.5, 0.5, 0.5])
    found = random_search(fit, Search(budget_seconds=100, max_trials=3, space=SPACE),
                          {"num_leaves": 31}, seed=0)
    assert found.best.params == {"num_leaves": 31}


def test_default_space_fits_lightgbm() -> None:
    """Every key of the default search space is a LightGBMClassifier parameter, and a short
    real search returns the fitted model with the lowest validation loss."""
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=(n, 3))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * x[:, 0]))).astype(np.int64)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    train, valid = frame.iloc[:1000], frame.iloc[1000:]

    def fit(params: dict[str, Any]) -> LightGBMClassifier:
        est = LightGBMClassifier(num_threads=1, max_rounds=100, **params)
        return est.fit(train, y[:1000], eval_set=(valid, y[1000:]))

    found = random_search(fit, Search(budget_seconds=60, max_trials=3), {}, seed=0)
    best, trials = found.best, found.trials
    assert len(trials) == 3
    assert set(trials[1].params) == set(Search(budget_seconds=1).space)
    assert best.valid_log_loss_ == min(t.valid_log_loss for t in trials)
    assert all(0 < t.rounds <= 100 for t in trials)


def test_max_trials_ending_the_search_is_reported(clock: Clock) -> None:
    fit, _ = fake_fit(clock, [0.5, 0.4, 0.6])
    found = random_search(fit, Search(budget_seconds=100, max_trials=3, space=SPACE), {}, seed=1)
    assert found.stopped_by == "max_trials" and not found.cut_short
    assert found.warning() is None
    assert found.summary() == "search 3/3 trials"
    assert found.params() == {"search_trials": "3", "search_max_trials": "3",
                              "search_budget_seconds": "100", "search_stopped_by": "max_trials"}
    assert found.tags() == {"journey.search.trials": "3/3",
                            "journey.search.stopped_by": "max_trials",
                            "journey.search.reproducible": "true"}


def test_a_budget_cut_says_so_and_how_to_reproduce(clock: Clock) -> None:
    """The audit's case: the same spec and seed ran 7 trials once and 1 on a busier machine.
    Here a slower machine (3 s fits against 1 s) runs fewer trials under the same budget, and
    the result says the budget, not max_trials, stopped it."""
    s = Search(budget_seconds=7.5, max_trials=12, space=SPACE)
    fast = random_search(fake_fit(clock, [0.5] * 12)[0], s, {}, seed=1)
    clock.step = 3.0
    slow = random_search(fake_fit(clock, [0.5] * 12)[0], s, {}, seed=1)
    assert (len(fast.trials), len(slow.trials)) == (7, 2)
    for found in (fast, slow):
        assert found.stopped_by == "budget" and found.cut_short
        assert found.params()["search_stopped_by"] == "budget"
        assert found.tags()["journey.search.reproducible"] == "false"
    assert slow.summary() == "search 2/12 trials, stopped by the 7.5s budget"
    warning = slow.warning()
    assert warning is not None and slow.tags()["journey.search.warning"] == warning
    assert "after 2 of 12 trials" in warning and "machine's speed" in warning
    # The advice is one the spec accepts: a budget-free search.
    assert Search.model_validate({"budget_seconds": None}).budget_seconds is None
    assert warning.endswith("set search.budget_seconds: null.")


def test_a_budget_free_search_is_bounded_by_max_trials(clock: Clock) -> None:
    """A spec whose budget may be left out (None) runs max_trials, however slow the fits."""
    clock.step = 1e6
    fit, _ = fake_fit(clock, [0.5] * 4)
    free = Search(budget_seconds=None, max_trials=4, space=SPACE)
    found = random_search(fit, free, {}, seed=0)
    assert len(found.trials) == 4 and found.stopped_by == "max_trials"
    assert found.params()["search_budget_seconds"] == "none"
