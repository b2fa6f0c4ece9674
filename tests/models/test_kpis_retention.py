"""Retention as a survival rate: of the buyers active at a window's start, the share still
active at its end, on hand-built events whose answers are worked out by hand; the CLV's
lifetime reads it over the same window. Monthly retention is no longer 100 % by construction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from features.events import EventArrays
from features.spec import DAY_US
from models.journey_events import StageEvents
from models.journey_map import JourneyMapParams, journey_map
from models.kpis import Grouping, journey_kpis
from models.kpis_definitions import DEFINITIONS
from models.kpis_retention import active_at
from tests.models.test_journey_map import SPEC, arrays

AS_OF = 100 * DAY_US
PURCHASE = SPEC.event_types.index("purchase")
Event = tuple[int, float, str | None, str, float]
NAN = float("nan")


def buy(c: int, day: float) -> Event:
    return (c, day, "purchase", "direct", NAN)


def view(c: int, day: float) -> Event:
    return (c, day, "page_view", "search", NAN)


def contact(c: int, day: float) -> Event:
    return (c, day, "action_sent", "email", NAN)


# Retention over the last 10 days before day 100, [90, 100): c0-c9 buy on day 85, so they are
# active buyers at day 90; c0-c5 come back on day 95 (6 of 10 still active at day 100); c9 is
# only contacted (a contact is no activity). None of the others is in the base: c10 bought
# on day 50 and was silent from day 70 until day 95 (a return, not a survivor), c11 browses
# but never bought, c12 buys after the window began, c13 bought long ago and is contacted.
WINDOW_EVENTS: list[Event] = [
    *(buy(c, 85) for c in range(10)), *(view(c, 95) for c in range(6)), contact(9, 95),
    buy(10, 50), view(10, 70), view(10, 95),
    view(11, 85), view(11, 95),
    buy(12, 91),
    buy(13, 20), contact(13, 85), contact(13, 95),
]
TEN_DAYS = JourneyMapParams(retention_days=10, lookback_days=None)
BUYERS = Grouping(np.array([0] * 10 + [-1] * 4), ("buyers",))
HALVES = Grouping(np.array([0] * 5 + [1] * 5 + [-1] * 4), ("x", "y"))


def valued(events: list[Event], customers: int) -> EventArrays:
    """The events with 100 of revenue on each purchase."""
    ev = arrays(events, customers=customers)
    ev.value[:] = np.where(ev.etype == PURCHASE, 100.0, np.nan)
    return ev


@pytest.fixture(scope="module")
def window() -> dict[str, Any]:
    return journey_kpis(valued(WINDOW_EVENTS, 14), SPEC, AS_OF, TEN_DAYS,
                        {"cohort": BUYERS, "half": HALVES})


def rate(r: dict[str, Any]) -> tuple[int, int]:
    return r["count"], r["of"]


def test_six_of_ten_active_buyers_still_active(window: dict[str, Any]) -> None:
    retention = window["overall"]["retention_rate"]
    assert rate(retention) == (6, 10) and retention["value"] == 0.6
    assert retention["ci95"] is not None and retention["ci95"][0] < 0.6 < retention["ci95"][1]


def test_clv_reads_the_survival_over_its_window(window: dict[str, Any]) -> None:
    """The cohort's 10 buyers: 1,000 of revenue over their 130 days as active buyers (c0-c5
    from day 85 to 100; c6-c9 from day 85 until they lapse on day 95, their last 5 days as
    customers counting nothing), so 2,807.69 an active buyer-year; 60 % still active after 10
    days gives a lifetime of (10 / 365) / (1 - 0.6) years: 1000 / 130 x 10 / 0.4 = 192.31 a
    customer."""
    buyers = window["by"]["cohort"][0]
    assert buyers["group"] == "buyers" and rate(buyers["retention_rate"]) == (6, 10)
    assert buyers["clv"]["annual_revenue_per_customer"] == pytest.approx(1000 / 130 * 365,
                                                                         abs=0.01)
    assert buyers["clv"]["expected_lifetime_years"] == pytest.approx(10 / 365 / 0.4, abs=1e-3)
    assert buyers["clv"]["value"] == pytest.approx(192.31, abs=0.01)


def test_groups_label_customers_as_now(window: dict[str, Any]) -> None:
    x, y, none = window["by"]["half"]
    assert rate(x["retention_rate"]) == (5, 5)  # c0-c4 all came back: the lifetime's cap
    assert x["clv"]["expected_lifetime_years"] == TEN_DAYS.clv_years
    assert rate(y["retention_rate"]) == (1, 5)  # c5 came back; c6-c9 lapsed
    assert none["group"] == "(none)" and rate(none["retention_rate"]) == (0, 0)
    assert none["retention_rate"]["value"] is None and none["clv"]["value"] is None
    assert sum(r["retention_rate"]["of"] for r in (x, y, none)) == 10


def test_overall_is_the_journey_maps(window: dict[str, Any]) -> None:
    jm = journey_map(valued(WINDOW_EVENTS, 14), SPEC, AS_OF, TEN_DAYS)
    assert jm.kpis == {k: v for k, v in window["overall"].items()
                       if k not in ("group", "funnel")}


# Months with a 30-day retention window, as of day 100 (1970-04-11): February is days
# [31, 59), March [59, 90). c2 buys on day 30 and is active on day 45: active at February's
# start (day 31) and end (day 59). At March's start (active in [29, 59)): c0 and c1 (bought on
# day 40), c2. By its end (active in [60, 90)) only c0 (a visit on day 70) is: c1's last
# activity, day 50, is over 30 days before day 90 and it has no event in March at all; c2 is
# only contacted in March. c3 first buys in March: not in its base. Counting only March's
# cells (c0, c2, c3) with activity in the 30 days before its end, as before, gave 2 of 3.
MONTH_EVENTS: list[Event] = [
    buy(0, 40), view(0, 70),
    buy(1, 40), view(1, 50),
    buy(2, 30), view(2, 45), contact(2, 75),
    buy(3, 65),
]
THIRTY_DAYS = JourneyMapParams(retention_days=30, lookback_days=None)


@pytest.fixture(scope="module")
def months() -> dict[str, dict[str, Any]]:
    out = journey_kpis(valued(MONTH_EVENTS, 4), SPEC, AS_OF, THIRTY_DAYS, {})
    return {r["group"]: r for r in out["by"]["month"]}


def test_buyers_lapse_during_a_month(months: dict[str, dict[str, Any]]) -> None:
    march = months["1970-03"]
    assert march["customers"] == 3  # c0, c2, c3: c1 has no event in March
    assert rate(march["retention_rate"]) == (1, 3)  # c1, with no March event, is in the base
    # The lifetime counts in months: (31 / 365) / (1 - 1/3) years.
    assert march["clv"]["expected_lifetime_years"] == pytest.approx(31 / 365 * 1.5, abs=1e-3)
    assert rate(months["1970-02"]["retention_rate"]) == (1, 1)  # c2
    assert months["1970-02"]["clv"]["expected_lifetime_years"] == THIRTY_DAYS.clv_years


def test_a_month_without_active_buyers_at_its_start_has_no_retention(
        months: dict[str, dict[str, Any]]) -> None:
    january = months["1970-01"]  # c2 buys on day 30; nobody bought before January 1st
    assert january["retention_rate"] == {"value": None, "count": 0, "of": 0, "ci95": None}
    assert january["clv"]["value"] is None and january["clv"]["expected_lifetime_years"] is None


def test_the_partial_month_is_its_own_window(months: dict[str, dict[str, Any]]) -> None:
    """April so far, [90, 100): at day 90 c0 (visit on day 70) and c3 (bought on day 65) are
    active buyers; at day 100 (active in [70, 100)) c0 still is, c3 not. Nobody has an event
    in April, yet it has a row: its retention is a real figure."""
    april = months["1970-04"]
    assert april["customers"] == 0 and april["conversion_rate"]["value"] is None
    assert april["partial"] and rate(april["retention_rate"]) == (1, 2)
    assert april["clv"]["expected_lifetime_years"] == pytest.approx(10 / 365 / 0.5, abs=1e-3)


def test_history_shorter_than_the_window_has_no_retention() -> None:
    """With 90-day retention and every event after day 10 (80 days of history), nobody can be
    an active buyer at day 10 (as_of - 90 days): retention and CLV are unknown, never 0 or
    100 %; the revenue per customer-year is still known."""
    events = [buy(0, 20), view(0, 95), buy(1, 50), buy(2, 60), view(2, 61)]
    out = journey_kpis(valued(events, 3), SPEC, AS_OF, JourneyMapParams(), {})
    overall = out["overall"]
    assert overall["retention_rate"]["value"] is None and overall["retention_rate"]["of"] == 0
    assert overall["clv"]["value"] is None and overall["clv"]["expected_lifetime_years"] is None
    assert overall["clv"]["annual_revenue_per_customer"] is not None
    assert "null when no buyer was active" in DEFINITIONS["retention_rate"].lower()


def test_monthly_retention_is_not_100_percent_by_construction() -> None:
    """Every customer buys once and visits a few times, then stops: whatever month a buyer
    lapses in, that month's retention falls below 100 %."""
    rng = np.random.default_rng(3)
    events = [e for c in range(300) for e in (
        buy(c, float(rng.integers(0, 60))),
        *(view(c, float(d)) for d in rng.integers(0, 99, 3)))]
    out = journey_kpis(arrays(events, customers=300), SPEC, AS_OF, THIRTY_DAYS, {})
    values = [r["retention_rate"]["value"] for r in out["by"]["month"]]
    known = [v for v in values if v is not None]
    assert known and all(v < 1 for v in known)


def naive_active(ev: EventArrays, at: int, retention_days: int) -> set[int]:
    """Buyers active at ``at``, customer by customer (what ``active_at`` vectorises)."""
    e = StageEvents.before(ev, SPEC, AS_OF)
    out = set()
    for c in range(ev.n_customers):
        mine = e.ev.cust == c
        bought = bool((mine & e.conversion & (e.ev.ts < at)).any())
        recent = mine & e.activity & (e.ev.ts < at) & (e.ev.ts >= at - retention_days * DAY_US)
        if bought and recent.any():
            out.add(c)
    return out


def test_active_at_agrees_with_a_customer_by_customer_count() -> None:
    """On random whole-day events (so many fall exactly on the boundaries), with contacts."""
    rng = np.random.default_rng(7)
    kinds = ["purchase", "page_view", "action_sent", "add_to_cart"]
    events = [(int(c), float(d), kinds[int(k)], "direct", NAN) for c, d, k in zip(
        rng.integers(0, 40, 400), rng.integers(0, 100, 400), rng.integers(0, 4, 400),
        strict=True)]
    ev = arrays(events, customers=41)  # c40 has no event
    at = [0, 10, 31, 59, 60, 90, 99]
    got = active_at(StageEvents.before(ev, SPEC, AS_OF), [d * DAY_US for d in at], 20)
    assert got.shape == (41, len(at))
    for i, day in enumerate(at):
        assert set(np.flatnonzero(got[:, i]).tolist()) == naive_active(ev, day * DAY_US, 20)
