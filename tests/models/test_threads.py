"""LightGBM's thread count: the estimator's own, else OMP_NUM_THREADS, else every CPU."""

from __future__ import annotations

import os

import pytest

from models.lgbm import LightGBMClassifier, booster_params
from models.threads import cpu_threads
from models.uplift import TLearner

CPUS = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("env", "expected"), [
    (None, CPUS),
    ("1", 1),
    (" 1 ", 1),
    ("1,4", 1),  # a nested list: the outer level's count
    (str(CPUS + 7), CPUS),  # never more threads than CPUs to run them
    ("0", CPUS),  # not a count: OpenMP itself ignores it too
    ("two", CPUS),
    ("-1", CPUS),
    ("", CPUS),
])
def test_omp_num_threads_sets_the_default(monkeypatch: pytest.MonkeyPatch, env: str | None,
                                         expected: int) -> None:
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert cpu_threads() == expected
    assert cpu_threads(0) == expected


def test_an_estimator_s_own_count_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads(3) == 3
    assert booster_params(LightGBMClassifier(num_threads=3), {})["num_threads"] == 3


def test_every_booster_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The classifiers and the uplift learners hand LightGBM the same count."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert booster_params(LightGBMClassifier(), {})["num_threads"] == 1
    assert TLearner()._params({})["num_threads"] == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert booster_params(LightGBMClassifier(), {})["num_threads"] == CPUS
    assert TLearner()._params({})["num_threads"] == CPUS
