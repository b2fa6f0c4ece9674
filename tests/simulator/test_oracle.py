"""The oracle must agree with what the simulated data shows: exactly at T, statistically after."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from features.simulator.oracle import INACTIVE, hidden_state_for, oracle_for
from features.simulator.params import STAGES
from features.simulator.run import SimResult
from features.taxonomy import load_taxonomy

CUTOFF_DAY, HORIZON = 110, 30
Z = 4.0  # tolerance in standard errors


@pytest.fixture(scope="module")
def cutoff(sim: SimResult) -> pd.Timestamp:
    return pd.Timestamp(sim.start, tz="UTC") + pd.Timedelta(days=CUTOFF_DAY)


@pytest.fixture(scope="module")
def truth(sim: SimResult, cutoff: pd.Timestamp) -> pd.DataFrame:
    return oracle_for(sim.out, cutoff.to_pydatetime(), HORIZON, replicas=64)


@pytest.fixture(scope="module")
def realized(events: pd.DataFrame, truth: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Labels computed from the event log the way a data scientist would."""
    stage_of = {t: s for t, s in load_taxonomy().event_stage.items() if s is not None}
    ev = events.assign(
        stage=events.event_type.map(
            lambda t: STAGES.index(stage_of[t]) if t in stage_of else np.nan
        )
    )
    window = ev[(ev.ts > cutoff) & (ev.ts <= cutoff + pd.Timedelta(days=HORIZON))]
    behaviour = window.dropna(subset=["stage"])
    past = ev[ev.ts < cutoff]
    out = truth[["customer_id"]].set_index("customer_id")
    out["converted"] = out.index.isin(window.loc[window.event_type == "purchase", "customer_id"])
    out["active"] = out.index.isin(behaviour.customer_id)
    out["furthest"] = behaviour.groupby("customer_id").stage.max().reindex(out.index)
    out["stage_before"] = (
        past.dropna(subset=["stage"]).groupby("customer_id").stage.max().reindex(out.index)
    )
    out["bought_before"] = out.index.isin(past.loc[past.event_type == "purchase", "customer_id"])
    out["seen_before"] = out.index.isin(past.customer_id)
    return out.reset_index()


def test_state_at_the_cutoff_is_what_the_events_show(
    truth: pd.DataFrame, realized: pd.DataFrame, events: pd.DataFrame, cutoff: pd.Timestamp
) -> None:
    assert realized.seen_before.all()
    assert set(truth.customer_id) == set(events.loc[events.ts < cutoff, "customer_id"])
    assert (truth.stage.map(STAGES.index).to_numpy() == realized.stage_before.to_numpy()).all()
    assert (truth.purchased_before.to_numpy() == realized.bought_before.to_numpy()).all()


def _agree(p: np.ndarray, y: np.ndarray, replicas: int = 64) -> None:
    # Var(mean y - mean p): Bernoulli noise of y plus Monte Carlo noise of p. A Monte Carlo
    # estimate of 0 or 1 still hides a small true p, so the variance uses a shrunk estimate.
    shrunk = (p * replicas + 0.5) / (replicas + 1)
    se = np.sqrt((shrunk * (1 - shrunk)).sum() * (1 + 1 / replicas)) / len(p)
    assert abs(y.mean() - p.mean()) <= Z * se, (y.mean(), p.mean(), se)


def test_probabilities_agree_with_realized_outcomes(
    truth: pd.DataFrame, realized: pd.DataFrame
) -> None:
    _agree(truth.p_convert.to_numpy(), realized.converted.to_numpy())
    _agree(truth.p_inactive.to_numpy(), (~realized.active).to_numpy())
    furthest = realized.furthest.fillna(-1).to_numpy()
    for k, stage in enumerate((*STAGES, INACTIVE)):
        target = -1 if stage == INACTIVE else k
        _agree(truth[f"p_next_{stage}"].to_numpy(), furthest == target)
    next_cols = [f"p_next_{s}" for s in (*STAGES, INACTIVE)]
    np.testing.assert_allclose(truth[next_cols].sum(axis=1), 1.0)


def test_probabilities_are_calibrated_by_decile(
    truth: pd.DataFrame, realized: pd.DataFrame
) -> None:
    frame = pd.DataFrame({"p": truth.p_convert, "y": realized.converted})
    frame["bin"] = pd.qcut(frame.p.rank(method="first"), 10, labels=False)
    for _, part in frame.groupby("bin"):
        _agree(part.p.to_numpy(), part.y.to_numpy())
    # And the oracle separates well: it is the ceiling any model is measured against.
    top, bottom = frame[frame.bin == 9].y.mean(), frame[frame.bin <= 4].y.mean()
    assert top > 0.4 > 0.05 > bottom


def test_no_purchase_churn_is_defined_for_previous_purchasers_only(truth: pd.DataFrame) -> None:
    assert truth.loc[~truth.purchased_before, "p_no_purchase"].isna().all()
    bought = truth[truth.purchased_before]
    np.testing.assert_allclose(bought.p_no_purchase, 1 - bought.p_convert)


def test_action_effects_differ_by_customer_type(sim: SimResult, cutoff: pd.Timestamp) -> None:
    eff = oracle_for(
        sim.out,
        cutoff.to_pydatetime(),
        HORIZON,
        replicas=48,
        effects=True,
        sample=3000,
        sample_seed=1,
    )
    alive = eff[eff.alive]
    by_type = alive.groupby("latent_type")
    discount = by_type.effect_convert_discount_email.mean()
    assert discount["deal_seeker"] > 0.04 and discount["loyalist"] < 0.02
    prospects = alive[~alive.purchased_before]
    retarget = prospects.groupby("latent_type").effect_churned_retargeting_ad.mean()
    assert retarget["at_risk"] > 0.01  # annoys at-risk prospects: a harmful action
    outreach = alive.groupby("latent_type").effect_churned_support_outreach.mean()
    assert outreach["at_risk"] < -0.01
    # Loyalists buy without the discount as often as with it: the orders a discount would
    # only make cheaper. The no-action rates are the natural run's less the logged contacts.
    none = by_type.p_convert_none.mean()
    assert none["loyalist"] > 0.1 and none["loyalist"] > discount["loyalist"] * 5
    assert (eff.p_inactive_none.between(0, 1)).all()
    assert abs(eff.p_convert_none.mean() - eff.p_convert.mean()) < 0.02


def test_cutoff_must_be_a_whole_day_inside_the_simulation(sim: SimResult) -> None:
    start = date.fromisoformat(sim.start)
    with pytest.raises(ConfigError, match="whole days"):
        oracle_for(sim.out, datetime(start.year, start.month, start.day, 12), 7)
    with pytest.raises(ConfigError, match="outside the simulated days"):
        oracle_for(sim.out, start + timedelta(days=400), 7)
    with pytest.raises(ConfigError, match="not a simulation output"):
        oracle_for(Path(sim.out) / "events", start + timedelta(days=10), 7)


def test_hidden_state_is_the_oracles_state_at_each_cutoff(
    sim: SimResult, cutoff: pd.Timestamp, truth: pd.DataFrame
) -> None:
    earlier = cutoff - pd.Timedelta(days=40)
    hidden = hidden_state_for(sim.out, [earlier.to_pydatetime(), cutoff.to_pydatetime()])
    assert set(hidden.cutoff) == {earlier, cutoff}
    at_t = hidden[hidden.cutoff == cutoff].merge(truth, on="customer_id", suffixes=("", "_o"))
    assert len(at_t) == len(truth) == (hidden.cutoff == cutoff).sum()
    assert (at_t.alive == at_t.alive_o).all() and (at_t.latent_type == at_t.latent_type_o).all()
    assert 0 < at_t.alive.mean() < 1 and (hidden.engagement > 0).all()
    # The starting engagement is drawn once: the same at every cutoff.
    assert (hidden.start_engagement > 0).all()
    per_customer = hidden.groupby("customer_id").start_engagement.nunique()
    assert (per_customer == 1).all()
    # Churn is absorbing and the population only grows: nobody comes back or leaves the rows.
    both = hidden[hidden.cutoff == earlier].merge(at_t, on="customer_id", suffixes=("_e", ""))
    assert len(both) == (hidden.cutoff == earlier).sum() < len(at_t)
    assert not (both.alive & ~both.alive_e).any()
    with pytest.raises(ConfigError, match="outside the simulated days"):
        hidden_state_for(sim.out, [date.fromisoformat(sim.start) + timedelta(days=400)])
