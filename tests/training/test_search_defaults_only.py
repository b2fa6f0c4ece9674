"""A time budget the first trial (the base params) already spends: the search stops there, so
the model is the defaults' whatever the search space says. The line and the warning say so
plainly, and a budget that suffices changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.training.test_search import SPACE, Clock, fake_fit
from training.experiment import Search
from training.search import random_search


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(30.4)
    monkeypatch.setattr("training.search.time.perf_counter", c)
    return c


def test_a_budget_spent_on_the_defaults_says_no_search_happened(clock: Clock) -> None:
    fit, seen = fake_fit(clock, [0.5] * 5)
    found = random_search(fit, Search(budget_seconds=15, max_trials=5, space=SPACE),
                          {"num_leaves": 31}, seed=0)
    assert seen == [{"num_leaves": 31}] and found.defaults_only
    assert found.summary() == ("search 1/5 trials: budget 15s spent on the default parameters "
                               "(30.4s); no search happened")
    warning = found.warning()
    assert warning is not None
    assert warning.startswith("budget 15s spent on the default parameters (30.4s); no search "
                              "happened, the model is the default parameters'")
    assert "raise search.budget_seconds to about 152" in warning  # 5 trials of 30.4 s
    assert "null" in warning and "machine's speed" in warning
    tags = found.tags()
    assert tags["journey.search.defaults_only"] == "true"
    assert tags["journey.search.trials"] == "1/5" and tags["journey.search.warning"] == warning


def test_defaults_within_the_budget_but_no_room_for_a_second_trial(clock: Clock) -> None:
    """The first trial fits in the budget, but a second as slow would not: still no search."""
    clock.step = 10.0
    fit, _ = fake_fit(clock, [0.5] * 5)
    found = random_search(fit, Search(budget_seconds=15, max_trials=5, space=SPACE), {},
                          seed=0)
    assert found.defaults_only
    assert found.summary() == ("search 1/5 trials: the default parameters took 10.0s, leaving "
                               "no room for another trial in the 15s budget; no search "
                               "happened")


def test_a_sufficient_budget_searches_as_before(clock: Clock) -> None:
    """Same trials, same best, same words as a search that max_trials alone ends."""
    clock.step = 1.0
    runs: list[Any] = []
    for budget in (100.0, None):
        fit, seen = fake_fit(clock, [0.5, 0.3, 0.4])
        runs.append((random_search(fit, Search(budget_seconds=budget, max_trials=3,
                                               space=SPACE), {}, seed=2), seen))
    (bounded, seen_a), (free, seen_b) = runs
    assert seen_a == seen_b and len(seen_a) == 3
    assert bounded.best.valid_log_loss_ == free.best.valid_log_loss_ == 0.3
    assert not bounded.defaults_only and bounded.summary() == "search 3/3 trials"
    assert bounded.warning() is None and "journey.search.defaults_only" not in bounded.tags()


def test_one_trial_asked_for_is_not_a_budget_cut(clock: Clock) -> None:
    fit, _ = fake_fit(clock, [0.5])
    found = random_search(fit, Search(budget_seconds=1, max_trials=1, space=SPACE), {},
                          seed=0)
    assert not found.defaults_only and found.summary() == "search 1/1 trials"
