"""Next-best-action eligibility: stage rules, conditions on predictions and features, consent."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.catalog import Catalog
from tests.models.arbitration_helpers import action, chosen, customer, decide, policy, why


def test_stage_rules(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3))
    d = decide(catalog, customer(stage="consideration"))
    ad = next(r for r in d.actions if r.action == "ad")
    assert "stage consideration in [consideration, decision]" in ad.reasons
    d = decide(catalog, customer(stage="retention"))
    assert why(d, "ad") == ("eligibility", "stage retention not in [consideration, decision]")
    d = decide(catalog, customer(stage=None))
    assert why(d, "ad")[1].startswith("stage unknown")
    assert "mail" in chosen(d)  # no stage rule: an unknown stage is fine


def test_conditions_on_predictions_and_features(make: Callable[..., Catalog]) -> None:
    rule = {"conditions": [{"on": "feature.csat_low", "op": ">=", "value": 1}]}
    catalog = make(policy(top_k=3), action("mail", eligibility=rule))
    d = decide(catalog, customer(churn=0.42, features={"aov": 60.0, "csat_low": 2.0}))
    call = next(r for r in d.actions if r.action == "call")
    assert "churn 0.42 ≥ 0.30" in call.reasons
    assert "csat_low 2 ≥ 1" in d.actions[0].reasons
    d = decide(catalog, customer(churn=0.12, features={"aov": 60.0, "csat_low": 0.0}))
    assert why(d, "call") == ("eligibility", "churn 0.12 is not ≥ 0.30")
    assert why(d, "mail") == ("eligibility", "csat_low 0 is not ≥ 1")
    for features in ({"aov": 60.0}, {"aov": 60.0, "csat_low": None}, {"csat_low": np.nan}):
        d = decide(catalog, customer(features=features))
        assert why(d, "mail") == ("eligibility", "csat_low is missing (needs ≥ 1)")
    d = decide(catalog, customer(churn=None))
    assert why(d, "call") == ("eligibility", "no churn prediction (needs ≥ 0.30)")
    # An infinite value is a number like any other; its reason used to raise (int(inf)).
    d = decide(catalog, customer(features={"aov": 60.0, "csat_low": -np.inf}))
    assert why(d, "mail") == ("eligibility", "csat_low -inf is not ≥ 1")
    d = decide(catalog, customer(features={"aov": 60.0, "csat_low": np.inf}))
    assert "csat_low inf ≥ 1" in d.actions[0].reasons


def test_text_conditions(make: Callable[..., Catalog]) -> None:
    rule = {"conditions": [{"on": "feature.region", "op": "!=", "value": "north"}]}
    catalog = make(action("mail", eligibility=rule))
    assert chosen(decide(catalog, customer(features={"aov": 60.0, "region": "south"}))) == ["mail"]
    d = decide(catalog, customer(features={"aov": 60.0, "region": "north"}))
    assert why(d, "mail") == ("eligibility", "region 'north' is not ≠ 'north'")
    d = decide(catalog, customer(features={"aov": 60.0, "region": 3.0}))
    assert why(d, "mail")[1] == "region is 3, not text (needs ≠ 'north')"


def test_consent(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3))
    d = decide(catalog, customer(consent={"email": False, "phone": False}))
    assert why(d, "mail") == ("eligibility", "no consent for email")
    assert "call" in chosen(d)  # call needs no consent (consent: false in its rules)
    strict = make(policy(top_k=3, default_consent=False))
    d = decide(strict, customer(consent={"display": True}))
    assert why(d, "mail") == ("eligibility", "no consent for email")
    assert chosen(d) == ["ad", "call"]


def test_every_failed_rule_is_reported(make: Callable[..., Catalog]) -> None:
    catalog = make(action("ad", eligibility={"stages": ["decision"]}))
    d = decide(catalog, customer(stage="awareness", consent={"display": False}))
    assert why(d, "ad")[1] == "stage awareness not in [decision]; no consent for display"


def test_no_stage_fails_a_rule_listing_every_stage(make: Callable[..., Catalog]) -> None:
    every = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]
    catalog = make(policy(top_k=3), action("mail", eligibility={"stages": every}))
    d = decide(catalog, customer(stage=None))
    assert why(d, "mail") == ("eligibility", f"stage unknown; needs one of [{', '.join(every)}]")
    assert chosen(d) == ["call"]  # no stage rule at all: open to a customer without a stage
    assert "mail" in chosen(decide(catalog, customer(stage="advocacy")))
