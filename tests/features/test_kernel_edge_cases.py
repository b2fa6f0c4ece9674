"""The feature kernel on degenerate histories: none, one event, contacts only, equal timestamps."""

from __future__ import annotations

import math
from typing import Any

from features.layout import layout
from features.online import OnlineFeatures
from features.spec import FeatureSpec
from tests.features.kernel_cases import ago, ev, isnan, same, vec

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
