"""Next-best-action on the default catalog: every action accounted for, value_of as ranked."""

from __future__ import annotations

import numpy as np
import pytest

from models.actions import load_catalog
from models.arbitration import value_of
from tests.models.arbitration_helpers import customer, decide, sent


def test_every_action_is_accounted_for_on_the_default_catalog() -> None:
    catalog = load_catalog()
    rng = np.random.default_rng(5)
    stages = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]
    channels = ["email", "display", "app", "call_center"]
    sources = [None, *catalog.ids]  # None: a contact from outside the catalog
    for _ in range(300):
        contacts = tuple(
            sent(
                sources[int(rng.integers(len(sources)))],
                str(rng.choice(channels)),
                float(rng.uniform(-1, 40)),
            )
            for _ in range(int(rng.integers(0, 12)))
        )
        who = customer(
            stage=str(rng.choice(stages)),
            churn=float(rng.random()),
            features={
                "avg_order_value": float(rng.uniform(0, 200)),
                "csat_low": float(rng.integers(0, 2)),
            },
            contacts=contacts,
            consent={c: bool(rng.random() < 0.9) for c in channels},
        )
        uplift = {
            a: {"convert": rng.normal(0, 0.03), "churn": rng.normal(0, 0.02)}
            for a in catalog.ids
            if rng.random() < 0.9
        }
        k = int(rng.integers(1, 4))
        d = decide(catalog, who, uplift, top_k=k, exploration=0.3, rng=rng)  # asserts coverage
        assert len(d.actions) <= k
        assert 0 < d.propensity <= 1
        assert (d.no_action_reason is None) == bool(d.actions)
        if not d.explored:
            values = [r.value for r in d.actions]
            assert values == sorted(values, reverse=True) and all(v > 0 for v in values)


def test_value_of_matches_the_ranked_value() -> None:
    catalog = load_catalog()
    features = {"avg_order_value": 62.0, "csat_low": 1.0}
    effects = {"convert": 0.031, "churn": -0.012}
    base = {"convert": 0.2, "churn": 0.3}
    who = customer(stage="retention", features=features, baseline=base)
    cases = [
        ("discount_email", effects),
        ("loyalty_offer", effects),
        ("support_outreach", {"convert": 0.02, "churn": -0.08}),
    ]
    for name, effect in cases:
        d = decide(catalog, who, {name: effect}, top_k=1, exploration=0.0)
        (ranked,) = d.actions
        assert ranked.action == name
        assert value_of(catalog, name, features, effect, base) == ranked.value_unweighted
    # discount_email keeps 85% of the order value: 0.031 x 62 x 0.85 + 0.012 x 60 - 0.1, less
    # 15 % of the orders expected anyway (0.2 x 62 x 0.15).
    expected = 0.031 * 62 * 0.85 + 0.012 * 60 - 0.2 * 62 * 0.15 - 0.1
    assert value_of(catalog, "discount_email", features, effects, base) == pytest.approx(expected)
    with pytest.raises(KeyError):
        value_of(catalog, "fax", features, effects, base)
    with pytest.raises(ValueError, match="discount_email: no convert probability"):
        value_of(catalog, "discount_email", features, effects, {})
