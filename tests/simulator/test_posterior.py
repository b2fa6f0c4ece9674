"""The posterior oracle: uncertain only about silent churn, it must be a calibrated posterior,
agree with the full oracle for the living, and never know less than the log shows."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from features.simulator.oracle import INACTIVE, oracle_for
from features.simulator.params import STAGES
from features.simulator.posterior import posterior_for
from features.simulator.run import SimResult

CUTOFF_DAY, HORIZON, REPLICAS = 110, 30, 32
NEXT = [f"p_next_{s}" for s in (*STAGES, INACTIVE)]


@pytest.fixture(scope="module")
def cutoff(sim: SimResult) -> date:
    return date.fromisoformat(sim.start) + timedelta(days=CUTOFF_DAY)


@pytest.fixture(scope="module")
def both(sim: SimResult, cutoff: date) -> pd.DataFrame:
    post = posterior_for(sim.out, cutoff, HORIZON, replicas=REPLICAS)
    full = oracle_for(sim.out, cutoff, HORIZON, replicas=REPLICAS)
    return post.merge(full, on="customer_id", suffixes=("", "_oracle"), validate="1:1")


def test_the_same_customers_and_truth_as_the_oracle(both: pd.DataFrame) -> None:
    assert (both.alive == both.alive_oracle).all()
    assert (both.latent_type == both.latent_type_oracle).all()
    assert 0.1 < (~both.alive).mean() < 0.9  # both kinds of customer are present


def test_the_alive_posterior_is_calibrated(both: pd.DataFrame) -> None:
    p, alive = both.p_alive.to_numpy(), both.alive.to_numpy()
    # Even a customer active yesterday may have churned at the end of that day.
    assert ((p > 0) & (p < 1)).all()
    # A Bayes posterior's mean equals the share it predicts, within sampling error.
    se = np.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(alive.mean() - p.mean()) < 4 * se
    assert p[alive].mean() - p[~alive].mean() > 0.3, (p[alive].mean(), p[~alive].mean())


def test_the_living_get_the_oracles_futures(both: pd.DataFrame) -> None:
    # Given alive, the quiet path's state is the true state, so its futures are the oracle's
    # (same replicas, same random numbers).
    living = both[both.alive & (both.p_alive > 0.05)]
    a = living.p_alive.to_numpy()[:, None]
    inactive = np.array([c == f"p_next_{INACTIVE}" for c in NEXT], float)
    if_alive = (living[NEXT].to_numpy() - (1 - a) * inactive) / a
    np.testing.assert_allclose(if_alive, living[[f"{c}_oracle" for c in NEXT]], atol=1e-9)
    np.testing.assert_allclose(living.p_convert / living.p_alive, living.p_convert_oracle,
                               atol=1e-9)


def test_probabilities_are_distributions_and_the_churned_are_mostly_written_off(
        both: pd.DataFrame) -> None:
    np.testing.assert_allclose(both[NEXT].sum(axis=1), 1.0, atol=1e-9)
    gone = both[~both.alive]
    assert (gone.p_next_inactive >= gone.p_next_inactive_oracle - 1).all()
    assert gone.p_next_inactive.mean() > 0.7
    assert (both.p_inactive >= both.p_next_inactive - 1e-12).all()


def test_it_never_beats_the_full_oracle_on_log_loss(both: pd.DataFrame) -> None:
    # Averaged over customers, knowing less cannot predict the full oracle's own outcome
    # distribution better: the cross-entropy against the oracle's probabilities is higher.
    q = both[[f"{c}_oracle" for c in NEXT]].to_numpy()
    p = np.clip(both[NEXT].to_numpy(), 1e-12, 1)
    full = np.clip(q, 1e-12, 1)
    assert (q * -np.log(p)).sum(axis=1).mean() > (q * -np.log(full)).sum(axis=1).mean()


def test_cutoff_must_be_inside_the_simulation(sim: SimResult) -> None:
    with pytest.raises(ConfigError, match="outside the simulated days"):
        posterior_for(sim.out, date.fromisoformat(sim.start) + timedelta(days=400), 7)
