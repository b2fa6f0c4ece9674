"""Where an uplift model's estimates can be checked against the log: the (decision point,
action) pairs the logging policy explored.

Where the log almost never sent an action to such a customer (a stage it skipped, a segment it
left alone), it holds no days to learn that action's effect there from: the estimate is the
model's extrapolation. On the journey simulator's log a T-learner put 53-97 % of its first
choices there, and its policy was worth less than its estimates said. So the model learns, on
its training rows, a floor under the logging policy's probability of each action; serving
ranks an action first only where its probability is above the floor, and leaves the rest to
exploration (``models.arbitration``), which is how the log comes to cover them. The off-policy
evaluation judges the same restricted policy (``training.uplift_ope``).

Decision frames keep every contacted customer-day and sample the others at ``control_rate``
(weight 1 / rate), so a propensity model fitted on them under-states "no action" by the rate:
probabilities are rescaled to all customer-days before they are compared.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
# An action counts as explored at a decision point when the logging policy's estimated
# probability of it there is at least this fraction of its median on the points that got it.
SUPPORT_FLOOR = 0.1


def population_propensities(sampled: Floats, control_rate: float) -> Floats:
    """P(arm | x) among all customer-days from a model fitted on the frame whose uncontacted
    days were kept at ``control_rate``: the no-action odds are 1 / rate times larger."""
    p = np.array(sampled, dtype=np.float64)
    p[:, 0] /= control_rate
    out: Floats = p / p.sum(axis=1, keepdims=True)
    return out


def support_floors(logged_arm: Ints, estimated: Floats) -> Floats:
    """(actions,): per action (arm k + 1), ``SUPPORT_FLOOR`` times the median of its estimated
    probability over the points that got it; infinite for an action never logged (no point
    is explored for it). ``logged_arm``: 0 for no action, k + 1 for action k."""
    floors = np.full(estimated.shape[1] - 1, np.inf)
    for arm in range(1, estimated.shape[1]):
        taken = logged_arm == arm
        if taken.any():
            floors[arm - 1] = SUPPORT_FLOOR * float(np.median(estimated[taken, arm]))
    return floors


def within_support(estimated: Floats, floors: Floats) -> Bools:
    """(n, actions): whether each action's estimated probability is at its floor or above."""
    out: Bools = estimated[:, 1:] >= floors
    return out


def off_support(actions: tuple[str, ...], support: Bools) -> list[frozenset[str]]:
    """Per row of ``support`` (n, ``actions``), the actions it leaves out."""
    names = np.asarray(actions, dtype=object)
    return [frozenset(names[~row].tolist()) if not row.all() else frozenset()
            for row in support]
