"""The logging policy: which customers the business contacts each day, with which action, and
the propensity it logs for the contact.

The business sees stages and support experiences, not latent churn, so the same rule applies
to customers who silently churned (``contact_lapsed``); their contacts change nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from features.simulator import rng
from features.simulator.params import SimParams
from features.simulator.streams import S_ACTION, S_CONTACT

Ints = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
F = npt.NDArray[np.float64]
Keys = npt.NDArray[np.uint64]


class ContactPolicy:
    def __init__(self, params: SimParams) -> None:
        self.p = params
        # Eligibility depends only on the stage and on whether there was a bad experience, so
        # each customer's weights are a row of this (stage, bad > 0, action) table.
        stages = np.arange(params.action_stages.shape[1])
        self.table = np.stack(
            [self._eligible_weights(stages, np.full(len(stages), bad)) for bad in (0, 1)], axis=1
        )
        self.totals = self.table.sum(axis=2)

    def draw(
        self,
        keys: Keys,
        stage: npt.NDArray[np.int8],
        bad: npt.NDArray[np.int16],
        forced: int | None = None,
    ) -> tuple[B, Ints, F]:
        """(contacted, action or -1, propensity or NaN) per customer; ``forced`` overrides the
        policy (an action index, or -1 for "no contact") and logs no propensity."""
        n = len(keys)
        if forced is not None:
            action = np.full(n, forced, np.int64)
            return action >= 0, action, np.full(n, np.nan)
        weights, total = self._weights(stage, bad)
        contacted = (rng.uniform(keys, S_CONTACT) < self.p.contact_rate) & (total > 0)
        action = np.full(n, -1, np.int64)
        propensity = np.full(n, np.nan)
        if contacted.any():
            action[contacted], propensity[contacted] = self._choose(
                keys[contacted], weights[contacted], total[contacted]
            )
        return contacted, action, propensity

    def draw_sparse(
        self, keys: Keys, stage: npt.NDArray[np.int8], bad: npt.NDArray[np.int16]
    ) -> tuple[Ints, Ints, F]:
        """The same rule as ``draw`` as (positions contacted, action, propensity). Eligibility
        is worked out only for the few whose contact draw succeeds: this runs every day for
        the lapsed customers, who outnumber the living late in a simulation."""
        cand = np.flatnonzero(rng.uniform(keys, S_CONTACT) < self.p.contact_rate)
        weights, total = self._weights(stage[cand], bad[cand])
        ok = total > 0
        cand, weights, total = cand[ok], weights[ok], total[ok]
        action, propensity = self._choose(keys[cand], weights, total)
        return cand, action, propensity

    def _weights(self, stage: npt.NDArray[np.int8], bad: npt.NDArray[np.int16]) -> tuple[F, F]:
        """Each customer's weight per action (0 where ineligible) and their sum."""
        had_bad = (bad > 0).astype(np.intp)
        return self.table[stage, had_bad], self.totals[stage, had_bad]

    def _eligible_weights(self, stage: Ints, bad: Ints) -> F:
        p = self.p
        eligible = p.action_stages[:, stage].T & ~(
            p.action_requires_bad[None, :] & (bad[:, None] == 0)
        )
        weights: F = eligible * p.action_weight[None, :]
        return weights

    def _choose(self, keys: Keys, weights: F, total: F) -> tuple[Ints, F]:
        chosen = rng.categorical(rng.uniform(keys, S_ACTION), weights)
        propensity: F = self.p.contact_rate * weights[np.arange(len(keys)), chosen] / total
        return chosen, propensity
