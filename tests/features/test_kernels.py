"""The feature kernel's vector shape and activity: RFM, counts, stage, gaps, sessions, trend."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from features.layout import CATEGORICAL, layout
from features.online import OnlineFeatures
from features.spec import FeatureSpec
from tests.features.kernel_cases import US, T, ago, ev, vec


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
