"""Next-best-action exploration: propensities that match how often each action is really chosen."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from models.catalog import Catalog
from models.recommendation import Customer
from tests.models.arbitration_helpers import (
    UPLIFT,
    action,
    chosen,
    customer,
    decide,
    policy,
    sent,
    why,
)


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
