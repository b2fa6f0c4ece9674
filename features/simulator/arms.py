"""The draws behind the oracle's effects, one future at a time: for each treatment arm (no
contact, or one action forced on day T) and each replica, whether each customer converted and
was active in [T, T+H).

A randomised experiment at T is then a pick, per (replica, customer), of one arm's draw: a log
with known propensities, for checking off-policy estimators against the oracle. Replicas are
independent futures, so a log drawn from replicas the oracle did not use is independent of the
oracle's truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.simulator.oracle import _run_arm, _tile, state_at
from features.simulator.params import SimParams

Ints = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ArmDraws:
    customers: Ints  # customer numbers (arrived before T), in output order
    arms: tuple[str, ...]  # "none", then the actions
    converted: B  # (arms, replicas, customers)
    active: B


def arm_draws(params: SimParams, seed: int, sim_days: int, customers: Ints, cutoff_day: int,
              horizon_days: int, replicas: Sequence[int]) -> ArmDraws:
    """Every arm's outcomes in each of ``replicas`` (ids >= 1; 0 is the data itself)."""
    if min(replicas) < 1:
        raise ValueError("replica 0 is the simulated data; futures are replicas 1, 2, ...")
    engine, pop, st = state_at(params, seed, sim_days, customers, cutoff_day)
    n, reps = len(pop.index), len(replicas)
    tp, ts = _tile(pop, reps), _tile(st, reps)
    replica = np.repeat(np.asarray(replicas, np.int64), n)
    arms = {"none": -1, **{a: i for i, a in enumerate(params.actions)}}
    converted = np.zeros((len(arms), reps, n), bool)
    active = np.zeros((len(arms), reps, n), bool)
    for k, forced in enumerate(arms.values()):
        out = _run_arm(engine, tp, ts, replica, cutoff_day, horizon_days, forced)  # type: ignore[arg-type]
        converted[k] = out.converted.reshape(reps, n)
        active[k] = out.active.reshape(reps, n)
    return ArmDraws(pop.index, tuple(arms), converted, active)
