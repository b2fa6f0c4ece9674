"""The best any model of the event log could do about silent churn, with its type known too.

The oracle (``features.simulator.oracle``) conditions on the whole latent state, including
whether a customer has silently churned, which no event log shows: a customer last heard
from 40 days ago may be gone or merely quiet. This posterior oracle conditions on everything
the log shows plus the customer's latent type and starting engagement, and is uncertain only
about churn. Given those, the log fixes the state at the end of the customer's last active
day L exactly, and every later day is either a quiet day of a living customer or comes after
their churn, so

    P(alive at T | log, type, e0) = S / (S + D), with
    S = prod_{d=L}^{T-1} (1 - h_d) * prod_{d=L+1}^{T-1} q_d
    D = sum_{c=L}^{T-1} h_c * prod_{d=L}^{c-1} (1 - h_d) * prod_{d=L+1}^{c} q_d

where q_d is the chance a living customer stays quiet on day d (no session, no email open,
the logged contacts applied) and h_d the hazard of churning at its end, both along the quiet
path (``Engine.quiet_day``). Outcome probabilities mix the futures of the quiet path's state
at T (the true state, for those actually alive) with "no activity at all" for the churned.

Knowing more never raises the best achievable log loss, so on the same rows this oracle's
log loss is a floor for any model of the log alone (up to Monte Carlo noise), and the gap
between it and the full oracle is what silent churn alone hides.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.simulator.emit import customer_ids
from features.simulator.engine import Engine, Population, State, draw_population
from features.simulator.oracle import INACTIVE, futures, sampled, simulated_day, simulation
from features.simulator.params import STAGES, SimParams

F = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
# Every field but alive, the one thing the posterior is uncertain about.
_TRACKED = tuple(f.name for f in fields(State) if f.name != "alive")


def last_active_states(engine: Engine, pop: Population, cutoff_day: int
                       ) -> tuple[State, State]:
    """Replays days [0, T): the state at T, and each customer's state at the end of their
    last active day before T (the last thing the log can pin down)."""
    st = State.initial(pop)
    last = st.copy()
    for day in range(cutoff_day):
        d = engine.step(day, pop, st)
        who = d.idx[d.active]
        for name in _TRACKED:
            getattr(last, name)[who] = getattr(st, name)[who]
    return st, last


def alive_posterior(engine: Engine, pop: Population, last: State, cutoff_day: int
                    ) -> tuple[F, State]:
    """P(alive at T) per customer given the log, type and e0, and the state at T on the
    hypothesis that they are alive (``last`` carried through the quiet days)."""
    quiet = last.copy()
    quiet.alive[:] = True
    n, since = len(pop.index), last.last_active.astype(np.int64)
    everyone = np.arange(n)
    gone = np.zeros(n)
    for day in np.unique(since):  # churn at the end of the last active day itself
        who = everyone[since == day]
        gone[who] = engine.hazard(int(day), pop, quiet, who)
    stays = 1 - gone
    for day in range(int(since.min(initial=cutoff_day)) + 1, cutoff_day):
        who = everyone[since < day]
        q, h = engine.quiet_day(day, pop, quiet, who)
        stays[who] *= q
        gone[who] += stays[who] * h
        stays[who] *= 1 - h
    return stays / (stays + gone), quiet


def posterior(params: SimParams, seed: int, sim_days: int, customers: int | Ints,
              cutoff_day: int, horizon_days: int, replicas: int = 200) -> pd.DataFrame:
    """Per customer arrived before day T: ``p_alive``, and ``p_convert``, ``p_inactive`` and
    ``p_next_<stage>`` / ``p_next_inactive`` over [T, T+H) as the oracle names them, given the
    log, the latent type and starting engagement; ``alive`` and ``latent_type`` are the truth
    at T, for evaluation."""
    if cutoff_day < 1 or horizon_days < 1 or replicas < 1:
        raise ValueError("cutoff_day, horizon_days and replicas must be at least 1")
    index = np.arange(customers, dtype=np.int64) if isinstance(customers, int) else customers
    # As the oracle's: lapsed customers' contacts change no state, so they are not drawn.
    engine = Engine(replace(params, contact_lapsed=False))
    pop = draw_population(params, seed, index, sim_days)
    st, last = last_active_states(engine, pop, cutoff_day)
    arrived = np.flatnonzero(pop.arrival < cutoff_day)
    pop, st, last = pop.take(arrived), st.take(arrived), last.take(arrived)
    p_alive, quiet = alive_posterior(engine, pop, last, cutoff_day)
    if_alive = futures(engine, pop, quiet, cutoff_day, horizon_days, replicas)
    out = pd.DataFrame({
        "customer_id": np.asarray(customer_ids(pop.index).to_pylist(), dtype=object),
        "latent_type": np.array(params.types)[pop.type],
        "alive": st.alive,
        "p_alive": p_alive,
        "p_convert": p_alive * if_alive["p_convert"].to_numpy(),
        "p_inactive": 1 - p_alive * (1 - if_alive["p_inactive"].to_numpy()),
    })
    for stage in STAGES:
        out[f"p_next_{stage}"] = p_alive * if_alive[f"p_next_{stage}"].to_numpy()
    out[f"p_next_{INACTIVE}"] = 1 - p_alive * (1 - if_alive[f"p_next_{INACTIVE}"].to_numpy())
    return out


def posterior_for(sim_dir: str | Path, as_of: date | datetime, horizon_days: int,
                  replicas: int = 200, sample: int | None = None, sample_seed: int = 0
                  ) -> pd.DataFrame:
    """``posterior`` for a simulation written by ``journey simulate``; ``sample`` and
    ``sample_seed`` pick the same customers as ``oracle_for`` does."""
    params, manifest = simulation(sim_dir)
    day = simulated_day(params, manifest, as_of)
    customers = sampled(manifest, sample, sample_seed)
    return posterior(params, manifest["seed"], manifest["days"], customers, day, horizon_days,
                     replicas)
