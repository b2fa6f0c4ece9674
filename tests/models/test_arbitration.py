"""Next-best-action for one customer on small hand-built catalogs: eligibility, value, contact
policy, ranking, and exploration with propensities that match what the policy really does."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from models.actions import load_catalog
from models.arbitration import arbitrate, value_of
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


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., Catalog]:
    """A catalog from BASE after some edits, loaded from a YAML file as a user would write it."""
    count = iter(range(1000))

    def build(*edits: Edit) -> Catalog:
        raw = copy.deepcopy(BASE)
        for edit in edits:
            edit(raw)
        path = tmp_path / f"actions_{next(count)}.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        return load_catalog(path)

    return build


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
    decision = arbitrate(catalog, who, UPLIFT if uplift is None else uplift, NOW, **kw)
    # Every catalog action is accounted for, exactly once.
    names = [r.action for r in decision.actions] + [s.action for s in decision.suppressed]
    assert sorted(names) == sorted(catalog.ids)
    return decision


def why(decision: Decision, action_id: str) -> tuple[str, str]:
    (s,) = [s for s in decision.suppressed if s.action == action_id]
    return s.stage, s.reason


def chosen(decision: Decision) -> list[str]:
    return [r.action for r in decision.actions]


# -- eligibility ------------------------------------------------------------------------


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


# -- value --------------------------------------------------------------------------------


def test_value_and_its_parts(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3), action("mail", value={"convert": 0.85}))
    d = decide(catalog, customer(features={"aov": 1000.0}))  # clipped to 100
    mail = d.actions[0]
    assert mail.action == "mail" and mail.rank == 1
    assert mail.outcome_values == {"convert": pytest.approx(85.0), "churn": -50.0}
    assert mail.uplift == {"convert": 0.03, "churn": 0.0}
    assert mail.value_unweighted == pytest.approx(0.03 * 85 - 0.1)
    assert mail.value == mail.value_unweighted and mail.weight == 1.0 and mail.cost == 0.1
    assert mail.giveaway == 0.0  # nobody would have bought without it
    assert "expected value 2.45 (convert +3.0 pts worth 85, cost 0.10)" in mail.reasons


def test_a_discount_costs_its_share_of_the_orders_expected_anyway(
    make: Callable[..., Catalog],
) -> None:
    """With a 15 % discount, orders worth 100 become 85: the 3 extra points of conversion earn
    0.03 x 85, but the 40 % who would have bought anyway now pay 85 instead of 100."""
    catalog = make(policy(top_k=3), action("mail", value={"convert": 0.85}))
    # 30 % would buy anyway: 0.03 x 85 - 0.3 x 100 x 0.15 - 0.1 = -2.05, held back.
    d = decide(catalog, customer(features={"aov": 100.0}, baseline={"convert": 0.3}))
    assert chosen(d) == ["ad", "call"]
    assert why(d, "mail") == ("value", "expected value -2.05 ≤ minimum 0")
    # 1 % would: 2.55 - 0.15 - 0.1 = 2.30, recommended with the give-away in its reasons.
    d = decide(catalog, customer(features={"aov": 100.0}, baseline={"convert": 0.01}))
    mail = d.actions[0]
    assert mail.action == "mail" and mail.giveaway == pytest.approx(0.15)
    assert mail.value_unweighted == pytest.approx(0.03 * 85 - 0.15 - 0.1)
    assert ("expected value 2.30 (convert +3.0 pts worth 85, discount on orders expected "
            "anyway 0.15, cost 0.10)") in mail.reasons
    # A response-rate ranking (no counterfactual, baseline 0) sends it whatever the baseline.
    d = decide(catalog, customer(features={"aov": 100.0}, baseline={"convert": 0.0}))
    assert chosen(d)[0] == "mail"


def test_a_discount_without_a_baseline_cannot_be_valued(make: Callable[..., Catalog]) -> None:
    catalog = make(action("mail", value={"convert": 0.85}))
    d = decide(catalog, customer(baseline={"churn": 0.1}))
    assert why(d, "mail") == (
        "value", "no convert probability without the action, so what its 15 % discount "
        "gives away is unknown")
    assert chosen(d) == ["ad"]  # actions that discount nothing need no baseline


def test_actions_without_uplift_cannot_be_recommended(make: Callable[..., Catalog]) -> None:
    d = decide(make(), customer(), uplift={"ad": {"convert": 0.02}})
    assert why(d, "mail") == ("value", "no uplift estimate, so its value is unknown")
    assert chosen(d) == ["ad"]
    d = decide(make(), customer(), uplift={"mail": {"convert": float("nan")}})
    assert why(d, "mail")[1].startswith("the convert uplift estimate is not a number")
    assert d.actions == () and d.no_action_reason is not None


def test_business_weight_flips_the_order(make: Callable[..., Catalog]) -> None:
    uplift = {"mail": {"convert": 0.03}, "ad": {"convert": 0.04}}  # mail 1.70, ad 1.90
    d = decide(make(policy(top_k=2)), customer(), uplift)
    assert chosen(d) == ["ad", "mail"]
    d = decide(make(policy(top_k=2), action("mail", weight=2.0)), customer(), uplift)
    assert chosen(d) == ["mail", "ad"]
    assert [r.rank for r in d.actions] == [1, 2]
    mail = d.actions[0]
    assert mail.value == pytest.approx(3.4) and mail.value_unweighted == pytest.approx(1.7)
    assert any("business weight 2" in r for r in mail.reasons)


def test_minimum_value_and_no_action(make: Callable[..., Catalog]) -> None:
    uplift = {"mail": {"convert": 0.001}, "ad": {"convert": 0.0}, "call": {"churn": 0.0}}
    d = decide(make(), customer(), uplift)  # mail 0.06 - 0.1 = -0.04
    assert d.actions == ()
    assert why(d, "mail") == ("value", "expected value -0.04 ≤ minimum 0")
    assert d.no_action_reason == "no action is worth more than the minimum 0 (best: mail at -0.04)"
    assert d.propensity == 1.0 and not d.explored
    d = decide(make(policy(min_value=1.0)), customer())
    assert chosen(d) == ["mail"]  # 1.70 > 1; ad 0.70 is not
    assert why(d, "ad") == ("value", "expected value 0.70 ≤ minimum 1")


def test_nothing_eligible(make: Callable[..., Catalog]) -> None:
    d = decide(make(), customer(stage="purchase", churn=0.1, consent={"email": False}))
    assert d.actions == ()
    assert d.no_action_reason == "no action is eligible for this customer"
    assert {s.stage for s in d.suppressed} == {"eligibility"}


def test_top_k(make: Callable[..., Catalog]) -> None:
    catalog = make()
    assert chosen(decide(catalog, customer())) == ["mail"]  # policy default: 1
    assert chosen(decide(catalog, customer(), top_k=2)) == ["mail", "ad"]
    d = decide(catalog, customer(), top_k=2)
    assert why(d, "call") == ("value", "ranked below the top 2")
    assert chosen(decide(catalog, customer(), top_k=5)) == ["mail", "ad", "call"]
    with pytest.raises(ValueError, match="top_k"):
        decide(catalog, customer(), top_k=0)


# -- contact policy -------------------------------------------------------------------------

JUST = 1 / DAY_US  # a microsecond, in days


def test_global_cap_window_edges(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3, caps=[{"max": 2, "window_days": 7}]))
    inside = (sent(None, "sms", 1), sent("ad", "display", 7 - 2 * JUST))
    d = decide(catalog, customer(contacts=inside))
    assert d.actions == ()
    for name in ("mail", "ad", "call"):
        assert why(d, name) == ("contact_policy", "contact cap 2 per 7 days reached (2 sent)")
    assert d.no_action_reason is not None and "held back" in d.no_action_reason
    outside = (sent(None, "sms", 1), sent("ad", "display", 7))
    d = decide(catalog, customer(contacts=outside))
    assert chosen(d) == ["mail"]  # one more allowed, although top_k is 3
    for name in ("ad", "call"):
        assert why(d, name) == (
            "contact_policy",
            "contact cap 2 per 7 days reached (1 sent, 1 earlier in this list)",
        )
    assert "contact cap 2 per 7 days: 1 sent" in d.actions[0].reasons


def test_contacts_after_now_count_as_just_sent(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(caps=[{"max": 1, "window_days": 7}]))
    d = decide(catalog, customer(contacts=(sent(None, "sms", -0.5),)))
    assert d.actions == ()


def test_channel_cap(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3, caps=[{"max": 1, "window_days": 7, "channel": "email"}]))
    d = decide(catalog, customer(contacts=(sent(None, "email", 6.9),)))
    assert why(d, "mail") == ("contact_policy", "email cap 1 per 7 days reached (1 sent)")
    assert chosen(d) == ["ad", "call"]
    d = decide(catalog, customer(contacts=(sent(None, "email", 7.0), sent(None, "sms", 0.1))))
    assert chosen(d) == ["mail", "ad", "call"]


def test_action_cap(make: Callable[..., Catalog]) -> None:
    catalog = make(action("mail", caps=[{"max": 2, "window_days": 30}]))
    two = (sent("mail", "email", 10), sent("mail", "email", 30 - JUST * 2))
    d = decide(catalog, customer(contacts=two))
    assert why(d, "mail") == ("contact_policy", "mail cap 2 per 30 days reached (2 sent)")
    assert chosen(d) == ["ad"]
    # Another action on the same channel does not count toward mail's own cap.
    others = (sent("mail", "email", 10), sent("other", "email", 1), sent("mail", "email", 30))
    assert chosen(decide(catalog, customer(contacts=others))) == ["mail"]


def test_cooldown(make: Callable[..., Catalog]) -> None:
    catalog = make(action("mail", cooldown_days=7))
    d = decide(catalog, customer(contacts=(sent("mail", "email", 3.2),)))
    assert why(d, "mail") == ("contact_policy", "cool-down 7 days: sent 3.2 days ago")
    assert chosen(decide(catalog, customer(contacts=(sent("mail", "email", 7),)))) == ["mail"]
    assert chosen(decide(catalog, customer(contacts=(sent("ad", "email", 1),)))) == ["mail"]


def test_exclusion_windows_work_both_ways(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3), action("mail", excludes={"actions": ["ad"], "days": 14}))
    d = decide(catalog, customer(contacts=(sent("ad", "display", 3),)))
    assert why(d, "mail") == ("exclusion", "excluded for 14 days after ad (sent 3.0 days ago)")
    d = decide(catalog, customer(contacts=(sent("mail", "email", 13.9),)))
    assert why(d, "ad") == ("exclusion", "excluded for 14 days after mail (sent 13.9 days ago)")
    d = decide(catalog, customer(contacts=(sent("mail", "email", 14), sent("ad", "display", 14))))
    assert chosen(d) == ["mail", "call"]  # outside the window; still not both in one list
    assert why(d, "ad") == ("exclusion", "not sent together with mail (earlier in this list)")


def test_exclusion_within_one_list(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3), action("call", excludes={"actions": ["mail"]}))
    d = decide(catalog, customer())
    assert chosen(d) == ["mail", "ad"]
    assert why(d, "call") == ("exclusion", "not sent together with mail (earlier in this list)")


def test_a_list_never_exceeds_a_cap_counting_its_own_entries(
    make: Callable[..., Catalog],
) -> None:
    catalog = make(
        policy(top_k=3, caps=[{"max": 2, "window_days": 7, "channel": "email"}]),
        action("news", channel="email", cost=0.1),
        action("promo", channel="email", cost=0.1),
    )
    uplift = UPLIFT | {"news": {"convert": 0.025}, "promo": {"convert": 0.02}}
    d = decide(catalog, customer(contacts=(sent(None, "email", 2),)), uplift)
    emails = [r.action for r in d.actions if r.channel == "email"]
    assert emails == ["mail"]  # 1 sent + 1 in the list = the cap of 2
    assert why(d, "news") == (
        "contact_policy",
        "email cap 2 per 7 days reached (1 sent, 1 earlier in this list)",
    )
    assert chosen(d) == ["mail", "ad", "call"]


# -- exploration -------------------------------------------------------------------------


def test_no_exploration_at_zero(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(exploration=0.0))
    rng = np.random.default_rng(7)
    for _ in range(300):
        d = decide(catalog, customer(), rng=rng)
        assert not d.explored and d.propensity == 1.0 and chosen(d) == ["mail"]


def test_propensity_formula(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(exploration=0.2))
    rng = np.random.default_rng(3)
    seen = {}
    for _ in range(400):
        d = decide(catalog, customer(), rng=rng)
        seen[(chosen(d)[0], d.explored)] = d.propensity
    # Three candidates: greedy mail 0.8 + 0.2 / 3, the others 0.2 / 3 each.
    assert seen[("mail", False)] == pytest.approx(0.8 + 0.2 / 3)
    assert seen[("mail", True)] == pytest.approx(0.8 + 0.2 / 3)
    assert seen[("ad", True)] == pytest.approx(0.2 / 3)
    assert seen[("call", True)] == pytest.approx(0.2 / 3)


def _frequencies(
    catalog: Catalog, who: Customer, uplift: Any, n: int, eps: float
) -> tuple[Counter[str], dict[str, float]]:
    rng = np.random.default_rng(20260101)
    counts: Counter[str] = Counter()
    propensity: dict[str, float] = {}
    for _ in range(n):
        d = decide(catalog, who, uplift, exploration=eps, rng=rng)
        first = chosen(d)[0] if d.actions else "<none>"
        counts[first] += 1
        assert propensity.setdefault(first, d.propensity) == pytest.approx(d.propensity)
    return counts, propensity


def test_first_slot_frequencies_match_the_propensities(make: Callable[..., Catalog]) -> None:
    catalog = make(action("mail", cooldown_days=7))
    # mail is in cool-down: it is neither recommended nor explored.
    who = customer(contacts=(sent("mail", "email", 1),))
    n, eps = 4000, 0.5
    counts, propensity = _frequencies(catalog, who, UPLIFT, n, eps)
    assert set(counts) == {"ad", "call"}
    assert propensity == {"ad": pytest.approx(0.5 + 0.25), "call": pytest.approx(0.25)}
    for name, p in propensity.items():
        # 5 standard errors: a correct policy fails this about once in 3 million runs.
        assert abs(counts[name] / n - p) < 5 * (p * (1 - p) / n) ** 0.5, (name, counts)


def test_no_action_has_a_propensity_too(make: Callable[..., Catalog]) -> None:
    catalog = make()
    losing = {"mail": {"convert": 0.0}, "ad": {"convert": 0.0}, "call": {"churn": 0.0}}
    n, eps = 4000, 0.5
    counts, propensity = _frequencies(catalog, customer(), losing, n, eps)
    assert propensity == {
        "<none>": pytest.approx(0.5),
        "mail": pytest.approx(0.5 / 3),
        "ad": pytest.approx(0.5 / 3),
        "call": pytest.approx(0.5 / 3),
    }
    assert sum(propensity.values()) == pytest.approx(1.0)
    for name, p in propensity.items():
        assert abs(counts[name] / n - p) < 5 * (p * (1 - p) / n) ** 0.5, (name, counts)


def test_an_exploration_pick_takes_slot_one_whatever_its_value(
    make: Callable[..., Catalog],
) -> None:
    catalog = make(policy(top_k=2))
    rng = np.random.default_rng(11)
    decisions = [decide(catalog, customer(), exploration=0.9, rng=rng) for _ in range(60)]
    explored = [d for d in decisions if d.explored and d.actions[0].action == "call"]
    assert explored
    d = explored[0]
    assert chosen(d) == ["call", "mail"]
    assert any(r.startswith("tried at random") for r in d.actions[0].reasons)
    assert not any(r.startswith("tried at random") for r in d.actions[1].reasons)
    assert why(d, "ad")[1].startswith("ranked below the top 2 (slot 1 went to call")


def test_exploration_argument_is_checked(make: Callable[..., Catalog]) -> None:
    with pytest.raises(ValueError, match="exploration"):
        decide(make(), customer(), exploration=1.0)


def test_without_candidates_the_greedy_answer_is_certain(make: Callable[..., Catalog]) -> None:
    who = customer(stage="purchase", churn=0.0, consent={"email": False})
    d = decide(make(policy(exploration=0.5)), who, rng=np.random.default_rng(0))
    assert d.actions == () and d.propensity == 1.0 and not d.explored


# -- the whole catalog, and value_of ---------------------------------------------------------


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
