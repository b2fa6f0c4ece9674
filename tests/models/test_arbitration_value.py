"""Next-best-action value and ranking: outcome values, discounts, weights, minimum value, top_k."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from models.catalog import Catalog
from tests.models.arbitration_helpers import action, chosen, customer, decide, policy, why


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
