"""Journey KPIs by group and by month on the journey map's hand-built events, with answers
worked out by hand; the overall row is the journey map's KPIs."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from features.spec import DAY_US
from models.journey_events import StageEvents
from models.journey_map import journey_map, journey_map_and_kpis
from models.kpis import Grouping, journey_kpis, month_windows
from tests.models.test_journey_map import AS_OF, EVENTS, PARAMS, SPEC, arrays

# c0 and c2 bought (c0 twice); c1, c3, c5 never did; c4 only acts after as_of; c6 only rated.
GROUPS = {"kind": Grouping(np.array([0, 1, 0, 1, -1, 1, -1]), ("a", "b"))}


@pytest.fixture(scope="module")
def kpis() -> dict[str, Any]:
    return journey_kpis(arrays(EVENTS), SPEC, AS_OF, PARAMS, GROUPS)


def rate(r: dict[str, Any]) -> tuple[int, int]:
    return r["count"], r["of"]


def test_by_group_by_hand(kpis: dict[str, Any]) -> None:
    a, b, none = kpis["by"]["kind"]
    assert [r["group"] for r in (a, b, none)] == ["a", "b", "(none)"]
    assert (a["customers"], b["customers"], none["customers"]) == (2, 3, 1)  # c4: no event yet
    assert rate(a["conversion_rate"]) == (2, 2) and rate(b["conversion_rate"]) == (0, 3)
    # Retention over the last 8 days, [92, 100): c0 was an active buyer at day 92 (bought on
    # day 6, active on day 90) and did nothing since: lapsed. c2's activity before day 92 ends
    # on day 66, so it was not active at the window's start (its answer on day 95 is a return,
    # not a survival). Group b bought nothing.
    assert rate(a["retention_rate"]) == (0, 1) and rate(b["retention_rate"]) == (0, 0)
    assert rate(a["repeat_purchase_rate"]) == (1, 2)
    # CSAT: c0 gave 5, c2 gave 3: mean 4, sd sqrt(2), half-width 1.96 x sqrt(2) / sqrt(2).
    assert a["csat"]["mean"] == 4.0 and a["csat"]["count"] == 2
    assert a["csat"]["mean_ci95"] == pytest.approx([4 - 1.959964, 4 + 1.959964], abs=1e-4)
    assert rate(a["csat"]["satisfied"]) == (1, 2)
    assert a["nps"]["score"] == -100.0 and a["nps"]["ci95"] == [-100.0, -100.0]  # c2's last: 3
    assert none["csat"]["mean_ci95"] is None and none["nps"]["score"] == 100.0  # c6: 4, 9
    # Stages reached: c0 retention (a ticket), c2 advocacy (a review); c1 consideration and
    # c5 decision, c3 none (contacts only).
    assert [s["reached"] for s in a["funnel"]] == [2, 2, 2, 2, 2, 1]
    assert [s["reached"] for s in b["funnel"]] == [2, 2, 1, 0, 0, 0]
    assert rate(b["funnel"][2]["conversion_from_previous"]) == (1, 2)
    assert a["funnel"][0]["conversion_from_previous"] is None


def test_clv_formula() -> None:
    ev = arrays(EVENTS)
    ev.value[:] = np.where(ev.etype == SPEC.event_types.index("purchase"), 50.0, np.nan)
    a = journey_kpis(ev, SPEC, AS_OF, PARAMS, GROUPS)["by"]["kind"][0]
    # c0 and c2: 150 of revenue over the 39 days they were active buyers (activity in the 8
    # days before, after their first purchase). c0: days 6-18 (bought on day 6, activity to
    # day 10) and 90-98; c2: days 60-74 (bought on day 60, activity to day 66) and 95-100.
    # Their lapsed days (18-90, 74-95) and c0's days before buying count nothing (they made
    # the 365 a year of 150 over 100 + 50 days as customers). Retention 0/1 over the 8-day
    # window -> lifetime (8 / 365) / (1 - 0) years: one window.
    annual, lifetime = 150 / 39 * 365, 8 / 365
    assert a["clv"]["annual_revenue_per_customer"] == pytest.approx(annual, abs=0.01)
    assert a["clv"]["expected_lifetime_years"] == pytest.approx(lifetime, abs=1e-3)
    assert a["clv"]["value"] == pytest.approx(annual * lifetime, abs=0.01)


def test_by_month_by_hand(kpis: dict[str, Any]) -> None:
    # As of day 100 (1970-04-11): January is days 0-30, February 31-58, March 59-89, April
    # 90-99 (partial); the earlier months of the twelve have no events and no row.
    months = {r["group"]: r for r in kpis["by"]["month"]}
    assert list(months) == ["1970-01", "1970-02", "1970-03", "1970-04"]
    assert [r["partial"] for r in months.values()] == [False, False, False, True]
    jan, feb, mar, apr = months.values()
    assert jan["customers"] == 3 and rate(jan["conversion_rate"]) == (1, 3)  # c0, c1, c5
    assert jan["csat"]["mean"] == 5.0 and jan["nps"]["count"] == 0
    assert feb["customers"] == 2  # c3, c2
    # No buyer is active at a month's start (activity in the 8 days before it): c0's is over
    # by day 10 until it buys again on April 1st (day 90, not before it), c2 buys on day 60
    # (after March begins) and is silent from day 66 to 95. Retention unknown, not 0 or 100 %.
    for month in (jan, feb, mar, apr):
        assert rate(month["retention_rate"]) == (0, 0) and month["retention_rate"]["value"] is None
        assert month["clv"]["expected_lifetime_years"] is None
    assert rate(mar["conversion_rate"]) == (1, 1) and mar["nps"]["score"] == 100.0  # c2
    # April: c0 buys again (a repeat), c2 answers 3, c5 an unknown event, c6 rates 4 and 9.
    assert apr["customers"] == 4 and rate(apr["conversion_rate"]) == (1, 4)
    assert rate(apr["repeat_purchase_rate"]) == (1, 1)
    assert apr["nps"]["score"] == 0.0 and apr["csat"]["mean"] == 4.0


def test_month_windows() -> None:
    windows = month_windows(AS_OF, 3)
    assert [w[0] for w in windows] == ["1970-02", "1970-03", "1970-04"]
    assert windows[-1][2] == AS_OF and windows[0][1] == 31 * DAY_US
    assert month_windows(90 * DAY_US, 2)[-1][0] == "1970-03"  # April 1st: April not begun


def test_overall_is_the_journey_maps_kpis(kpis: dict[str, Any]) -> None:
    jm = journey_map(arrays(EVENTS), SPEC, AS_OF, PARAMS)
    overall = {k: v for k, v in kpis["overall"].items() if k not in ("group", "funnel")}
    assert overall == jm.kpis
    both, again = journey_map_and_kpis(arrays(EVENTS), SPEC, AS_OF, PARAMS, GROUPS)
    assert both.to_dict() == jm.to_dict() and again == kpis
    assert [s["reached"] for s in kpis["overall"]["funnel"]] == [r.reached for r in jm.funnel]
    json.dumps(kpis)  # what kpis.json holds


def test_groups_add_up(kpis: dict[str, Any]) -> None:
    rows = kpis["by"]["kind"]
    for key in ("customers",):
        assert sum(r[key] for r in rows) == kpis["overall"][key]
    for key in ("conversion_rate", "retention_rate", "repeat_purchase_rate"):
        assert sum(r[key]["count"] for r in rows) == kpis["overall"][key]["count"]
    e = StageEvents.before(arrays(EVENTS), SPEC, AS_OF)
    assert kpis["overall"]["customers"] == int(e.present.sum())


def test_absurd_scores_give_no_interval_rather_than_nulls() -> None:
    """A CSAT of 1e308 (the service once accepted one) overflows the squares: the mean and its
    interval are missing, never an interval of nulls that the API's schema refuses (a 500)."""
    from models.journey_map import JourneyMapParams
    from models.kpis import _csat

    cells = SimpleNamespace(csat_cell=np.array([0, 1, 2]), csat=np.array([1e308, 1e308, 4.0]))
    out = _csat(cells, JourneyMapParams(), np.array([0, 0, 1]), 2)  # type: ignore[arg-type]
    assert out[0]["mean_ci95"] is None and out[0]["count"] == 2
    assert out[1]["mean"] == 4.0 and out[1]["mean_ci95"] is None  # one score: no interval


def test_order_lines_at_one_time_are_one_purchase() -> None:
    """c2 buys twice at day 60 (two order lines of one checkout): not a repeat buyer, as its
    stage is not the repeat stage; c0 bought on days 6 and 90: a repeat buyer."""
    extra = (2, 60, "purchase", "direct", float("nan"))
    overall = journey_kpis(arrays([*EVENTS, extra]), SPEC, AS_OF, PARAMS, GROUPS)["overall"]
    assert rate(overall["repeat_purchase_rate"]) == (1, 2)
    again = (2, 80, "purchase", "direct", float("nan"))
    overall = journey_kpis(arrays([*EVENTS, extra, again]), SPEC, AS_OF, PARAMS,
                           GROUPS)["overall"]
    assert rate(overall["repeat_purchase_rate"]) == (2, 2)


def test_occasions_skip_only_same_time_conversions_of_one_customer() -> None:
    events = [(0, 1, "purchase", "direct", float("nan")), (0, 1, "purchase", "app", float("nan")),
              (0, 2, "purchase", "direct", float("nan")), (1, 1, "purchase", "direct",
                                                           float("nan"))]
    e = StageEvents.before(arrays(events, customers=2), SPEC, AS_OF)
    assert e.occasion.tolist() == [True, False, True, True]
    assert e.conversion.tolist() == [True, True, True, True]


def test_groups_with_ids_name_them_in_their_rows() -> None:
    """Persona groups carry their id: a persona renamed after the scoring run is found by it
    (rows of groupings without ids have none)."""
    personas = Grouping(np.array([0, 1, 0, 1, -1, 2, -1]), ("shoppers", "fans", "unassigned"),
                        (0, 1, -1))
    out = journey_kpis(arrays(EVENTS), SPEC, AS_OF, PARAMS, {**GROUPS, "persona": personas})
    assert [(r["group"], r["id"]) for r in out["by"]["persona"]] == [
        ("shoppers", 0), ("fans", 1), ("unassigned", -1), ("(none)", None)]
    assert all("id" not in r for r in out["by"]["kind"])
