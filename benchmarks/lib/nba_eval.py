"""Valuing next-best-action policies on simulated holdout customers with the simulator's true
effects, and off-policy estimates of the learned policy from a randomised log.

Every policy chooses within the same rules (catalog eligibility, contact caps, cool-downs,
exclusions, from each customer's real history): what differs is only how it ranks. A choice is
worth ``value_of`` with the true effects and no-action rates (the arbitration's own formula,
discounts included), "no action" 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.decisions import vectors_frame
from features.history import HistoryIndex
from features.online import OnlineFeatures
from features.spec import FeatureSpec
from models.arbitration import arbitrate, value_of
from models.catalog import Catalog
from models.contacts import contacts_from_arrays
from models.ope import doubly_robust, incremental, ips, snips
from models.recommendation import Customer
from models.uplift_model import JourneyUplift
from models.uplift_support import off_support

Floats = npt.NDArray[np.float64]
Uplift = dict[str, dict[str, float]]
Base = dict[str, float]  # outcome -> its probability with no action
OUTCOMES = ("convert", "churn")
BIG = 1e6  # an uplift that makes any action worth recommending (to find what rules allow)
# A ranking that ignores what would happen anyway (response rates, no counterfactual).
NO_BASELINE: Base = dict.fromkeys(OUTCOMES, 0.0)
# The oracle's columns for each outcome with no action.
ORACLE_NONE = {"convert": "p_convert_none", "churn": "p_inactive_none"}


@dataclass(frozen=True)
class Holdout:
    customers: list[Customer]
    frame: pd.DataFrame  # feature vectors as of the decision time
    now_us: int


def holdout(index: HistoryIndex, spec: FeatureSpec, ids: list[str], t_us: int) -> Holdout:
    vectors = OnlineFeatures(spec).vectors(index.many(ids, t_us), t_us,
                                           [index.attributes.of(c) for c in ids])
    frame = vectors_frame(vectors)
    records = cast(list[dict[str, Any]], frame.drop(columns="customer_id").to_dict("records"))
    customers = []
    for cid, rec in zip(ids, records, strict=True):
        code = rec.get("stage_current")
        stage = spec.stages[int(code)] if isinstance(code, float) and code == code else None
        customers.append(Customer(cid, stage, {}, rec,
                                  contacts_from_arrays(index.arrays(cid, t_us), spec)))
    return Holdout(customers, frame, t_us)


def allowed(catalog: Catalog, h: Holdout) -> list[list[str]]:
    """Per customer, the actions the rules allow now (eligibility and contact policy), found
    by offering each action alone with an overwhelming value."""
    out = []
    for c in h.customers:
        ok = []
        c = replace(c, baseline=NO_BASELINE)
        for a in catalog.ids:
            d = arbitrate(catalog, c, {a: {"convert": BIG}}, h.now_us, top_k=1, exploration=0.0)
            if d.actions:
                ok.append(a)
        out.append(ok)
    return out


def greedy(catalog: Catalog, h: Holdout, uplifts: Sequence[Uplift], base: Sequence[Base],
           unchecked: Sequence[frozenset[str]] | None = None) -> list[str | None]:
    """Each customer's first-ranked action under ``uplifts`` and no-action rates ``base``
    (no exploration), never one of its ``unchecked`` actions (``Customer.unsupported``)."""
    out: list[str | None] = []
    none: frozenset[str] = frozenset()
    for i, (c, u, b) in enumerate(zip(h.customers, uplifts, base, strict=True)):
        who = replace(c, baseline=b, unsupported=none if unchecked is None else unchecked[i])
        d = arbitrate(catalog, who, u, h.now_us, top_k=1, exploration=0.0)
        out.append(d.actions[0].action if d.actions else None)
    return out


def unchecked(frame: pd.DataFrame, models: Mapping[str, JourneyUplift]
              ) -> list[frozenset[str]]:
    """Per customer, the actions some model finds the log almost never sent to such a
    customer: what the service leaves out of its ranking (``serving.recommender``)."""
    out: list[frozenset[str]] = [frozenset() for _ in range(len(frame))]
    for model in models.values():
        support = model.supported(model.matrix(frame))
        if support is not None:
            out = [a | b for a, b in zip(out, off_support(model.actions_, support), strict=True)]
    return out


def true_effects(oracle: pd.DataFrame, actions: Sequence[str]) -> tuple[list[Uplift], list[Base]]:
    """The oracle's per-customer effects and no-action rates in the arbitration's terms."""
    rows = oracle.to_dict("records")
    effects = [{a: {"convert": r[f"effect_convert_{a}"], "churn": r[f"effect_inactive_{a}"]}
                for a in actions} for r in rows]
    return effects, [{o: r[col] for o, col in ORACLE_NONE.items()} for r in rows]


def policy_value(catalog: Catalog, h: Holdout, choice: Sequence[str | None],
                 truth: Sequence[Uplift], base: Sequence[Base]) -> float:
    """Mean true incremental value per customer of a policy's choices."""
    total = 0.0
    for c, a, t, b in zip(h.customers, choice, truth, base, strict=True):
        if a is not None:
            total += value_of(catalog, a, c.features, t[a], b)
    return total / len(choice)


def best_single(catalog: Catalog, h: Holdout, allow: list[list[str]],
                truth: Sequence[Uplift], base: Sequence[Base]) -> tuple[str, float]:
    """The one action that, sent to everyone the rules allow, is worth most (in hindsight)."""
    best = ("", -np.inf)
    for a in catalog.ids:
        choice = [a if a in ok else None for ok in allow]
        v = policy_value(catalog, h, choice, truth, base)
        if v > best[1]:
            best = (a, v)
    return best


def random_choice(allow: list[list[str]], seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    return [ok[rng.integers(len(ok))] if ok else None for ok in allow]


def uplift_dicts(frame: pd.DataFrame, models: Mapping[str, JourneyUplift],
                 arms: bool = False) -> tuple[list[Uplift], list[Base]]:
    """Per customer {action: {outcome: value}} and {outcome: no-action rate} from the uplift
    models: the uplift and the control arm's rate, or with ``arms`` the response probability
    P(outcome | action) and no baseline (the "propensity x value" ranking)."""
    out: list[Uplift] = [{} for _ in range(len(frame))]
    base: list[Base] = [dict(NO_BASELINE) for _ in range(len(frame))]
    for outcome, model in models.items():
        if arms:
            values = model.predict_arms(frame)[:, 1:]
        else:
            control, values = model.predict_matrix_with_control(model.matrix(frame))
            for i, p0 in enumerate(control.tolist()):
                base[i][outcome] = p0
        for i, row in enumerate(values.tolist()):
            for a, v in zip(model.actions_, row, strict=True):
                out[i].setdefault(a, {})[outcome] = v
    return out, base


@dataclass(frozen=True)
class Log:
    """A randomised log: per (replica, customer) the arm drawn (0 none, k = action k-1), its
    probability, and the outcomes that followed."""

    customer: npt.NDArray[np.int64]
    arm: npt.NDArray[np.int64]
    propensity: Floats
    outcomes: dict[str, Floats]  # "convert": converted, "churn": inactive


def arm_weights(catalog: Catalog, h: Holdout) -> dict[str, Floats]:
    """Per outcome, (customers, arms): the money one unit of the outcome is worth when that arm
    was taken (arm 0 no action: the outcome's value; arm k: times action k-1's multiplier, so
    an order placed with a discount code is worth what the customer paid)."""
    n = len(h.customers)
    out = {o: np.zeros((n, len(catalog.actions) + 1)) for o in OUTCOMES}
    for i, c in enumerate(h.customers):
        for ov in catalog.outcomes:
            v = ov.of(c.features)
            out[ov.outcome][i] = [v, *(v * a.value[ov.outcome] for a in catalog.actions)]
    return out


def off_policy(catalog: Catalog, h: Holdout, choice: Sequence[str | None], log: Log,
               q_arms: Mapping[str, Floats]) -> dict[str, float]:
    """IPS, SNIPS and doubly robust estimates of the policy's incremental value over doing
    nothing: each logged row's reward is what its outcomes were worth under the arm it got,
    and the policy's and the all-"no action" estimates are differenced row by row."""
    index = {a: k + 1 for k, a in enumerate(catalog.ids)}
    target_c = np.array([index[a] if a is not None else 0 for a in choice], np.int64)
    w = arm_weights(catalog, h)
    c = log.customer
    reward = sum(w[o][c, log.arm] * log.outcomes[o] for o in OUTCOMES)
    q = sum(w[o][c] * q_arms[o][c] for o in OUTCOMES)  # (rows, arms)
    cost = np.array([catalog.action(a).cost if a is not None else 0.0 for a in choice])
    target, none = target_c[c], np.zeros(len(c), np.int64)
    out: dict[str, float] = {}
    estimators: dict[str, Callable[..., object]] = {
        "ips": lambda t: ips(reward, log.arm, log.propensity, t),
        "snips": lambda t: snips(reward, log.arm, log.propensity, t),
        "dr": lambda t: doubly_robust(reward, log.arm, log.propensity, t, q),
    }
    for name, est in estimators.items():
        diff = incremental(est(target), est(none))  # type: ignore[arg-type]
        out[f"ope_{name}"] = float(diff.value - cost[c].mean())
        out[f"ope_{name}_se"] = float(diff.se)
    return out
