"""The true survival curve of gap-dated churn, per customer, by Monte Carlo (see oracle.py).

Churn is what ``features.labels`` dates from the event log: the moment an inactivity gap
reaches G days. Each replica continues the replayed customer from day T; its last activity
day starts as the data's (the day of the last customer event before T) and moves with every
active day; the replica churns on the first day that is G days after its last activity. The
simulator works in whole days and an event's time of day is unknown here, so a churn found at
the start of day c is dated at c + 0.5 (mid-day), as an event at mid-day would date it.

Customers already churned at T (G days without activity) are reported with ``at_risk``
false and survival 0, as the labels give them churn_days 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.errors import ConfigError
from features.simulator.emit import customer_ids
from features.simulator.engine import Engine, Population, State
from features.simulator.oracle import MAX_CELLS, _tile, cutoff_day, state_at
from features.simulator.params import SimParams, params_from_text
from features.simulator.params_check import read_file
from features.simulator.run import MANIFEST

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def churn_times(engine: Engine, pop: Population, st: State, replica: Ints, start: int,
                horizon: int, gap: int) -> Floats:
    """Each cell's gap-dated churn time in days after ``start`` (inf: not within the horizon)."""
    st = st.copy()
    when = np.full(len(pop.index), np.inf)
    for day in range(start, start + horizon + 1):
        # Dated at the start of ``day``: no activity since last_active, G days ago.
        due = np.isinf(when) & (day - st.last_active >= gap)
        when[due] = st.last_active[due] + gap + 0.5 - start
        if day < start + horizon:
            engine.step(day, pop, st, replica)
    when[when > horizon] = np.inf
    return when


def _curves(times: Floats, n: int, replicas: int, horizon: int, days: Sequence[int]
            ) -> dict[str, Floats]:
    grid = times.reshape(replicas, n)
    out = {f"s_{d}": (grid > d).mean(axis=0) for d in days}
    out["expected_days"] = np.minimum(grid, horizon).mean(axis=0)
    out["p_churn_horizon"] = np.isfinite(grid).mean(axis=0)
    return out


def survival_oracle(params: SimParams, seed: int, sim_days: int, customers: int | Ints,
                    cutoff: int, horizon_days: int, gap_days: int, days: Sequence[int],
                    replicas: int = 200) -> pd.DataFrame:
    """Per customer who arrived before day T: true S(t) at each of ``days`` (``s_{t}``), the
    expected churn time within the horizon (``expected_days``, the restricted mean: the
    oracle's risk score, lower is riskier) and P(churn by T+H)."""
    if cutoff < 1 or horizon_days < 1 or gap_days < 1 or replicas < 1:
        raise ValueError("cutoff, horizon_days, gap_days and replicas must be at least 1")
    if any(not 0 <= d <= horizon_days for d in days):
        raise ValueError(f"days must lie within [0, {horizon_days}]")
    index = np.arange(customers, dtype=np.int64) if isinstance(customers, int) else customers
    engine, pop, st = state_at(params, seed, sim_days, index, cutoff)
    block = max(1, MAX_CELLS // replicas)
    parts = []
    for i in range(0, len(pop.index), block):
        sel = np.arange(i, min(i + block, len(pop.index)))
        n = len(sel)
        tp, ts = _tile(pop.take(sel), replicas), _tile(st.take(sel), replicas)
        replica = np.repeat(np.arange(1, replicas + 1, dtype=np.int64), n)
        times = churn_times(engine, tp, ts, replica, cutoff, horizon_days, gap_days)  # type: ignore[arg-type]
        parts.append(_curves(times, n, replicas, horizon_days, days))
    keys = [*(f"s_{d}" for d in days), "expected_days", "p_churn_horizon"]
    frame = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) if parts else np.array([])
                          for k in keys})
    frame.insert(0, "customer_id", np.asarray(customer_ids(pop.index).to_pylist(), dtype=object))
    frame.insert(1, "at_risk", cutoff - st.last_active < gap_days)
    return frame


def survival_oracle_for(sim_dir: str | Path, as_of: date | datetime, horizon_days: int,
                        gap_days: int, days: Sequence[int], replicas: int = 200,
                        sample: int | None = None, sample_seed: int = 0) -> pd.DataFrame:
    """``survival_oracle`` for a simulation written by ``journey simulate``."""
    root = Path(sim_dir)
    if not (root / MANIFEST).is_file():
        raise ConfigError(f"{root}: not a simulation output (no {MANIFEST})")
    manifest = json.loads((root / MANIFEST).read_text())
    # Read as the simulation read it: strictly (YAML 1.2, a key written twice refused).
    params = params_from_text(read_file(root / "params.yaml"), str(root / "params.yaml"))
    day = cutoff_day(params.start, as_of)
    if not 1 <= day <= manifest["days"]:
        raise ConfigError(f"as of {as_of}: outside the simulated days "
                          f"({params.start} + 1..{manifest['days']} days)")
    customers: int | Ints = manifest["customers"]
    if sample is not None and sample < manifest["customers"]:
        picker = np.random.default_rng(sample_seed)
        customers = np.sort(picker.choice(manifest["customers"], sample, replace=False)
                            ).astype(np.int64)
    return survival_oracle(params, manifest["seed"], manifest["days"], customers, day,
                           horizon_days, gap_days, days, replicas)
