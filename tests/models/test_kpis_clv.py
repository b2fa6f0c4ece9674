"""The CLV's value per year V counts revenue over the time buyers were *active*, as the
retention (and so the lifetime L) defines it: a lapsed buyer's time counts nothing until they
come back, so V and L describe the same customer. Hand-worked cases whose answers differ from
the former "revenue per year as a customer" (from the first event to as_of), and the
vectorised active time against a customer-by-customer, day-by-day count."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from features.spec import DAY_US
from models.journey_events import StageEvents
from models.journey_map import JourneyMapParams
from models.kpis import Grouping, journey_kpis
from models.kpis_retention import active_spans
from tests.models.test_journey_map import SPEC, arrays
from tests.models.test_kpis_retention import AS_OF, Event, buy, contact, valued, view

TEN_DAYS = JourneyMapParams(retention_days=10, lookback_days=None)

# Active (after the first purchase, with activity in the 10 days before), as of day 100:
# c0 buys on day 0, views on day 5, lapses on day 15, buys again on day 50 and lapses on
#    day 60, views on day 95: active on days 0-15, 50-60 and 95-100, 30 days.
# c1 views on day 40 before buying on day 45: active from day 45 (not 40) to 55, 10 days.
# c2 buys on day 60 and is only contacted on day 65 (no activity): active 60-70, 10 days.
# c3 never buys: never active.
# c4 buys on day 85 and views on day 92: active 85-100, 15 days; c5 buys on day 82: 82-92.
# Retention over [90, 100): c4 and c5 are active at day 90, c4 still at day 100: 1 of 2.
EVENTS: list[Event] = [
    buy(0, 0), view(0, 5), buy(0, 50), view(0, 95),
    view(1, 40), buy(1, 45),
    buy(2, 60), contact(2, 65),
    view(3, 10), view(3, 90),
    buy(4, 85), view(4, 92),
    buy(5, 82),
]
HALVES = Grouping(np.array([0, 0, 1, 1, 0, 1]), ("x", "y"))  # x: c0, c1, c4; y: c2, c3, c5


@pytest.fixture(scope="module")
def kpis() -> dict[str, Any]:
    return journey_kpis(valued(EVENTS, 6), SPEC, AS_OF, TEN_DAYS, {"half": HALVES})


def test_value_per_active_year_overall(kpis: dict[str, Any]) -> None:
    """600 of revenue (6 purchases of 100) over the 75 days buyers were active: 2,920 a year;
    the lifetime (10 / 365) / (1 - 1/2) years; the CLV 600 / 75 x 20 = 160. Revenue per year
    as a customer (323 days from each first event to day 100) made it 678 and the CLV 37.15,
    under the 100 an active buyer's purchase is worth."""
    clv = kpis["overall"]["clv"]
    assert kpis["overall"]["retention_rate"]["value"] == 0.5
    assert clv["annual_revenue_per_customer"] == pytest.approx(600 / 75 * 365, abs=0.01)
    assert clv["expected_lifetime_years"] == pytest.approx(20 / 365, abs=1e-3)
    assert clv["value"] == pytest.approx(160.0, abs=0.01)


def test_value_per_active_year_by_group(kpis: dict[str, Any]) -> None:
    """x: 400 over 30 + 10 + 15 days; y: 200 over 10 + 10 days (c3, never a buyer, adds no
    time, where it added 90 days as a customer); c5 lapsed: 0 of 1 kept, one window."""
    x, y = kpis["by"]["half"]
    assert x["clv"]["annual_revenue_per_customer"] == pytest.approx(400 / 55 * 365, abs=0.01)
    assert y["clv"]["annual_revenue_per_customer"] == pytest.approx(200 / 20 * 365, abs=0.01)
    assert y["retention_rate"]["value"] == 0.0
    assert y["clv"]["value"] == pytest.approx(200 / 20 * 10, abs=0.01)


def test_value_per_active_year_by_month(kpis: dict[str, Any]) -> None:
    """Each month's revenue over the time buyers were active in it, whether or not they have
    an event in the month: January [0, 31) c0's 15 days; February [31, 59) c0's 9 (from day
    50) and c1's 10; March [59, 90) c0's last day (no March event), c2's 10, c4's 5 and c5's
    8; April [90, 100) c0's 5, c4's 10 and c5's 2 (no April event), no purchase. They add up
    to the whole history's 75 days."""
    months = {r["group"]: r["clv"]["annual_revenue_per_customer"] for r in kpis["by"]["month"]}
    assert list(months) == ["1970-01", "1970-02", "1970-03", "1970-04"]
    assert months["1970-01"] == pytest.approx(100 / 15 * 365, abs=0.01)
    assert months["1970-02"] == pytest.approx(200 / 19 * 365, abs=0.01)
    assert months["1970-03"] == pytest.approx(300 / 24 * 365, abs=0.01)
    assert months["1970-04"] == 0.0


def test_a_lapsed_buyer_does_not_dilute_the_value() -> None:
    """A buyer who bought once and lapsed long ago is worth the same per active year however
    late the KPIs are read; per year as a customer, the later the less."""
    events = [buy(0, 0), view(0, 5), buy(1, 10)]
    values = [journey_kpis(valued(events, 2), SPEC, day * DAY_US, TEN_DAYS, {})["overall"]
              ["clv"]["annual_revenue_per_customer"] for day in (40, 100)]
    assert values[0] == values[1] == pytest.approx(200 / 25 * 365, abs=0.01)


def test_no_buyer_no_value() -> None:
    """A group of customers none of whom bought has no active time: no value per year (not
    0), and no retention, so no CLV."""
    events = [buy(0, 85), view(0, 95), view(1, 90)]
    rows = journey_kpis(valued(events, 2), SPEC, AS_OF, TEN_DAYS,
                        {"g": Grouping(np.array([0, 1]), ("buyer", "browser"))})["by"]["g"]
    buyer, browser = rows
    assert buyer["clv"]["annual_revenue_per_customer"] == pytest.approx(100 / 15 * 365,
                                                                       abs=0.01)
    assert browser["customers"] == 1 and browser["clv"] == {
        "value": None, "annual_revenue_per_customer": None, "expected_lifetime_years": None}


def naive_active_days(e: StageEvents, c: int, lo: int, hi: int, retention_days: int) -> int:
    """Days d in [lo, hi) on which customer c is active (events on whole days): from d to
    d + 1 they are when they converted on day d or before and have activity on a day in
    [d + 1 - retention_days, d]."""
    mine = e.ev.cust == c
    conv_days = e.ev.ts[mine & e.conversion] // DAY_US
    act_days = set((e.ev.ts[mine & e.activity] // DAY_US).tolist())
    if not len(conv_days):
        return 0
    first = int(conv_days.min())
    return sum(1 for d in range(max(lo, first), hi)
               if any(a in act_days for a in range(d + 1 - retention_days, d + 1)))


def test_active_time_agrees_with_a_day_by_day_count() -> None:
    """On random whole-day events (purchases, views, carts, contacts), per customer and per
    window, with windows cutting through runs of activity."""
    rng = np.random.default_rng(11)
    kinds = ["purchase", "page_view", "action_sent", "add_to_cart"]
    events = [(int(c), float(d), kinds[int(k)], "direct", float("nan")) for c, d, k in zip(
        rng.integers(0, 40, 300), rng.integers(0, 100, 300), rng.choice(4, 300,
                                                                       p=[.1, .5, .2, .2]),
        strict=True)]
    e = StageEvents.before(arrays(events, customers=41), SPEC, AS_OF)  # c40: no event
    spans = active_spans(e, 20, AS_OF)
    got = spans.years_by_customer(41) * 365
    want = [naive_active_days(e, c, 0, 100, 20) for c in range(41)]
    assert got == pytest.approx(want, abs=1e-9) and sum(want) > 0
    edges = [0, 10, 31, 59, 60, 90, 100]
    by_window = spans.years_by_window([d * DAY_US for d in edges]) * 365
    assert by_window == pytest.approx(
        [sum(naive_active_days(e, c, lo, hi, 20) for c in range(41))
         for lo, hi in pairwise(edges)], abs=1e-9)
