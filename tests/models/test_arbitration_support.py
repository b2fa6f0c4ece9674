"""Next-best-action for actions the log almost never sent to customers like this one
(``Customer.unsupported``): never ranked on the model's guess, only explored."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from models.catalog import Catalog
from tests.models.arbitration_helpers import chosen, customer, decide, policy, why

MAIL_UNCHECKED = replace(customer(), unsupported=frozenset({"mail"}))


def test_the_best_valued_action_is_not_ranked_when_the_log_cannot_check_it(
    make: Callable[..., Catalog],
) -> None:
    catalog = make(policy(top_k=3))
    assert chosen(decide(catalog, customer())) == ["mail", "ad", "call"]
    d = decide(catalog, MAIL_UNCHECKED)
    assert chosen(d) == ["ad", "call"] and d.propensity == 1.0
    stage, reason = why(d, "mail")
    assert stage == "value"
    assert reason == ("the log almost never sent it to customers like this, so its expected "
                      "value 1.70 is the model's guess, not ranked")


def test_with_nothing_checked_there_is_no_action_and_the_reason_says_why(
    make: Callable[..., Catalog],
) -> None:
    who = replace(customer(), unsupported=frozenset({"mail", "ad", "call"}))
    d = decide(make(), who)
    assert d.actions == ()
    assert d.no_action_reason is not None
    assert d.no_action_reason.startswith("every eligible action is held back: ad (the log almost")


def test_when_nothing_checked_is_worth_it_the_reason_names_the_unranked(
    make: Callable[..., Catalog],
) -> None:
    """mail's guess is worth 1.70, the checked actions nothing: "no action is worth more than
    the minimum" alone would contradict the 1.70 listed beside it."""
    losing = {"mail": {"convert": 0.03}, "ad": {"convert": 0.0}, "call": {"churn": 0.0}}
    d = decide(make(), MAIL_UNCHECKED, losing)
    assert d.actions == ()
    assert d.no_action_reason == (
        "no action is worth more than the minimum 0 (best: ad at -0.50); not ranked, as the "
        "log almost never sent them to customers like this: mail")


def test_an_ineligible_action_is_reported_as_ineligible_only(
    make: Callable[..., Catalog],
) -> None:
    who = replace(customer(stage="purchase"), unsupported=frozenset({"ad", "mail"}))
    d = decide(make(), who)  # every action accounted for exactly once (decide checks)
    assert why(d, "ad")[0] == "eligibility"
    assert why(d, "mail")[0] == "value"


def test_exploration_tries_it_as_often_as_the_logged_propensity_says(
    make: Callable[..., Catalog],
) -> None:
    catalog = make(policy(exploration=0.3))
    rng = np.random.default_rng(20261207)
    n = 6000
    counts: Counter[str] = Counter()
    propensity: dict[str, float] = {}
    for _ in range(n):
        d = decide(catalog, MAIL_UNCHECKED, rng=rng)
        first = chosen(d)[0]
        counts[first] += 1
        assert propensity.setdefault(first, d.propensity) == pytest.approx(d.propensity)
        if first != "mail":
            assert why(d, "mail")[1].endswith("only exploration sends it (ε = 30%)")
        else:
            assert d.explored and "mail" not in {s.action for s in d.suppressed}
    # Greedy is ad (mail is not ranked); each of the three candidates is explored 0.3 / 3.
    assert propensity == {"ad": pytest.approx(0.7 + 0.1), "mail": pytest.approx(0.1),
                          "call": pytest.approx(0.1)}
    for name, p in propensity.items():
        # 5 standard errors: a correct policy fails this about once in 3 million runs.
        assert abs(counts[name] / n - p) < 5 * (p * (1 - p) / n) ** 0.5, (name, counts)
