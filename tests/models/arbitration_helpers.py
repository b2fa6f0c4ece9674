"""Next-best-action tests' catalogs, customers and contacts, and checked calls to arbitrate."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from models.arbitration import arbitrate
from models.catalog import DAY_US, Catalog
from models.recommendation import Contact, Customer, Decision

NOW = 1_750_000_000_000_000
BASE: dict[str, Any] = {
    "outcomes": {
        "convert": {"value": {"feature": "aov", "default": 40.0, "min": 5, "max": 100}},
        "churn": {"value": -50.0},
    },
    "policy": {"exploration": 0.0},
    "actions": {
        "mail": {"channel": "email", "cost": 0.1},
        "ad": {
            "channel": "display",
            "cost": 0.5,
            "eligibility": {"stages": ["consideration", "decision"]},
        },
        "call": {
            "channel": "phone",
            "cost": 2.0,
            "eligibility": {
                "conditions": [{"on": "prediction.churn", "op": ">=", "value": 0.3}],
                "consent": False,
            },
        },
    },
}
# Uplifts that give every action a positive value for the default customer (aov 60):
# mail 0.03 x 60 - 0.1 = 1.70; ad 0.02 x 60 - 0.5 = 0.70; call 0.05 x 50 - 2 = 0.50.
UPLIFT = {
    "mail": {"convert": 0.03},
    "ad": {"convert": 0.02},
    "call": {"churn": -0.05},
}

Edit = Callable[[dict[str, Any]], None]


def policy(**kw: Any) -> Edit:
    return lambda raw: raw["policy"].update(kw)


def action(name: str, **kw: Any) -> Edit:
    return lambda raw: raw["actions"].setdefault(name, {}).update(kw)


def customer(
    stage: str | None = "consideration",
    churn: float | None = 0.42,
    features: Mapping[str, Any] | None = None,
    contacts: tuple[Contact, ...] = (),
    consent: Mapping[str, bool] | None = None,
    baseline: Mapping[str, float] | None = None,
) -> Customer:
    predictions = {"conversion": 0.08} | ({} if churn is None else {"churn": churn})
    return Customer(
        "c1",
        stage,
        predictions,
        {"aov": 60.0} if features is None else features,
        contacts,
        consent or {},
        {"convert": 0.0, "churn": 0.1} if baseline is None else baseline,
    )


def sent(action_id: str | None, channel: str, days_ago: float) -> Contact:
    return Contact(action_id, channel, NOW - round(days_ago * DAY_US))


def decide(catalog: Catalog, who: Customer, uplift: Any = None, **kw: Any) -> Decision:
    given = UPLIFT if uplift is None else uplift
    decision = arbitrate(catalog, who, given, NOW, **kw)
    # Every catalog action is accounted for, exactly once.
    names = [r.action for r in decision.actions] + [s.action for s in decision.suppressed]
    assert sorted(names) == sorted(catalog.ids)
    # Without its reasons (a scoring run's call) the decision is the same in every other way;
    # compared only where no exploration draw could differ between the two calls.
    if kw.get("exploration", catalog.policy.exploration) == 0:
        terse = arbitrate(catalog, who, given, NOW, **kw, explain=False)
        assert terse == replace(decision, actions=tuple(
            replace(r, reasons=()) for r in decision.actions))
    return decision


def why(decision: Decision, action_id: str) -> tuple[str, str]:
    (s,) = [s for s in decision.suppressed if s.action == action_id]
    return s.stage, s.reason


def chosen(decision: Decision) -> list[str]:
    return [r.action for r in decision.actions]
