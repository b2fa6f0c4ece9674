"""The survival oracle against what the simulated event log shows: who is at risk at T exactly,
and the share still not churned at each day statistically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import ConfigError
from features.simulator.run import SimResult
from features.simulator.survival_oracle import survival_oracle_for
from features.taxonomy import load_taxonomy

CUTOFF_DAY, HORIZON, GAP = 60, 60, 30
DAYS = (7, 30, 59)
Z = 4.0  # tolerance in standard errors


@pytest.fixture(scope="module")
def cutoff(sim: SimResult) -> pd.Timestamp:
    return pd.Timestamp(sim.start, tz="UTC") + pd.Timedelta(days=CUTOFF_DAY)


@pytest.fixture(scope="module")
def truth(sim: SimResult, cutoff: pd.Timestamp) -> pd.DataFrame:
    return survival_oracle_for(sim.out, cutoff.to_pydatetime(), HORIZON, GAP, DAYS, replicas=32)


def realized_churn(events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Gap-dated churn from the log, as features.labels dates it: the first activity followed
    by G days without any, from the last activity before T on."""
    stage_of = load_taxonomy().event_stage
    acts = events[events.event_type.map(lambda t: stage_of.get(t) is not None)]
    acts = acts[acts.ts <= cutoff + pd.Timedelta(days=HORIZON)]
    before = acts[acts.ts < cutoff].groupby("customer_id").ts.max().rename("last")
    after = acts[acts.ts > cutoff][["customer_id", "ts"]]
    seq = pd.concat([before.reset_index().rename(columns={"last": "ts"}), after])
    seq = seq[seq.customer_id.isin(before.index)].sort_values(["customer_id", "ts"])
    gap = pd.Timedelta(days=GAP)
    seq["nxt"] = seq.groupby("customer_id").ts.shift(-1)
    ends = seq[(seq.ts + gap > cutoff) & (seq.nxt.isna() | (seq.nxt > seq.ts + gap))]
    churn_at = (ends.ts + gap).groupby(ends.customer_id).min()
    out = pd.DataFrame({"at_risk": before + gap > cutoff})
    out["churn_days"] = ((churn_at.reindex(out.index) - cutoff).dt.total_seconds() / 86400)
    return out


def test_at_risk_is_what_the_log_shows(truth: pd.DataFrame, events: pd.DataFrame,
                                       cutoff: pd.Timestamp) -> None:
    real = realized_churn(events, cutoff)
    merged = truth.set_index("customer_id").join(real, rsuffix="_real", how="inner")
    assert len(merged) == len(truth)
    assert (merged.at_risk == merged.at_risk_real).mean() > 0.99
    gone = ~truth.at_risk.to_numpy()
    assert np.all(truth.loc[gone, [f"s_{d}" for d in DAYS]].to_numpy() == 0)


def test_survival_agrees_with_the_log(truth: pd.DataFrame, events: pd.DataFrame,
                                      cutoff: pd.Timestamp) -> None:
    real = realized_churn(events, cutoff)
    rows = truth[truth.at_risk].set_index("customer_id").join(real.drop(columns="at_risk"),
                                                               how="inner")
    assert len(rows) > 500
    for d in DAYS:
        predicted = rows[f"s_{d}"].mean()
        seen = (rows.churn_days.isna() | (rows.churn_days > d)).mean()
        se = np.sqrt(seen * (1 - seen) / len(rows))
        assert abs(predicted - seen) < Z * se + 0.01, (d, predicted, seen)
    s = rows[[f"s_{d}" for d in DAYS]].to_numpy()
    assert np.all(np.diff(s, axis=1) <= 0)
    assert rows.expected_days.between(0, HORIZON).all()


def test_bad_arguments(sim: SimResult, cutoff: pd.Timestamp, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="days must lie"):
        survival_oracle_for(sim.out, cutoff.to_pydatetime(), 10, GAP, [11], replicas=2)
    with pytest.raises(ConfigError, match="not a simulation"):
        survival_oracle_for(tmp_path, cutoff.to_pydatetime(), 10, GAP, [1])
