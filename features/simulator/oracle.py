"""Ground truth for a cutoff T and horizon H, by Monte Carlo from each customer's latent state.

The simulator's draws are keyed by (customer, day, replica), so replaying days [0, T) with
replica 0 reproduces the data exactly; replicas 1..R then continue independently over
[T, T+H). Averaging their outcomes gives each customer's true probability of converting, of
having no activity, of churning (latent), and of each furthest stage reached in [T, T+H).
Action effects compare arms that force one action (or none) on day T and share every random
number (common random numbers), so the difference isolates the action.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.errors import ConfigError
from features.simulator.emit import customer_ids
from features.simulator.engine import Engine, Population, State, draw_population
from features.simulator.params import STAGES, SimParams, params_from_text
from features.simulator.params_check import read_file
from features.simulator.run import MANIFEST

Ints = npt.NDArray[np.int64]
INACTIVE = "inactive"
MAX_CELLS = 400_000  # customers x replicas stepped at once (bounds memory)


@dataclass(frozen=True)
class Outcomes:
    converted: npt.NDArray[np.bool_]
    active: npt.NDArray[np.bool_]
    furthest: npt.NDArray[np.int8]
    alive: npt.NDArray[np.bool_]


def _tile(obj: Population | State, reps: int) -> Population | State:
    return type(obj)(**{f.name: np.tile(getattr(obj, f.name), reps) for f in fields(obj)})


def _run_arm(
    engine: Engine,
    pop: Population,
    state: State,
    replica: Ints,
    start: int,
    horizon: int,
    forced: int | None,
) -> Outcomes:
    st = state.copy()
    n = len(pop.index)
    converted, active = np.zeros(n, bool), np.zeros(n, bool)
    furthest = np.full(n, -1, np.int8)
    for day in range(start, start + horizon):
        d = engine.step(day, pop, st, replica, forced if day == start else None)
        converted[d.idx] |= d.buy
        active[d.idx] |= d.active
        furthest[d.idx] = np.maximum(furthest[d.idx], d.reached)
    return Outcomes(converted, active, furthest, st.alive.copy())


def _block(
    engine: Engine,
    pop: Population,
    st: State,
    cutoff: int,
    horizon: int,
    replicas: int,
    effects: bool,
) -> dict[str, npt.NDArray[np.float64]]:
    n = len(pop.index)
    tp, ts = _tile(pop, replicas), _tile(st, replicas)
    replica = np.repeat(np.arange(1, replicas + 1, dtype=np.int64), n)

    def mean(x: npt.NDArray[np.float64] | npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        means: npt.NDArray[np.float64] = x.reshape(replicas, n).mean(axis=0)
        return means

    nat = _run_arm(engine, tp, ts, replica, cutoff, horizon, None)  # type: ignore[arg-type]
    out = {
        "p_convert": mean(nat.converted),
        "p_inactive": mean(~nat.active),
        "p_churned": mean(~nat.alive),
    }
    for k, stage in enumerate(STAGES):
        out[f"p_next_{stage}"] = mean(nat.furthest == k)
    out[f"p_next_{INACTIVE}"] = mean(nat.furthest < 0)
    if effects:
        arms = {"none": -1, **{a: i for i, a in enumerate(engine.p.actions)}}
        res = {
            name: _run_arm(engine, tp, ts, replica, cutoff, horizon, forced)  # type: ignore[arg-type]
            for name, forced in arms.items()
        }
        ctl = res.pop("none")
        # With no contact on day T (the natural run may contact the customer that day): what
        # an action's effect is measured from, and what a discount is given away on.
        out["p_convert_none"] = mean(ctl.converted)
        out["p_inactive_none"] = mean(~ctl.active)
        for name, o in res.items():
            out[f"effect_convert_{name}"] = mean(o.converted.astype(float) - ctl.converted)
            out[f"effect_inactive_{name}"] = mean((~o.active).astype(float) - ~ctl.active)
            out[f"effect_churned_{name}"] = mean((~o.alive).astype(float) - ~ctl.alive)
    return out


def futures(engine: Engine, pop: Population, st: State, cutoff_day: int, horizon_days: int,
            replicas: int, effects: bool = False) -> pd.DataFrame:
    """Outcome frequencies over ``replicas`` futures of [T, T+H) from state ``st`` at T, one
    row per customer of ``pop``, in blocks that bound memory."""
    n = len(pop.index)
    block = max(1, MAX_CELLS // replicas)
    parts = [
        _block(engine, pop.take(np.arange(i, min(i + block, n))),
               st.take(np.arange(i, min(i + block, n))), cutoff_day, horizon_days, replicas,
               effects)
        for i in range(0, n, block)
    ]
    return pd.DataFrame(
        {
            k: np.concatenate([p[k] for p in parts]) if parts else np.array([])
            for k in (parts[0] if parts else {"p_convert": None})
        }
    )


def state_at(params: SimParams, seed: int, sim_days: int, index: Ints, cutoff_day: int
             ) -> tuple[Engine, Population, State]:
    """The customers of ``index`` who arrived before day T, as the data left them at T (replica
    0 replayed), and the engine that continues them."""
    # Contacts of lapsed customers change no outcome, so the oracle does not draw them.
    engine = Engine(replace(params, contact_lapsed=False))
    pop = draw_population(params, seed, index, sim_days)
    st = State.initial(pop)
    for day in range(cutoff_day):
        engine.step(day, pop, st)
    base = np.flatnonzero(pop.arrival < cutoff_day)
    return engine, pop.take(base), st.take(base)


def oracle(
    params: SimParams,
    seed: int,
    sim_days: int,
    customers: int | Ints,
    cutoff_day: int,
    horizon_days: int,
    replicas: int = 200,
    effects: bool = False,
) -> pd.DataFrame:
    """True outcome probabilities in [T, T+H) for customers who arrived before day T.

    ``customers`` is the simulation's customer count, or the customer numbers to evaluate.
    """
    if cutoff_day < 1 or horizon_days < 1 or replicas < 1:
        raise ValueError("cutoff_day, horizon_days and replicas must be at least 1")
    index = np.arange(customers, dtype=np.int64) if isinstance(customers, int) else customers
    engine, pop, st = state_at(params, seed, sim_days, index, cutoff_day)
    frame = futures(engine, pop, st, cutoff_day, horizon_days, replicas, effects)
    frame.insert(0, "customer_id", np.asarray(customer_ids(pop.index).to_pylist(), dtype=object))
    frame.insert(1, "latent_type", np.array(params.types)[pop.type])
    frame.insert(2, "stage", np.array(STAGES)[st.stage])
    frame.insert(3, "purchased_before", st.purchases > 0)
    frame.insert(4, "alive", st.alive)
    frame.insert(5, "stage_index", st.stage.astype(np.int64))
    return frame.drop(columns="stage_index").assign(
        p_no_purchase=lambda f: np.where(f.purchased_before, 1 - f.p_convert, np.nan)
    )


def cutoff_day(start: date, as_of: date | datetime) -> int:
    if isinstance(as_of, datetime):
        if as_of.tzinfo is not None:
            as_of = as_of.astimezone(UTC)
        if (as_of.hour, as_of.minute, as_of.second, as_of.microsecond) != (0, 0, 0, 0):
            raise ConfigError(
                f"--as-of {as_of.isoformat()}: the oracle works on whole days; "
                "give a date (midnight UTC)"
            )
        as_of = as_of.date()
    return (as_of - start).days


def simulation(sim_dir: str | Path) -> tuple[SimParams, dict[str, Any]]:
    """A simulation's compiled parameters and manifest (from ``journey simulate``'s output)."""
    root = Path(sim_dir)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise ConfigError(f"{root}: not a simulation output (no {MANIFEST})")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    # Read as the simulation read it: strictly (YAML 1.2, a key written twice refused).
    params = params_from_text(read_file(root / "params.yaml"), str(root / "params.yaml"))
    return params, manifest


def simulated_day(params: SimParams, manifest: dict[str, Any], as_of: date | datetime) -> int:
    day = cutoff_day(params.start, as_of)
    if not 1 <= day <= manifest["days"]:
        raise ConfigError(
            f"--as-of {as_of}: outside the simulated days "
            f"({params.start} + 1..{manifest['days']} days)"
        )
    return day


def sampled(manifest: dict[str, Any], sample: int | None, sample_seed: int) -> int | Ints:
    """The simulation's customer count, or ``sample`` customer numbers drawn with the seed."""
    customers: int | Ints = manifest["customers"]
    if sample is not None and sample < manifest["customers"]:
        picker = np.random.default_rng(sample_seed)
        customers = np.sort(picker.choice(manifest["customers"], sample, replace=False)).astype(
            np.int64
        )
    return customers


def oracle_for(
    sim_dir: str | Path,
    as_of: date | datetime,
    horizon_days: int,
    replicas: int = 200,
    effects: bool = False,
    sample: int | None = None,
    sample_seed: int = 0,
) -> pd.DataFrame:
    """The oracle for a simulation written by ``journey simulate`` (reads its manifest)."""
    params, manifest = simulation(sim_dir)
    day = simulated_day(params, manifest, as_of)
    customers = sampled(manifest, sample, sample_seed)
    return oracle(
        params, manifest["seed"], manifest["days"], customers, day, horizon_days, replicas, effects
    )


def hidden_state_for(sim_dir: str | Path, cutoffs: Sequence[date | datetime]) -> pd.DataFrame:
    """What no event log shows, at each cutoff T for every customer who arrived before T:
    whether they are still alive (churn is silent), their latent type, their engagement and
    the engagement they started with.

    For measuring how much of a model's distance from the oracle is missing information rather
    than modelling: one replay of the data serves every cutoff. Columns ``customer_id``,
    ``cutoff`` (midnight UTC), ``alive``, ``latent_type``, ``engagement``,
    ``start_engagement``.
    """
    params, manifest = simulation(sim_dir)
    wanted = {simulated_day(params, manifest, c): c for c in cutoffs}
    engine = Engine(replace(params, contact_lapsed=False))  # lapsed contacts change no state
    index = np.arange(manifest["customers"], dtype=np.int64)
    pop = draw_population(params, manifest["seed"], index, manifest["days"])
    st = State.initial(pop)
    ids = np.asarray(customer_ids(pop.index).to_pylist(), dtype=object)
    frames = []
    for day in range(max(wanted, default=0)):
        engine.step(day, pop, st)
        if day + 1 in wanted:
            arrived = pop.arrival < day + 1
            frames.append(pd.DataFrame({
                "customer_id": ids[arrived],
                "cutoff": pd.Timestamp(params.start, tz=UTC) + pd.Timedelta(days=day + 1),
                "alive": st.alive[arrived],
                "latent_type": np.array(params.types)[pop.type[arrived]],
                "engagement": st.engagement[arrived],
                "start_engagement": pop.e0[arrived],
            }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["customer_id", "cutoff", "alive", "latent_type", "engagement",
                 "start_engagement"])
