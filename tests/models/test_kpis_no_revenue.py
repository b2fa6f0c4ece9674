"""CLV of a store whose conversions carry no value (a Segment track export without revenue):
the revenue figures are unknown, so null, never a 0 that reads as a real figure; a store where
some conversions carry one keeps its figures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from features.events import EventArrays
from models.kpis import journey_kpis
from models.kpis_definitions import DEFINITIONS
from tests.models.test_journey_map import AS_OF, EVENTS, PARAMS, SPEC, arrays
from tests.models.test_kpis import GROUPS

PURCHASE = SPEC.event_types.index("purchase")


def rows(ev: EventArrays) -> list[dict[str, Any]]:
    """Every row of the KPIs: overall, each group's and each month's."""
    k = journey_kpis(ev, SPEC, AS_OF, PARAMS, GROUPS)
    return [k["overall"], *k["by"]["kind"], *k["by"]["month"]]


def test_no_conversion_value_leaves_revenue_and_clv_null() -> None:
    ev = arrays(EVENTS)
    assert (ev.etype == PURCHASE).any() and np.isnan(ev.value).all()
    for row in rows(ev):
        assert row["clv"]["value"] is None, row["group"]
        assert row["clv"]["annual_revenue_per_customer"] is None, row["group"]
    # The lifetime reads the retention rate, not revenue: still known.
    lifetimes = [r["clv"]["expected_lifetime_years"] for r in rows(ev)]
    assert any(v is not None for v in lifetimes)


def test_values_on_other_events_only_are_no_revenue() -> None:
    """Revenue is counted on conversions: a value on a page view says nothing of it."""
    ev = arrays(EVENTS)
    ev.value[:] = np.where(ev.etype != PURCHASE, 10.0, np.nan)
    assert all(r["clv"]["annual_revenue_per_customer"] is None for r in rows(ev))


def test_one_valued_conversion_keeps_zero_revenue_of_the_others() -> None:
    """One conversion with a value (c0's on day 6): the store records revenue, so a group or
    month whose buyers' conversions carry none has a revenue of 0 (March: c2's purchase;
    April: c0's second), not null. Groups without an active buyer in the period (group b, the
    customers without a group, and February) have no time to spread revenue over: null."""
    ev = arrays(EVENTS)
    first = int(np.flatnonzero(ev.etype == PURCHASE)[0])
    ev.value[first] = 40.0
    got = rows(ev)
    annual = {r["group"]: r["clv"]["annual_revenue_per_customer"] for r in got[1:]}
    assert {g for g, a in annual.items() if a is None} == {"b", "(none)", "1970-02"}
    assert annual["1970-03"] == annual["1970-04"] == 0.0
    assert annual["a"] is not None and annual["a"] > 0
    assert annual["1970-01"] is not None and annual["1970-01"] > 0
    overall = got[0]["clv"]
    assert overall["value"] == pytest.approx(
        overall["annual_revenue_per_customer"] * overall["expected_lifetime_years"], rel=1e-2)


def test_the_definition_says_when_clv_is_null() -> None:
    assert "no revenue known" in DEFINITIONS["clv"]
