"""The feature kernel through OnlineFeatures, on hand-built histories, against docs/features.md.

Every expected value below is computed by hand from the definitions in docs/features.md with the
shipped spec (windows 7/30/90 days, session gap 30 min, response window 72 h, CSAT low <= 2) and
taxonomy (stage codes: awareness 0, consideration 1, decision 2, purchase 3, retention 4,
advocacy 5).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest

from features.batch import micros
from features.layout import CATEGORICAL, layout
from features.online import OnlineFeatures
from features.schema import EVENT_SCHEMA
from features.spec import FeatureSpec, load_spec

T = datetime(2024, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
Event = dict[str, Any]


def ago(days: float = 0, hours: float = 0, minutes: float = 0, us: int = 0) -> datetime:
    """T minus a duration (``us``: extra microseconds further back)."""
    return T - timedelta(days=days, hours=hours, minutes=minutes, microseconds=us)


def ev(at: datetime, event_type: str, channel: str = "direct", value: float | None = None,
       action: str | None = None, properties: str | None = None) -> Event:
    """One event in the contract (a tz-aware ts)."""
    return {"event_id": f"{event_type}@{at.isoformat()}/{channel}/{action}", "customer_id": "c1",
            "ts": at, "event_type": event_type, "channel": channel, "value": value,
            "action": action, "properties": properties}


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


@pytest.fixture(scope="module")
def online(spec: FeatureSpec) -> OnlineFeatures:
    return OnlineFeatures(spec)


def vec(online: OnlineFeatures, events: list[Event] | pa.Table,
        cutoff: datetime = T) -> dict[str, Any]:
    return online.vector("c1", events, cutoff)


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two vectors are identical (NaN equals NaN)."""
    assert a.keys() == b.keys()
    diff = {k: (a[k], b[k]) for k in a
            if not (a[k] == b[k] or (isinstance(a[k], float) and isinstance(b[k], float)
                                      and math.isnan(a[k]) and math.isnan(b[k])))}
    assert diff == {}


def isnan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)


def block(v: dict[str, Any], prefix: str, suffix: str) -> dict[str, float]:
    return {k: x for k, x in v.items() if k.startswith(prefix) and k.endswith(suffix)}


# -- the vector's shape --------------------------------------------------------------------------
def test_vector_has_every_layout_column_plus_attributes(online: OnlineFeatures,
                                                       spec: FeatureSpec) -> None:
    v = vec(online, [ev(ago(1), "page_view")])
    lay = layout(spec)
    assert list(v) == [*lay.names, *CATEGORICAL, *(f"attr_{a}" for a in spec.attributes)]
    v = online.vector("c1", [ev(ago(1), "page_view")], T, {"region": "east", "other": "x"})
    assert v["attr_region"] == "east"
    assert v["attr_device"] is None


# -- RFM -----------------------------------------------------------------------------------------
def test_rfm(online: OnlineFeatures) -> None:
    events = [
        ev(ago(100), "action_sent", "email", action="discount_email"),  # first event: any type
        ev(ago(90, us=1), "purchase", value=100.0),  # outside the 90-day window, in the totals
        ev(ago(40), "page_view"),
        ev(ago(30), "purchase", value=50.0),  # exactly 30 days before T: inside [T-30d, T)
        ev(ago(7, us=1), "purchase", value=20.0),  # 7 days + 1 us: outside the 7-day window
        ev(ago(7), "purchase", value=10.0),  # exactly 7 days: inside
        ev(ago(5), "purchase"),  # no value: a purchase, no revenue
        ev(ago(2), "page_view"),
        ev(ago(1), "action_sent", "email", action="retargeting_ad"),  # not customer activity
    ]
    v = vec(online, events)
    assert v["tenure_days"] == 100.0
    assert v["recency_days"] == 2.0
    assert v["purchase_recency_days"] == 5.0
    assert (v["events_7d"], v["purchases_7d"], v["revenue_7d"]) == (3.0, 2.0, 10.0)
    assert (v["events_30d"], v["purchases_30d"], v["revenue_30d"]) == (5.0, 4.0, 80.0)
    assert (v["events_90d"], v["purchases_90d"], v["revenue_90d"]) == (6.0, 4.0, 80.0)
    assert (v["events_total"], v["purchases_total"], v["revenue_total"]) == (7.0, 5.0, 180.0)
    assert v["avg_order_value"] == 36.0  # revenue / purchases


def test_rfm_window_boundary_is_exactly_w_days(online: OnlineFeatures) -> None:
    for w in (7, 30, 90):
        inside = vec(online, [ev(ago(w), "page_view")])
        outside = vec(online, [ev(ago(w, us=1), "page_view")])
        assert inside[f"events_{w}d"] == 1.0
        assert outside[f"events_{w}d"] == 0.0
        assert outside["events_total"] == 1.0


# -- counts --------------------------------------------------------------------------------------
def test_counts_per_type_stage_channel(online: OnlineFeatures) -> None:
    events = [
        ev(ago(50), "purchase", "store", value=5.0),
        ev(ago(10), "page_view", "search"),
        ev(ago(6), "review", "unknown"),  # the vocabulary's own "unknown" channel
        ev(ago(4), "webinar", "app"),  # a kept type the taxonomy does not name: channels only
        ev(ago(3), "action_sent", "email", action="discount_email"),  # a contact: types, channels
        ev(ago(2), "product_view", "tiktok"),  # a channel outside the vocabulary: "other"
        ev(ago(1), "page_view", "search"),
    ]
    v = vec(online, events)
    expected = {k: 0.0 for k in v if k[:2] in ("n_", "st", "ch") and k.endswith("d")}
    expected |= {
        "n_page_view_7d": 1, "n_product_view_7d": 1, "n_review_7d": 1, "n_action_sent_7d": 1,
        "n_page_view_30d": 2, "n_product_view_30d": 1, "n_review_30d": 1,
        "n_action_sent_30d": 1,
        "n_page_view_90d": 2, "n_product_view_90d": 1, "n_review_90d": 1,
        "n_action_sent_90d": 1, "n_purchase_90d": 1,
        "st_consideration_7d": 2, "st_advocacy_7d": 1,
        "st_consideration_30d": 3, "st_advocacy_30d": 1,
        "st_consideration_90d": 3, "st_advocacy_90d": 1, "st_purchase_90d": 1,
        "ch_search_7d": 1, "ch_unknown_7d": 1, "ch_app_7d": 1, "ch_email_7d": 1,
        "ch_other_7d": 1,
        "ch_search_30d": 2, "ch_unknown_30d": 1, "ch_app_30d": 1, "ch_email_30d": 1,
        "ch_other_30d": 1,
        "ch_search_90d": 2, "ch_unknown_90d": 1, "ch_app_90d": 1, "ch_email_90d": 1,
        "ch_other_90d": 1, "ch_store_90d": 1,
    }
    got = {k: v[k] for k in expected}
    assert got == expected
    # The unknown type counts in no type, no stage and no customer activity.
    assert sum(block(v, "n_", "_7d").values()) == 4.0
    assert sum(block(v, "ch_", "_7d").values()) == 5.0
    assert v["events_7d"] == 3.0
    assert v["events_total"] == 5.0
    assert v["tenure_days"] == 50.0


# -- stage ---------------------------------------------------------------------------------------
def test_stage(online: OnlineFeatures) -> None:
    events = [
        ev(ago(20), "ad_impression"),  # 0
        ev(ago(18), "page_view"),  # 1
        ev(ago(15), "add_to_cart"),  # 2
        ev(ago(14), "page_view"),  # 1: regression 1
        ev(ago(12), "product_view"),  # 1
        ev(ago(10), "purchase"),  # 3
        ev(ago(9), "email_open"),  # 0: regression 2
        ev(ago(8), "action_sent", action="loyalty_offer"),  # no stage: ignored
        ev(ago(6), "email_click"),  # 1: the last run of stage 1 starts here
        ev(ago(5), "search"),  # 1
        ev(ago(4), "webinar"),  # unknown type: no stage, does not end the run
        ev(ago(3), "page_view"),  # 1
    ]
    v = vec(online, events)
    assert v["stage_current"] == 1.0
    assert v["stage_furthest"] == 3.0
    assert v["days_in_stage"] == 6.0
    assert v["stage_regressions"] == 2.0


# -- gaps ----------------------------------------------------------------------------------------
def test_gaps(online: OnlineFeatures) -> None:
    events = [
        ev(ago(12), "action_sent", action="discount_email"),  # not a customer event
        ev(ago(10), "page_view"),
        ev(ago(8), "page_view"),  # gap 2
        ev(ago(6), "webinar"),  # not a customer event
        ev(ago(4), "product_view"),  # gap 4
        ev(ago(3), "purchase"),  # gap 1
        ev(ago(1), "action_sent", action="discount_email"),
    ]
    v = vec(online, events)
    assert v["gap_mean_days"] == pytest.approx(7 / 3, rel=1e-12)
    # population std of (2, 4, 1): sqrt(((1/3)^2 + (5/3)^2 + (4/3)^2) / 3) = sqrt(14) / 3
    assert v["gap_std_days"] == pytest.approx(math.sqrt(14) / 3, rel=1e-12)
    assert v["gap_max_days"] == 4.0
    assert v["gap_last_days"] == 1.0


# -- sessions ------------------------------------------------------------------------------------
def test_sessions(online: OnlineFeatures) -> None:
    a = ago(10)
    d = ago(7, minutes=10)
    c = ago(2)
    events = [
        # session A: 3 events; the last gap is exactly 30 minutes, so it stays in the session
        ev(a, "page_view"), ev(a + timedelta(minutes=10), "product_view"),
        ev(a + timedelta(minutes=40), "add_to_cart"),
        # a contact 20 minutes later does not bridge the gap to B
        ev(a + timedelta(minutes=60), "action_sent", action="discount_email"),
        # session B: 30 minutes + 1 us after A's last event: a new session of one event
        ev(a + timedelta(minutes=70) + US, "page_view"),
        # session D starts 10 minutes before the 7-day window and goes on inside it
        ev(d, "page_view"), ev(d + timedelta(minutes=15), "page_view"),
        # session C: 2 events, 20 minutes
        ev(c, "page_view"), ev(c + timedelta(minutes=20), "checkout"),
    ]
    v = vec(online, events)
    assert v["sessions_total"] == 4.0
    assert v["session_events_mean"] == 2.0  # (3 + 1 + 2 + 2) / 4
    assert v["session_minutes_mean"] == 18.75  # (40 + 0 + 15 + 20) / 4
    # session starts: T-10d, T-10d+70m+1us, T-7d-10m, T-2d -> (8 days) / 3
    assert v["days_between_sessions"] == pytest.approx(8 / 3, rel=1e-12)
    assert v["sessions_7d"] == 1.0  # only C starts in [T-7d, T)
    assert v["sessions_30d"] == 4.0
    assert v["sessions_90d"] == 4.0


# -- trend ---------------------------------------------------------------------------------------
def test_trend(online: OnlineFeatures) -> None:
    events = [
        ev(ago(61), "page_view"),  # before both 30-day windows (in the last 90 days)
        ev(ago(45), "page_view"),  # the 30 days before the last 30
        ev(ago(14, us=1), "page_view"),  # before both 7-day windows
        ev(ago(14), "page_view"),  # the 7 days before the last 7: [T-14d, T-7d)
        ev(ago(7, us=1), "page_view"),  # the 7 days before
        ev(ago(7), "page_view"),  # the last 7 days
        ev(ago(3), "page_view"),
        ev(ago(2), "action_sent", action="discount_email"),  # not a customer event
        ev(ago(1), "page_view"),
    ]
    v = vec(online, events)
    assert v["trend_events_7d"] == (3 + 1) / (2 + 1)
    assert v["trend_events_30d"] == (6 + 1) / (1 + 1)
    assert v["trend_events_90d"] == (8 + 1) / (0 + 1)


# -- last touch ----------------------------------------------------------------------------------
def test_last_touch_is_the_last_event_of_any_type(online: OnlineFeatures) -> None:
    v = vec(online, [ev(ago(2), "purchase", "store"),
                     ev(ago(1), "action_sent", "email", action="discount_email")])
    assert (v["last_event_type"], v["last_channel"]) == ("action_sent", "email")
    assert v["stage_current"] == 3.0


def test_last_touch_ties_are_broken_by_event_type_code(online: OnlineFeatures) -> None:
    """At equal ts the event whose type comes later in the taxonomy's event_types order (the
    higher code) is ordered last, so it wins last touch; then the higher channel code wins."""
    at = ago(hours=1)
    v = vec(online, [ev(at, "purchase", "store"), ev(at, "page_view", "email")])
    # purchase (code 9) sorts after page_view (code 3), whatever the input order
    assert (v["last_event_type"], v["last_channel"]) == ("purchase", "store")
    assert v["stage_current"] == 3.0
    assert v["stage_regressions"] == 0.0  # page_view then purchase: no step down
    assert v["days_in_stage"] == pytest.approx(1 / 24, rel=1e-12)
    v = vec(online, [ev(at, "action_sent", "email", action="loyalty_offer"),
                     ev(at, "purchase", "store")])
    assert (v["last_event_type"], v["last_channel"]) == ("action_sent", "email")  # 15 > 9
    # same type: the channel code decides (store 7 after search 0)
    v = vec(online, [ev(at, "page_view", "store"), ev(at, "page_view", "search")])
    assert v["last_channel"] == "store"


# -- actions -------------------------------------------------------------------------------------
def test_actions(online: OnlineFeatures) -> None:
    events = [
        # a0: outside the 90-day window; answered a day later
        ev(ago(100), "action_sent", "email", action="discount_email"),
        ev(ago(99), "page_view"),
        # a1, then a2 (a non-customer event), then an unknown type, then a customer event 48 h
        # after a1: both actions are answered
        ev(ago(20), "action_sent", "email", action="discount_email"),
        ev(ago(19), "action_sent", "display", action="retargeting_ad"),
        ev(ago(18, hours=12), "webinar"),
        ev(ago(18), "page_view"),
        # a3: the next customer event comes 72 h + 1 us later: not a response
        ev(ago(15), "action_sent", "email", action="loyalty_offer"),
        ev(ago(12) + US, "page_view"),
        # a4: an action outside the vocabulary ("other"), answered exactly 72 h later
        ev(ago(9), "action_sent", "email", action="mystery_promo"),
        ev(ago(6), "page_view"),
        # a customer event carrying an action, answered by the next customer event a day later
        ev(ago(5), "purchase", "store", value=10.0, action="review_request"),
        ev(ago(4), "page_view"),
        # a5: answered only after T, which does not count
        ev(ago(2), "action_sent", "call_center", action="support_outreach"),
        ev(T, "page_view"),
        ev(T + timedelta(hours=1), "page_view"),
    ]
    v = vec(online, events)
    assert (v["actions_7d"], v["actions_30d"], v["actions_90d"]) == (2.0, 6.0, 6.0)
    assert {k: v[k] for k in v if k.startswith("act_")} == {
        "act_discount_email_90d": 1.0, "act_retargeting_ad_90d": 1.0,
        "act_loyalty_offer_90d": 1.0, "act_support_outreach_90d": 1.0,
        "act_review_request_90d": 1.0, "act_other_90d": 1.0,
    }
    assert v["days_since_action"] == 2.0
    assert v["action_responses"] == 5.0  # a0, a1, a2, a4, the purchase's action
    assert v["action_response_rate"] == 5 / 7


def test_action_response_window_boundary(online: OnlineFeatures) -> None:
    def responses(delay: timedelta) -> float:
        a = ago(10)
        v = vec(online, [ev(a, "action_sent", action="discount_email"),
                         ev(a + delay, "page_view")])
        return float(v["action_responses"])

    assert responses(timedelta(hours=72)) == 1.0
    assert responses(timedelta(hours=72) + US) == 0.0
    assert responses(timedelta(0)) == 0.0  # same ts: the contact (code 15) sorts after


# -- support scores ------------------------------------------------------------------------------
def test_scores(online: OnlineFeatures) -> None:
    events = [
        ev(ago(10), "support_ticket", properties='{"csat": 4}'),
        ev(ago(8), "support_ticket", properties='{"csat": 1}'),
        ev(ago(7), "support_ticket", properties='{"csat": 1'),  # malformed JSON: ignored
        ev(ago(6), "support_ticket", properties='{"topic": "refund"}'),  # no key: ignored
        ev(ago(5, hours=12), "support_ticket", properties="[1, 2]"),  # not an object: ignored
        ev(ago(5, hours=6), "support_ticket", properties='{"csat": true}'),  # not a score
        ev(ago(5, hours=3), "support_ticket", properties='{"csat": [1]}'),  # not a score
        ev(ago(5), "support_ticket", properties='{"csat": 2}'),  # at the threshold: low
        ev(ago(4), "page_view", properties='{"csat": 1}'),  # not a support ticket: ignored
        ev(ago(3), "review", properties='{"rating": 5}'),
        ev(ago(2), "support_ticket"),  # no properties
        ev(ago(1), "support_ticket", properties='{"csat": 3}'),
    ]
    v = vec(online, events)
    assert (v["csat_count"], v["csat_mean"], v["csat_last"], v["csat_low"]) == (4.0, 2.5, 3.0,
                                                                                 2.0)
    assert (v["rating_count"], v["rating_mean"], v["rating_last"]) == (1.0, 5.0, 5.0)
    assert "rating_low" not in v  # no threshold in the spec, no column
    assert v["nps_count"] == 0.0
    assert isnan(v["nps_mean"])
    assert isnan(v["nps_last"])
    assert v["n_support_ticket_30d"] == 10.0  # every ticket counts as an event


# -- edge cases ----------------------------------------------------------------------------------
NAN_WHEN_EMPTY = {
    "tenure_days", "recency_days", "purchase_recency_days", "avg_order_value", "days_in_stage",
    "gap_mean_days", "gap_std_days", "gap_max_days", "gap_last_days", "session_events_mean",
    "session_minutes_mean", "days_between_sessions", "days_since_action",
    "action_response_rate", "csat_mean", "csat_last", "rating_mean", "rating_last",
    "nps_mean", "nps_last",
}


def test_no_events(online: OnlineFeatures, spec: FeatureSpec) -> None:
    v = vec(online, [])
    expected: dict[str, Any] = {}
    for name in layout(spec).names:
        if name in NAN_WHEN_EMPTY:
            expected[name] = math.nan
        elif name in ("stage_current", "stage_furthest"):
            expected[name] = -1.0
        elif name.startswith("trend_"):
            expected[name] = 1.0  # (0 + 1) / (0 + 1)
        else:
            expected[name] = 0.0
    expected |= {"last_event_type": None, "last_channel": None}
    expected |= {f"attr_{a}": None for a in spec.attributes}
    same(v, expected)


def test_one_event(online: OnlineFeatures) -> None:
    v = vec(online, [ev(ago(3), "page_view", "search")])
    assert (v["tenure_days"], v["recency_days"]) == (3.0, 3.0)
    assert isnan(v["purchase_recency_days"])
    assert (v["events_7d"], v["events_total"], v["purchases_total"]) == (1.0, 1.0, 0.0)
    assert isnan(v["avg_order_value"])
    assert (v["stage_current"], v["stage_furthest"], v["days_in_stage"],
            v["stage_regressions"]) == (1.0, 1.0, 3.0, 0.0)
    assert all(isnan(v[k]) for k in ("gap_mean_days", "gap_std_days", "gap_max_days",
                                     "gap_last_days"))
    assert (v["sessions_total"], v["session_events_mean"], v["session_minutes_mean"]) == (
        1.0, 1.0, 0.0)
    assert isnan(v["days_between_sessions"])
    assert v["trend_events_7d"] == 2.0
    assert (v["last_event_type"], v["last_channel"]) == ("page_view", "search")


def test_only_contacts(online: OnlineFeatures) -> None:
    """A customer with contacts only: tenure, no customer activity."""
    v = vec(online, [ev(ago(4), "action_sent", "email", action="discount_email")])
    assert v["tenure_days"] == 4.0
    assert isnan(v["recency_days"])
    assert (v["events_total"], v["stage_current"], v["stage_furthest"]) == (0.0, -1.0, -1.0)
    assert (v["actions_7d"], v["days_since_action"], v["action_responses"]) == (1.0, 4.0, 0.0)
    assert v["action_response_rate"] == 0.0
    assert v["last_event_type"] == "action_sent"


def test_equal_timestamps(online: OnlineFeatures) -> None:
    at = ago(2)
    v = vec(online, [ev(at, "page_view"), ev(at, "page_view"), ev(at, "page_view", "search")])
    assert (v["events_total"], v["sessions_total"], v["session_events_mean"]) == (3.0, 1.0, 3.0)
    assert (v["gap_mean_days"], v["gap_std_days"], v["gap_max_days"], v["gap_last_days"]) == (
        0.0, 0.0, 0.0, 0.0)
    assert v["session_minutes_mean"] == 0.0
    assert v["last_channel"] == "direct"  # direct (4) sorts after search (0)


def rich_history() -> list[Event]:
    return [
        ev(ago(100), "action_sent", "email", action="discount_email"),
        ev(ago(99), "page_view", "search"),
        ev(ago(40), "purchase", "store", value=20.0),
        ev(ago(30), "purchase", "store", value=20.0),
        ev(ago(30), "page_view", "social", properties='{"x": 1}'),
        ev(ago(20), "support_ticket", "call_center", properties='{"csat": 2}'),
        ev(ago(20), "support_ticket", "call_center", properties='{"csat": 5}'),
        ev(ago(19), "action_sent", "display", action="retargeting_ad"),
        ev(ago(18), "webinar", "tiktok"),
        ev(ago(18), "review", "app", properties='{"rating": 4}'),
        ev(ago(10, minutes=20), "product_view", "app"),
        ev(ago(10), "add_to_cart", "app", action="loyalty_offer"),
        ev(ago(10), "add_to_cart", "app"),
        ev(ago(3), "email_open", "email"),
        ev(ago(2, hours=5), "purchase", "app", value=12.5),
        ev(ago(2, hours=5), "purchase", "app", value=7.5),
        ev(ago(2, hours=5), "purchase", "app"),
        ev(ago(1), "action_sent", "email", action="support_outreach"),
    ]


def test_input_order_does_not_matter(online: OnlineFeatures) -> None:
    events = rich_history()
    base = vec(online, events)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = events[:]
        rng.shuffle(shuffled)
        same(vec(online, shuffled), base)


def test_time_zone_of_timestamps_does_not_matter(online: OnlineFeatures) -> None:
    plus2 = timezone(timedelta(hours=2))
    events = rich_history()
    moved = [e | {"ts": e["ts"].astimezone(plus2)} for e in events]
    assert moved[0]["ts"].utcoffset() == timedelta(hours=2)
    base = vec(online, events)
    same(vec(online, moved), base)
    same(vec(online, moved, T.astimezone(plus2)), base)
    same(vec(online, events, T.astimezone(plus2)), base)


def test_events_at_or_after_the_cutoff_are_ignored(online: OnlineFeatures) -> None:
    events = rich_history()
    base = vec(online, events)
    later = [ev(T, "purchase", "store", value=1000.0),
             ev(T + US, "review", properties='{"rating": 1}'),
             ev(T + timedelta(days=3), "action_sent", action="discount_email")]
    same(vec(online, events + later), base)
    same(vec(online, later + events), base)


def test_arrow_table_input_gives_the_same_vector(online: OnlineFeatures) -> None:
    """The serving path hands over a store history (EVENT_SCHEMA table) instead of dicts."""
    events = rich_history()
    later = [ev(T, "purchase", "store", value=1000.0), ev(T + US, "page_view")]
    table = pa.Table.from_pylist(events + later, schema=EVENT_SCHEMA)
    same(vec(online, table), vec(online, events))  # type: ignore[arg-type]


def test_kernel_rejects_events_at_or_after_the_cutoff(online: OnlineFeatures) -> None:
    for at in (T, T + timedelta(days=1)):
        arrays = online.enc.one_customer("c1", [ev(ago(1), "page_view"), ev(at, "page_view")])
        with pytest.raises(ValueError, match="at or after the cutoff"):
            online.kernel(arrays, micros(T))
    arrays = online.enc.one_customer("c1", [ev(T - US, "page_view")])
    assert online.kernel(arrays, micros(T)).values.shape == (1, online.kernel.layout.width)


def test_naive_timestamps_are_refused(online: OnlineFeatures) -> None:
    with pytest.raises(ValueError, match="time zone"):
        vec(online, [ev(datetime(2024, 5, 1), "page_view")])
    with pytest.raises(ValueError, match="time zone"):
        vec(online, [], datetime(2024, 5, 1))
