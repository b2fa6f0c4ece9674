"""What following an uplift model would have earned on a window of logged decisions, estimated
off-policy (doubly robust), next to what the logging policy actually got.

The policy judged is the model's targeting at the logging policy's contact volume: the same
share of (weighted) decision points is contacted, the ones with the largest predicted benefit,
each with its best action; everyone else gets nothing. Holding the volume fixed makes the
comparison about *whom* and *with what*, not about contacting more (which any model with a
positive effect would win).

The decision frame keeps every contacted customer-day and samples the rest at ``control_rate``
(weight 1 / rate). So that estimates speak of all customer-days:

- terms are averaged with the rows' weights;
- the propensity model, fitted on the sampled frame, under-states "no action" by the sampling
  rate; its column 0 is scaled back by 1 / rate before inverting. A contacted row uses the
  propensity its log recorded when there is one (the logging policy's own number), else the
  model's.

Rewards are the good outcome: converting, or not churning. Values are rates per decision point.

The policy only targets (decision point, action) pairs the logging policy explored
(``models.uplift_support``), as the service recommends: elsewhere the log holds no days to
check the model against, and the doubly robust term there would be the model's own estimate,
which rewards whatever the model extrapolates. On the journey simulator's log a T-learner's
unrestricted policy put 53-97 % of its contacts there (an X-learner's 0-8 %), which made it
look best on validation while its served policy was worth less. The floors are the model's
own (learned on its training rows); a model registered before it learned them is judged with
floors from the frame judged. ``unsupported`` reports the share of the unrestricted policy's
contacts that went off the log's support.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.ope import Estimate, doubly_robust, incremental
from models.uplift_model import OTHER_ACTION, JourneyUplift, action_codes
from models.uplift_support import (
    population_propensities,
    support_floors,
    within_support,
)
from training.uplift_spec import LABEL_OF

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Z95 = 1.96


@dataclass(frozen=True)
class PolicyValue:
    """The model's policy (doubly robust) and the logging policy (observed), as good-outcome
    rates per decision point, with the paired difference ``lift`` (policy - logged)."""

    policy: Estimate
    logged: Estimate
    lift: Estimate
    contact_share: float
    outcome: str = "convert"
    unsupported: float = 0.0  # share of the unrestricted policy's contacts off the support

    @property
    def good(self) -> str:
        """What the rates count, as a reason reads them."""
        return "convert" if self.outcome == "convert" else "stay (do not churn)"

    def metrics(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}dr_policy_value": self.policy.value,
                f"{prefix}dr_policy_se": self.policy.se,
                f"{prefix}logged_policy_value": self.logged.value,
                f"{prefix}dr_lift_vs_logged": self.lift.value,
                f"{prefix}dr_lift_vs_logged_se": self.lift.se,
                f"{prefix}dr_unsupported_share": self.unsupported}


def logged_propensity(logged_arm: Ints, recorded: Floats, estimated: Floats) -> Floats:
    """Each row's probability of the arm it got: the recorded one for contacts that logged a
    usable one, the (population) model's otherwise."""
    model = estimated[np.arange(len(logged_arm)), logged_arm]
    usable = (logged_arm > 0) & np.isfinite(recorded) & (recorded > 0) & (recorded <= 1)
    out: Floats = np.where(usable, recorded, model)
    return out


def targeting(benefit: Floats, weight: Floats, share: float) -> Ints:
    """Arms of the policy that contacts the ``share`` of total weight with the largest positive
    benefit, each with its best action (arm k + 1 for action k); 0 = no action."""
    best = benefit.argmax(axis=1)
    gain = benefit[np.arange(len(benefit)), best]
    order = np.argsort(-gain, kind="stable")
    budget = share * weight.sum()
    within = np.cumsum(weight[order]) <= budget + 1e-9
    chosen = order[within & (gain[order] > 0)]
    arms: Ints = np.zeros(len(benefit), dtype=np.int64)
    arms[chosen] = best[chosen] + 1
    return arms


def supported(model: JourneyUplift, logged_arm: Ints, estimated: Floats) -> Bools:
    """(n, actions): whether the logging policy explored action k at each decision point, by
    the model's floors, or for a model without them by floors from these rows."""
    floors = getattr(model, "support_floor_", None)
    if floors is None:
        floors = support_floors(logged_arm, estimated)
    return within_support(estimated, floors)


def unsupported_share(target: Ints, support: Bools, weight: Floats) -> float:
    """The weighted share of a policy's contacts (``target`` > 0) off ``support``."""
    contacts = np.flatnonzero(target > 0)
    total = float(weight[contacts].sum())
    if total <= 0:
        return 0.0
    off = ~support[contacts, target[contacts] - 1]
    return float(weight[contacts][off].sum()) / total


def _weighted(terms: Floats, weight: Floats) -> Estimate:
    """The weighted mean as an Estimate (its terms rescaled so their plain mean is it)."""
    return Estimate.of(terms * weight / weight.mean())


def policy_value(model: JourneyUplift, frame: pd.DataFrame, control_rate: float) -> PolicyValue:
    """The model's targeting policy against the logging policy on ``frame`` (a decision frame
    the model was not fitted on)."""
    label = frame[LABEL_OF[model.outcome]].to_numpy(np.float64)
    rows = np.flatnonzero(np.isfinite(label))
    if len(rows) < 2:
        raise ValueError("fewer than two decision points with a known outcome")
    part = frame.iloc[rows]
    good = model.outcome == "convert"  # else the outcome is churn: not churning is the reward
    reward = label[rows] if good else 1.0 - label[rows]
    arms_p = model.predict_arms(part)
    q = arms_p if good else 1.0 - arms_p
    # The ranking is the model's own uplift (what the service serves; an X-learner's differs
    # from its arms' difference), the arms' outcome rates are the doubly robust regression.
    benefit = model.predict(part) * (1.0 if good else -1.0)
    codes = action_codes(part["action"].tolist(), model.actions_, lenient=True)
    weight = part["weight"].to_numpy(np.float64)
    contact_share = float(weight[codes != -1].sum() / weight.sum())
    logged_arm = np.where(codes >= 0, codes + 1, 0).astype(np.int64)
    estimated = population_propensities(model.propensities(part), control_rate)
    support = supported(model, logged_arm, estimated)
    off_support = unsupported_share(targeting(benefit, weight, contact_share), support, weight)
    target = targeting(np.where(support, benefit, -np.inf), weight, contact_share)
    prop = logged_propensity(logged_arm, part["propensity"].to_numpy(np.float64), estimated)
    # A contact with an action the model does not know never matches its policy: its term is
    # the model's value of the target arm alone. Logged as any other arm (with propensity 1,
    # unused) that is not the target, the estimator computes exactly that.
    other = codes == OTHER_ACTION
    logged_arm[other] = (target[other] + 1) % q.shape[1]
    prop[other] = 1.0
    dr = doubly_robust(reward, logged_arm, prop, target, q)
    policy = _weighted(dr.terms, weight)
    logged = _weighted(reward, weight)
    return PolicyValue(policy, logged, incremental(policy, logged), contact_share, model.outcome,
                       off_support)


def paired(a: PolicyValue, b: PolicyValue) -> Estimate:
    """Policy a's value minus policy b's, paired row by row (both on the same frame)."""
    return incremental(a.policy, b.policy)


def significantly_below(diff: Estimate) -> bool:
    """The difference's 95 % interval lies wholly below zero."""
    return bool(np.isfinite(diff.se) and diff.value + Z95 * diff.se < 0)


def describe(v: PolicyValue, version: str) -> str:
    """One sentence a data scientist can check: the policy, the logging policy and the gap."""
    lo, hi = v.lift.interval(Z95)
    said = (f"off-policy (doubly robust), contacting the logged {v.contact_share:.1%} of "
            f"decisions as v{version} ranks them, {v.policy.value:.2%} {v.good} vs "
            f"{v.logged.value:.2%} as logged, a difference of {v.lift.value:+.2%} "
            f"(95 % CI {lo:+.2%} .. {hi:+.2%})")
    if v.unsupported >= 0.005:
        said += (f"; {v.unsupported:.1%} of the contacts it would rank first send an action the "
                 "log almost never sent to such customers, so it is judged where the log can "
                 "check it")
    return said
