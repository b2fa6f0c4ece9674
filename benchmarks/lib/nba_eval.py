"""Valuing next-best-action policies on simulated holdout customers with the simulator's true
effects, and off-policy estimates of the learned policy from a randomised log.

Every policy chooses within the same rules (catalog eligibility, contact caps, cool-downs,
exclusions, from each customer's real history): what differs is only how it ranks. A choice is
worth ``value_of`` with the true effects (the arbitration's own formula), "no action" 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.decisions import vectors_frame
from features.history import HistoryIndex
from features.online import OnlineFeatures
from features.spec import FeatureSpec
from models.arbitration import Customer, arbitrate, value_of
from models.catalog import Catalog
from models.contacts import contacts_from_arrays
from models.ope import doubly_robust, incremental, ips, snips
from models.uplift_model import JourneyUplift

Floats = npt.NDArray[np.float64]
Uplift = dict[str, dict[str, float]]
OUTCOMES = ("convert", "churn")
BIG = 1e6  # an uplift that makes any action worth recommending (to find what rules allow)


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
        for a in catalog.ids:
            d = arbitrate(catalog, c, {a: {"convert": BIG}}, h.now_us, top_k=1, exploration=0.0)
            if d.actions:
                ok.append(a)
        out.append(ok)
    return out


def greedy(catalog: Catalog, h: Holdout, uplifts: Sequence[Uplift]) -> list[str | None]:
    """Each customer's first-ranked action under ``uplifts`` (no exploration)."""
    out: list[str | None] = []
    for c, u in zip(h.customers, uplifts, strict=True):
        d = arbitrate(catalog, c, u, h.now_us, top_k=1, exploration=0.0)
        out.append(d.actions[0].action if d.actions else None)
    return out


def true_effects(oracle: pd.DataFrame, actions: Sequence[str]) -> list[Uplift]:
    """The oracle's per-customer effects in the arbitration's outcome terms."""
    rows = oracle.to_dict("records")
    return [{a: {"convert": r[f"effect_convert_{a}"], "churn": r[f"effect_inactive_{a}"]}
             for a in actions} for r in rows]


def policy_value(catalog: Catalog, h: Holdout, choice: Sequence[str | None],
                 truth: Sequence[Uplift]) -> float:
    """Mean true incremental value per customer of a policy's choices."""
    total = 0.0
    for c, a, t in zip(h.customers, choice, truth, strict=True):
        if a is not None:
            total += value_of(catalog, a, c.features, t[a])
    return total / len(choice)


def best_single(catalog: Catalog, h: Holdout, allow: list[list[str]],
                truth: Sequence[Uplift]) -> tuple[str, float]:
    """The one action that, sent to everyone the rules allow, is worth most (in hindsight)."""
    best = ("", -np.inf)
    for a in catalog.ids:
        choice = [a if a in ok else None for ok in allow]
        v = policy_value(catalog, h, choice, truth)
        if v > best[1]:
            best = (a, v)
    return best


def random_choice(allow: list[list[str]], seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    return [ok[rng.integers(len(ok))] if ok else None for ok in allow]


def uplift_dicts(frame: pd.DataFrame, models: Mapping[str, JourneyUplift],
                 arms: bool = False) -> list[Uplift]:
    """Per customer {action: {outcome: value}} from the uplift models: the uplift, or with
    ``arms`` the response probability P(outcome | action) (the "propensity" ranking)."""
    out: list[Uplift] = [{} for _ in range(len(frame))]
    for outcome, model in models.items():
        values = model.predict_arms(frame)[:, 1:] if arms else model.predict(frame)
        for i, row in enumerate(values.tolist()):
            for a, v in zip(model.actions_, row, strict=True):
                out[i].setdefault(a, {})[outcome] = v
    return out


@dataclass(frozen=True)
class Log:
    """A randomised log: per (replica, customer) the arm drawn (0 none, k = action k-1), its
    probability, and the outcomes that followed."""

    customer: npt.NDArray[np.int64]
    arm: npt.NDArray[np.int64]
    propensity: Floats
    outcomes: dict[str, Floats]  # "convert": converted, "churn": inactive


def outcome_weights(catalog: Catalog, h: Holdout, choice: Sequence[str | None]
                    ) -> dict[str, Floats]:
    """Per customer and outcome: the money one unit of the outcome is worth under the target
    policy's action (value x the action's multiplier; 0 where it chooses nothing)."""
    out = {o: np.zeros(len(choice)) for o in OUTCOMES}
    for i, (c, a) in enumerate(zip(h.customers, choice, strict=True)):
        if a is None:
            continue
        action = catalog.action(a)
        for ov in catalog.outcomes:
            out[ov.outcome][i] = ov.of(c.features) * action.value[ov.outcome]
    return out


def off_policy(catalog: Catalog, h: Holdout, choice: Sequence[str | None], log: Log,
               q_arms: Mapping[str, Floats]) -> dict[str, float]:
    """IPS, SNIPS and doubly robust estimates of the policy's incremental value over doing
    nothing. The value is linear in the outcomes, so the per-row reward is the outcomes
    weighted by what they are worth under the policy's action; both the policy's and the
    all-"no action" estimates use those weights row by row (a paired difference)."""
    index = {a: k + 1 for k, a in enumerate(catalog.ids)}
    target_c = np.array([index[a] if a is not None else 0 for a in choice], np.int64)
    w = outcome_weights(catalog, h, choice)
    c = log.customer
    reward = sum(w[o][c] * log.outcomes[o] for o in OUTCOMES)
    q = sum(w[o][c, None] * q_arms[o][c] for o in OUTCOMES)  # (rows, arms)
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
