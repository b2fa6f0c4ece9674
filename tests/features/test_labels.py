"""Labels for [T, T+H) on small hand-built stores, against docs/features.md ("Labels")."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from features.batch import BatchEngine
from features.labels import labels
from features.schema import EVENT_FIELDS, EVENT_SCHEMA
from features.spec import FeatureSpec, load_spec
from features.store import EventStore

T = datetime(2024, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
LABEL_COLUMNS = ["customer_id", "next_stage", "converted", "churned_inactive",
                 "churned_no_purchase", "churn_days", "churn_observed"]


def at(days: float, us: int = 0) -> datetime:
    """T plus a number of days (negative: before T) plus microseconds."""
    return T + timedelta(days=days, microseconds=us)


_ids = itertools.count()


def ev(customer: str, when: datetime, event_type: str, value: float | None = None,
       action: str | None = None) -> dict[str, Any]:
    return {"event_id": f"e{next(_ids)}", "customer_id": customer, "ts": when,
            "event_type": event_type, "channel": "direct", "value": value, "action": action,
            "properties": None}


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "s.duckdb") as s:
        yield s


def fill(store: EventStore, events: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist([{f: e[f] for f in EVENT_FIELDS} for e in events],
                                 schema=EVENT_SCHEMA)
    assert store.append(table).inserted == len(events)


def by_customer(table: pa.Table) -> dict[str, dict[str, Any]]:
    assert table.column_names == LABEL_COLUMNS
    return {r.pop("customer_id"): r for r in table.to_pylist()}


# -- next stage, conversion, churn flags ---------------------------------------------------------
@pytest.fixture
def flags_store(store: EventStore) -> EventStore:
    fill(store, [
        # a: reaches purchase 1 us before T+H; a review at exactly T+H is outside the horizon
        ev("a", at(-3), "page_view"), ev("a", at(1), "page_view"), ev("a", at(5), "add_to_cart"),
        ev("a", at(14, us=-1), "purchase", 30.0), ev("a", at(14), "review"),
        # b: bought before T; after T only a contact, and activity after the horizon
        ev("b", at(-10), "purchase", 20.0), ev("b", at(2), "action_sent", action="loyalty_offer"),
        ev("b", at(15), "referral"),
        # c: bought before T and again in the horizon
        ev("c", at(-10), "purchase", 20.0), ev("c", at(3), "purchase", 5.0),
        ev("c", at(4), "email_open"),
        # d: its purchase is exactly at T: a label, not a feature (features see ts < T)
        ev("d", at(-1), "page_view"), ev("d", T, "purchase", 99.0),
        # e: only seen after T: not in the population
        ev("e", at(1), "purchase", 10.0),
        # f: only a contact before T (still in the population), then active
        ev("f", at(-2), "action_sent", action="discount_email"), ev("f", at(1), "page_view"),
        # g: the furthest stage in the horizon, not the last
        ev("g", at(-1), "page_view"), ev("g", at(1), "review"), ev("g", at(2), "page_view"),
        # h: an event type the taxonomy does not name is no activity
        ev("h", at(-1), "page_view"), ev("h", at(1), "webinar"),
    ])
    return store


def test_next_stage_converted_and_churn_flags(flags_store: EventStore, spec: FeatureSpec) -> None:
    got = by_customer(labels(flags_store, spec, T, horizon_days=14))
    assert list(got) == ["a", "b", "c", "d", "f", "g", "h"]
    flags = {c: (r["next_stage"], r["converted"], r["churned_inactive"],
                 r["churned_no_purchase"]) for c, r in got.items()}
    assert flags == {
        "a": ("purchase", True, False, None),
        "b": ("inactive", False, True, True),
        "c": ("purchase", True, False, False),
        "d": ("purchase", True, False, None),
        "f": ("consideration", False, False, None),
        "g": ("advocacy", False, False, None),
        "h": ("inactive", False, True, None),
    }


def test_the_window_is_t_inclusive_to_t_plus_h_exclusive(store: EventStore,
                                                         spec: FeatureSpec) -> None:
    """A date-only log stamps events at midnight: with cutoffs at midnight, the cutoff day's
    purchases must be outcomes (features stop before T), and the next window's, not this one's,
    must hold those of day T+H."""
    fill(store, [ev("a", at(-1), "page_view"), ev("a", T, "purchase", 1.0),
                 ev("b", at(-1), "page_view"), ev("b", at(7, us=-1), "purchase", 1.0),
                 ev("c", at(-1), "page_view"), ev("c", at(7), "purchase", 1.0),
                 ev("d", at(-1), "page_view"), ev("d", at(0, us=-1), "purchase", 1.0)])
    got = by_customer(labels(store, spec, T, horizon_days=7))
    outcome = {c: (r["next_stage"], r["converted"]) for c, r in got.items()}
    assert outcome == {"a": ("purchase", True), "b": ("purchase", True),
                       "c": ("inactive", False), "d": ("inactive", False)}
    rows = {r["customer_id"]: r for r in BatchEngine(store, spec).features(T).to_pylist()}
    assert [rows[c]["purchases_total"] for c in "abcd"] == [0.0, 0.0, 0.0, 1.0]
    # The next window, from T+H, holds c's purchase: every event is in exactly one window.
    later = by_customer(labels(store, spec, at(7), horizon_days=7))
    assert later["c"]["converted"] and not later["b"]["converted"]


def test_population_matches_the_batch_features(flags_store: EventStore,
                                              spec: FeatureSpec) -> None:
    lab = labels(flags_store, spec, T, horizon_days=14)
    feats = BatchEngine(flags_store, spec).features(T)
    assert sorted(feats["customer_id"].to_pylist()) == lab["customer_id"].to_pylist()
    rows = {r["customer_id"]: r for r in feats.to_pylist()}
    # d's purchase at exactly T is a label, not a feature
    assert (rows["d"]["purchases_total"], rows["d"]["events_total"]) == (0.0, 1.0)
    assert rows["c"]["purchases_total"] == 1.0  # the purchase after T is not a feature
    assert rows["f"]["events_total"] == 0.0


def test_empty_population(store: EventStore, spec: FeatureSpec) -> None:
    fill(store, [ev("a", at(1), "page_view")])
    assert labels(store, spec, T, 14).num_rows == 0
    assert BatchEngine(store, spec).features(T).num_rows == 0


def test_horizon_and_gap_must_be_positive(store: EventStore, spec: FeatureSpec) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        labels(store, spec, T, 0)
    with pytest.raises(ValueError, match="at least 1"):
        labels(store, spec, T, 14, churn_gap_days=0)


# -- time to churn -------------------------------------------------------------------------------
def churn(table: pa.Table) -> dict[str, tuple[float, bool]]:
    return {c: (r["churn_days"], r["churn_observed"]) for c, r in by_customer(table).items()}


def test_churn_days_gap_5_horizon_14(store: EventStore, spec: FeatureSpec) -> None:
    fill(store, [
        # active throughout (gaps 4, 4, 4, 3 < 5); the last one + 5 is after T+H: censored at H
        *(ev("active", at(d), "page_view") for d in (-2, 2, 6, 10, 13)),
        # a gap of 10 days starts at T+2 inside the horizon: churn at T+2+5
        ev("gap", at(-1), "page_view"), ev("gap", at(2), "page_view"),
        ev("gap", at(12), "page_view"),
        # already inactive for more than G days at T: 0, even if they come back
        ev("lapsed", at(-6), "purchase", 10.0),
        ev("back", at(-6), "page_view"), ev("back", at(3), "page_view"),
        # inactive for exactly G days at T: 0
        ev("exact", at(-5), "page_view"),
        # last activity 2 days before T, none after: churn at T+3
        ev("silent", at(-2), "page_view"),
        # the same, back after the gap: still churned at T+3
        ev("returns", at(-2), "page_view"), ev("returns", at(10), "purchase", 5.0),
        # the last gap reaches 5 days exactly at T+H, outside [T, T+H): censored at H
        *(ev("at_end", at(d), "page_view") for d in (-1, 3, 7, 9)),
        # ... and 1 us earlier, inside the horizon: observed
        *(ev("near_end", at(d, us=-1 if d == 9 else 0), "page_view") for d in (-1, 3, 7, 9)),
        # contacts and unknown types are no activity, before or after T
        ev("contacts", at(-2), "page_view"),
        ev("contacts", at(-1), "action_sent", action="discount_email"),
        ev("contacts", at(1), "webinar"), ev("contacts", at(2), "action_sent",
                                              action="loyalty_offer"),
        # an event exactly at T is activity in the horizon: churn at T + 5
        ev("at_t", at(-3), "page_view"), ev("at_t", T, "page_view"),
    ])
    assert churn(labels(store, spec, T, horizon_days=14, churn_gap_days=5)) == {
        "active": (14.0, False),
        "at_end": (14.0, False),
        "at_t": (5.0, True),
        "back": (0.0, True),
        "contacts": (3.0, True),
        "exact": (0.0, True),
        "gap": (7.0, True),
        "lapsed": (0.0, True),
        "near_end": (pytest.approx(14.0 - 1 / 86_400_000_000, rel=1e-12), True),
        "returns": (3.0, True),
        "silent": (3.0, True),
    }


def test_churn_days_default_gap(store: EventStore, spec: FeatureSpec) -> None:
    fill(store, [
        # last activity T-20, none after: churn at T+10, inside the horizon
        ev("recent", at(-20), "page_view"),
        # last activity T-2, none after: churn at T+28, after T+14: censored
        ev("silent", at(-2), "page_view"),
        # last activity exactly 30 days before T: already churned
        ev("lapsed", at(-30), "purchase", 10.0),
        # 30 days - 1 us before T: churn 1 us after T
        ev("almost", at(-30, us=1), "page_view"),
        # active in the horizon, up to its end
        ev("active", at(-1), "page_view"), ev("active", at(14), "page_view"),
    ])
    got = churn(labels(store, spec, T, horizon_days=14))
    assert got == {
        "active": (14.0, False),
        "almost": (pytest.approx(1 / 86_400_000_000, rel=1e-6), True),
        "lapsed": (0.0, True),
        "recent": (10.0, True),
        "silent": (14.0, False),
    }


def test_cutoff_time_zone_does_not_matter(flags_store: EventStore, spec: FeatureSpec) -> None:
    local = T.astimezone(timezone(timedelta(hours=-5)))
    assert labels(flags_store, spec, local, 14).equals(labels(flags_store, spec, T, 14))
    engine = BatchEngine(flags_store, spec)
    assert plain(engine.features(local)) == plain(engine.features(T))


def plain(table: pa.Table) -> list[dict[str, Any]]:
    """Rows with NaN as None, so that == compares them."""
    return [{k: None if isinstance(x, float) and math.isnan(x) else x for k, x in r.items()}
            for r in table.to_pylist()]


def test_churn_at_t_plus_h_belongs_to_the_next_window(store: EventStore,
                                                      spec: FeatureSpec) -> None:
    """The audit's E8 (a date-only log): purchases up to 2025-02-03, G = 30 days, so churn is
    dated 2025-03-05, exactly T+H for T = 2025-02-26 and H = 7. [T, T+H) leaves it out: censored
    at H there, and churned at T (0, observed) in the next window, so it counts in one only."""
    t = datetime(2025, 2, 26, tzinfo=UTC)
    fill(store, [ev("E8", datetime(2025, 2, day, tzinfo=UTC), "purchase", 1.0)
                 for day in (1, 2, 3)])
    assert churn(labels(store, spec, t, horizon_days=7)) == {"E8": (7.0, False)}
    assert churn(labels(store, spec, t + timedelta(days=7), horizon_days=7)) == {
        "E8": (0.0, True)}
    # churned_inactive reads the same window: no activity in it, whatever the gap says
    assert by_customer(labels(store, spec, t, horizon_days=7))["E8"]["churned_inactive"]


def test_no_activity_before_t_has_no_time_to_churn(store: EventStore,
                                                   spec: FeatureSpec) -> None:
    """Contacts are done to a customer, not by them: a customer whose only events before T are
    contacts (or types without a stage) has no inactivity gap to count from. Time to churn does
    not apply (empty, as churned_no_purchase for non-buyers), rather than "churned at T,
    observed" beside churned_inactive = false for one who then turns active."""
    fill(store, [
        # the audit's case: only a contact before T, active in the horizon
        ev("contacted", at(-2), "action_sent", action="discount_email"),
        ev("contacted", at(1), "page_view"),
        # only contacts, before T and in the horizon
        ev("ignored", at(-40), "action_sent", action="discount_email"),
        ev("ignored", at(3), "action_sent", action="loyalty_offer"),
        # only an event type the taxonomy does not name, then active
        ev("unnamed", at(-1), "webinar"), ev("unnamed", at(2), "purchase", 5.0),
        # a contact after a real activity: the gap counts from the activity
        ev("active", at(-3), "page_view"),
        ev("active", at(-1), "action_sent", action="discount_email"),
    ])
    got = by_customer(labels(store, spec, T, horizon_days=14, churn_gap_days=5))
    assert {c: (r["churned_inactive"], r["churn_days"], r["churn_observed"])
            for c, r in got.items()} == {
        "active": (True, 2.0, True),
        "contacted": (False, None, None),
        "ignored": (True, None, None),
        "unnamed": (False, None, None),
    }
