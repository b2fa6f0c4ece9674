"""The feature kernel's last touch, marketing actions with their responses, and support scores."""

from __future__ import annotations

from datetime import timedelta

import pytest

from features.online import OnlineFeatures
from tests.features.kernel_cases import US, T, ago, ev, isnan, vec


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
