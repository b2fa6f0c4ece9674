"""The feature kernel's inputs: order, time zones, the cutoff, Arrow tables and naive timestamps."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from features.batch import micros
from features.online import OnlineFeatures
from features.schema import EVENT_SCHEMA
from tests.features.kernel_cases import US, Event, T, ago, ev, same, vec


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
    same(vec(online, table), vec(online, events))


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
