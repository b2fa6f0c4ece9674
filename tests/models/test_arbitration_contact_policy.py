"""Next-best-action contact policy: contact caps, cool-downs and exclusion windows."""

from __future__ import annotations

from collections.abc import Callable

from models.catalog import DAY_US, Catalog
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

JUST = 1 / DAY_US  # a microsecond, in days


def test_global_cap_window_edges(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3, caps=[{"max": 2, "window_days": 7}]))
    inside = (sent(None, "sms", 1), sent("ad", "display", 7 - 2 * JUST))
    d = decide(catalog, customer(contacts=inside))
    assert d.actions == ()
    for name in ("mail", "ad", "call"):
        assert why(d, name) == ("contact_policy", "contact cap 2 per 7 days reached (2 sent)")
    assert d.no_action_reason is not None and "held back" in d.no_action_reason
    outside = (sent(None, "sms", 1), sent("ad", "display", 7))
    d = decide(catalog, customer(contacts=outside))
    assert chosen(d) == ["mail"]  # one more allowed, although top_k is 3
    for name in ("ad", "call"):
        assert why(d, name) == (
            "contact_policy",
            "contact cap 2 per 7 days reached (1 sent, 1 earlier in this list)",
        )
    assert "contact cap 2 per 7 days: 1 sent" in d.actions[0].reasons


def test_contacts_after_now_count_as_just_sent(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(caps=[{"max": 1, "window_days": 7}]))
    d = decide(catalog, customer(contacts=(sent(None, "sms", -0.5),)))
    assert d.actions == ()


def test_channel_cap(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3, caps=[{"max": 1, "window_days": 7, "channel": "email"}]))
    d = decide(catalog, customer(contacts=(sent(None, "email", 6.9),)))
    assert why(d, "mail") == ("contact_policy", "email cap 1 per 7 days reached (1 sent)")
    assert chosen(d) == ["ad", "call"]
    d = decide(catalog, customer(contacts=(sent(None, "email", 7.0), sent(None, "sms", 0.1))))
    assert chosen(d) == ["mail", "ad", "call"]


def test_action_cap(make: Callable[..., Catalog]) -> None:
    catalog = make(action("mail", caps=[{"max": 2, "window_days": 30}]))
    two = (sent("mail", "email", 10), sent("mail", "email", 30 - JUST * 2))
    d = decide(catalog, customer(contacts=two))
    assert why(d, "mail") == ("contact_policy", "mail cap 2 per 30 days reached (2 sent)")
    assert chosen(d) == ["ad"]
    # Another action on the same channel does not count toward mail's own cap.
    others = (sent("mail", "email", 10), sent("other", "email", 1), sent("mail", "email", 30))
    assert chosen(decide(catalog, customer(contacts=others))) == ["mail"]


def test_cooldown(make: Callable[..., Catalog]) -> None:
    catalog = make(action("mail", cooldown_days=7))
    d = decide(catalog, customer(contacts=(sent("mail", "email", 3.2),)))
    assert why(d, "mail") == ("contact_policy", "cool-down 7 days: sent 3.2 days ago")
    assert chosen(decide(catalog, customer(contacts=(sent("mail", "email", 7),)))) == ["mail"]
    assert chosen(decide(catalog, customer(contacts=(sent("ad", "email", 1),)))) == ["mail"]


def test_exclusion_windows_work_both_ways(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3), action("mail", excludes={"actions": ["ad"], "days": 14}))
    d = decide(catalog, customer(contacts=(sent("ad", "display", 3),)))
    assert why(d, "mail") == ("exclusion", "excluded for 14 days after ad (sent 3.0 days ago)")
    d = decide(catalog, customer(contacts=(sent("mail", "email", 13.9),)))
    assert why(d, "ad") == ("exclusion", "excluded for 14 days after mail (sent 13.9 days ago)")
    d = decide(catalog, customer(contacts=(sent("mail", "email", 14), sent("ad", "display", 14))))
    assert chosen(d) == ["mail", "call"]  # outside the window; still not both in one list
    assert why(d, "ad") == ("exclusion", "not sent together with mail (earlier in this list)")


def test_exclusion_within_one_list(make: Callable[..., Catalog]) -> None:
    catalog = make(policy(top_k=3), action("call", excludes={"actions": ["mail"]}))
    d = decide(catalog, customer())
    assert chosen(d) == ["mail", "ad"]
    assert why(d, "call") == ("exclusion", "not sent together with mail (earlier in this list)")


def test_a_list_never_exceeds_a_cap_counting_its_own_entries(
    make: Callable[..., Catalog],
) -> None:
    catalog = make(
        policy(top_k=3, caps=[{"max": 2, "window_days": 7, "channel": "email"}]),
        action("news", channel="email", cost=0.1),
        action("promo", channel="email", cost=0.1),
    )
    uplift = UPLIFT | {"news": {"convert": 0.025}, "promo": {"convert": 0.02}}
    d = decide(catalog, customer(contacts=(sent(None, "email", 2),)), uplift)
    emails = [r.action for r in d.actions if r.channel == "email"]
    assert emails == ["mail"]  # 1 sent + 1 in the list = the cap of 2
    assert why(d, "news") == (
        "contact_policy",
        "email cap 2 per 7 days reached (1 sent, 1 earlier in this list)",
    )
    assert chosen(d) == ["mail", "ad", "call"]
