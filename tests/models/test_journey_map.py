"""The journey map on hand-built event arrays with answers worked out by hand, its parameters,
and a cross-check of the funnel against ``journey summary`` (SQL) on a small simulated store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from features.batch import BatchEngine, micros
from features.errors import ConfigError
from features.events import EventArrays
from features.mapping import identity_mapping
from features.simulator.run import SimSpec, simulate
from features.spec import DAY_US, FeatureSpec, load_spec
from features.store import EventStore
from features.summary import journey_summary
from features.taxonomy import load_taxonomy
from models.attribution import Paths, markov_attribution
from models.journey_events import wilson
from models.journey_map import (
    JourneyMapParams,
    journey_map,
    load_params,
    params_from_dict,
    touchpoint_paths,
)

SPEC = load_spec()
AS_OF = 100 * DAY_US
NAN = float("nan")
# (customer, day, event type (None: a type the spec does not know), channel, score)
EVENTS: list[tuple[int, float, str | None, str, float]] = [
    # c0: the whole funnel, a CSAT 5 ticket, buys again on day 90.
    (0, 0, "ad_impression", "display", NAN), (0, 2, "page_view", "search", NAN),
    (0, 5, "add_to_cart", "search", NAN), (0, 6, "purchase", "search", NAN),
    (0, 10, "support_ticket", "call_center", 5), (0, 90, "purchase", "app", NAN),
    # c1: a page view, then an email open (a step back), then only a contact: dropped.
    (1, 10, "page_view", "social", NAN), (1, 12, "email_open", "email", NAN),
    (1, 20, "action_sent", "email", NAN),
    # c2: straight from an ad click to a purchase; ticket, review, two NPS answers (10, then 3).
    (2, 50, "ad_click", "social", NAN), (2, 60, "purchase", "direct", NAN),
    (2, 64, "support_ticket", "call_center", 3), (2, 65, "review", "direct", 4),
    (2, 66, "survey_response", "email", 10), (2, 95, "survey_response", "email", 3),
    # c3: only contacted: no stage.
    (3, 40, "action_sent", "email", NAN),
    # c4: nothing before as_of.
    (4, 150, "page_view", "search", NAN),
    # c5: stops at decision on day 8; an unknown event type on day 90 is no activity.
    (5, 5, "ad_impression", "search", NAN), (5, 6, "product_view", "search", NAN),
    (5, 8, "add_to_cart", "search", NAN), (5, 90, None, "app", NAN),
    # c6: a CSAT 4 ticket and an NPS 9 answer, nothing else.
    (6, 98, "support_ticket", "call_center", 4), (6, 99, "survey_response", "email", 9),
]
PARAMS = JourneyMapParams(drop_off_days=30, retention_days=8, lookback_days=None)


def arrays(events: Sequence[tuple[int, float, str | None, str, float]], spec: FeatureSpec = SPEC,
           customers: int = 7) -> EventArrays:
    rows = sorted(events, key=lambda e: (e[0], e[1]))
    return EventArrays(
        customer_ids=[f"c{i}" for i in range(customers)],
        cust=np.array([r[0] for r in rows], np.int32),
        ts=np.array([round(r[1] * DAY_US) for r in rows], np.int64),
        etype=np.array([-1 if r[2] is None else spec.event_types.index(r[2]) for r in rows],
                       np.int16),
        channel=np.array([spec.channel_vocab.index(r[3]) for r in rows], np.int16),
        action=np.full(len(rows), -1, np.int16),
        value=np.full(len(rows), NAN),
        score=np.array([r[4] for r in rows], np.float64),
    )


def test_funnel_by_hand() -> None:
    jm = journey_map(arrays(EVENTS), SPEC, AS_OF, PARAMS)
    assert (jm.customers, jm.no_stage) == (6, 1)  # c4 has no event before as_of; c3 no stage
    rows = {r.stage: r for r in jm.funnel}
    assert [r.stage for r in jm.funnel] == list(SPEC.stages)
    assert [r.reached for r in jm.funnel] == [5, 5, 4, 3, 3, 1]
    assert [r.at_stage for r in jm.funnel] == [0, 1, 1, 0, 2, 1]
    assert [r.dropped for r in jm.funnel] == [0, 1, 1, 0, 0, 0]  # c1, c5
    assert rows["decision"].share == pytest.approx(4 / 6)
    assert [r.conversion_from_previous for r in jm.funnel] == pytest.approx(
        [None, 1.0, 0.8, 0.75, 1.0, 1 / 3])
    # Days from reaching the previous stage: consideration [2, 0, 10, 1, 0], decision
    # [3, 0, 2, 0], purchase [1, 0, 0], retention [4, 4, 0], advocacy [1].
    assert [r.median_days_from_previous for r in jm.funnel] == pytest.approx(
        [None, 1.0, 1.0, 0.0, 4.0, 1.0])
    d = jm.to_dict()
    assert [(x["stage"], x["dropped"]) for x in d["drop_offs"]] == [
        ("consideration", 1), ("decision", 1)]
    assert d["drop_offs"][1]["share_of_reached"] == 0.25


def test_flows_by_hand() -> None:
    jm = journey_map(arrays(EVENTS), SPEC, AS_OF, PARAMS)
    assert sorted(jm.flows) == sorted([
        # c0, c2 and c5 are first seen at awareness, c1 at consideration, c6 (a ticket and a
        # survey answer, nothing else) at retention.
        ("entered", "awareness", 3), ("entered", "consideration", 1),
        ("entered", "retention", 1),
        ("awareness", "consideration", 2), ("consideration", "decision", 2),
        ("decision", "purchase", 1), ("purchase", "retention", 2),
        ("awareness", "purchase", 1),  # c2 skipped consideration and decision
        ("retention", "advocacy", 1),
        ("consideration", "dropped", 1), ("decision", "dropped", 1),
        ("retention", "active", 2), ("advocacy", "active", 1),
    ])
    order = {s: k for k, s in enumerate(SPEC.stages)}
    # A DAG for a Sankey
    assert all(order[s] < order[t] for s, t, _ in jm.flows if s in order and t in order)
    assert_conserved(jm.flows, SPEC.stages, jm.customers - jm.no_stage)


def assert_conserved(flows: Sequence[tuple[str, str, int]], stages: Sequence[str],
                     staged: int) -> None:
    """Every customer with a stage enters once and ends once; no stage gains or loses any."""
    for stage in stages:
        into = sum(n for _, t, n in flows if t == stage)
        out = sum(n for s, _, n in flows if s == stage)
        assert into == out, stage
    assert sum(n for s, _, n in flows if s == "entered") == staged
    assert sum(n for _, t, n in flows if t in ("dropped", "active")) == staged


def test_kpis_by_hand() -> None:
    kpis = journey_map(arrays(EVENTS), SPEC, AS_OF, PARAMS).kpis
    assert kpis["customers"] == 6
    assert (kpis["conversion_rate"]["count"], kpis["conversion_rate"]["of"]) == (2, 6)
    assert kpis["conversion_rate"]["value"] == pytest.approx(1 / 3, abs=1e-6)
    # Of the buyers active at day 92 (c0: active on day 90; c2's activity stops on day 66),
    # none is still active at as_of: c0 lapsed in the last 8 days.
    assert (kpis["retention_rate"]["count"], kpis["retention_rate"]["of"]) == (0, 1)
    assert (kpis["repeat_purchase_rate"]["count"], kpis["repeat_purchase_rate"]["of"]) == (1, 2)
    assert kpis["csat"]["mean"] == 4.0 and kpis["csat"]["count"] == 3
    assert (kpis["csat"]["satisfied"]["count"], kpis["csat"]["satisfied"]["of"]) == (2, 3)
    # Latest answers: c2 -> 3 (detractor), c6 -> 9 (promoter): NPS 0 (its interval spans
    # everything with two answers: 100 x 1.96 x sqrt(1 / 2) > 100).
    assert kpis["nps"] == {"score": 0.0, "count": 2, "promoters": 1, "passives": 0,
                           "detractors": 1, "ci95": [-100.0, 100.0]}


def test_nps_arithmetic() -> None:
    answers = [0, 6, 7, 8, 9, 10, 10, 10]  # 2 detractors, 2 passives, 4 promoters -> 25
    events = [(k, 1.0, "survey_response", "email", float(s)) for k, s in enumerate(answers)]
    nps = journey_map(arrays(events, customers=len(answers)), SPEC, AS_OF, PARAMS).kpis["nps"]
    # Interval: 100 x 1.96 x sqrt((0.5 + 0.25 - 0.25^2) / 8) = 57.46 either side.
    assert nps == {"score": 25.0, "count": 8, "promoters": 4, "passives": 2, "detractors": 2,
                   "ci95": [-32.46, 82.46]}


def test_later_events_change_nothing() -> None:
    later = [*EVENTS, (0, 120, "purchase", "app", NAN), (5, 100, "page_view", "app", NAN)]
    assert journey_map(arrays(later), SPEC, AS_OF, PARAMS).to_dict() == journey_map(
        arrays(EVENTS), SPEC, AS_OF, PARAMS).to_dict()


def test_wilson_interval() -> None:
    lo, hi = wilson(2, 6) or (0, 0)
    # p = 1/3, n = 6, z = 1.96: centre 0.4020, half-width 0.3247 (Wilson 1927).
    assert (lo, hi) == pytest.approx((0.0968, 0.7000), abs=1e-3)
    zero_of_ten = wilson(0, 10)
    assert wilson(0, 0) is None and zero_of_ten is not None and zero_of_ten[0] == 0.0


def path_strings(paths: Paths) -> dict[str, tuple[float, float]]:
    text, conv, null = paths.aggregated()
    return {t: (c, n) for t, c, n in zip(text, conv, null, strict=True)}


def test_attribution_paths_by_channel_and_type() -> None:
    ev = arrays(EVENTS)
    assert path_strings(touchpoint_paths(ev, SPEC, AS_OF, PARAMS, "channel")) == {
        "display > search > search": (1, 0),  # c0, up to its first purchase
        "social > email > email": (0, 1),  # c1, with the contact
        "social": (1, 0),  # c2
        "email": (0, 1),  # c3: contacted only
        "search > search > search": (0, 1),  # c5: the unknown event type is no touchpoint
        "call_center > email": (0, 1),  # c6
    }
    by_type = path_strings(touchpoint_paths(ev, SPEC, AS_OF, PARAMS, "event_type"))
    assert by_type["ad_impression > page_view > add_to_cart"] == (1, 0)
    assert by_type["page_view > email_open > action_sent"] == (0, 1)
    no_contacts = JourneyMapParams(lookback_days=None, include_contacts=False)
    assert set(path_strings(touchpoint_paths(ev, SPEC, AS_OF, no_contacts, "channel"))) == {
        "display > search > search", "social > email", "social", "search > search > search",
        "call_center > email"}
    # A 10-day window [90, 100): c0's purchase on day 90 has no touchpoint before it (left
    # out); c2's path is its last answer; c6 unchanged.
    window = JourneyMapParams(lookback_days=10)
    assert path_strings(touchpoint_paths(ev, SPEC, AS_OF, window, "channel")) == {
        "email": (0, 1), "call_center > email": (0, 1)}


def test_journey_map_attribution_is_markov_on_those_paths() -> None:
    ev = arrays(EVENTS)
    d = journey_map(ev, SPEC, AS_OF, PARAMS).to_dict()
    expect = markov_attribution(touchpoint_paths(ev, SPEC, AS_OF, PARAMS, "channel"))
    assert d["attribution"]["by_channel"] == expect.to_dict()
    assert d["attribution"]["by_channel"]["total_conversions"] == 2
    assert sum(x["share"] for x in d["attribution"]["by_touchpoint"]["labels"]) == pytest.approx(
        1.0, abs=1e-5)
    json.dumps(d)  # JSON-ready as it is


def test_empty_input() -> None:
    d = journey_map(arrays([], customers=0), SPEC, AS_OF, PARAMS).to_dict()
    assert d["customers"] == 0 and d["flows"] == [] and d["drop_offs"] == []
    assert d["kpis"]["conversion_rate"]["value"] is None and d["kpis"]["nps"]["score"] is None
    assert d["attribution"]["by_channel"]["labels"] == []
    json.dumps(d)


def test_shipped_params_load() -> None:
    params = load_params()
    assert params.drop_off_days == 30 and params.lookback_days == 90
    assert params.include_contacts is True


@pytest.mark.parametrize(("raw", "field"), [
    ({"drop_off_days": 0}, "drop_off_days"),
    ({"retention_days": "90"}, "retention_days"),
    ({"lookback_days": 1.5}, "lookback_days"),
    ({"include_contacts": "yes"}, "include_contacts"),
    ({"satisfied_min": None}, "satisfied_min"),
    ({"nps_score": ""}, "nps_score"),
    ({"detractor_max": 9}, "detractor_max"),
    ({"drop_off": 30}, "unknown keys"),
])
def test_bad_params_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        params_from_dict(raw, "jm.yaml")


def test_params_file(tmp_path: Path) -> None:
    path = tmp_path / "jm.yaml"
    path.write_text("drop_off_days: 14\nlookback_days: null\n")
    params = load_params(path)
    assert (params.drop_off_days, params.lookback_days, params.retention_days) == (14, None, 90)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_params(path)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_funnel_agrees_with_journey_summary(tmp_path: Path) -> None:
    """The same funnel from SQL (``journey summary``) and from the arrays, on simulated data."""
    simulate(SimSpec(400, 120, seed=11), tmp_path / "sim")
    as_of = datetime(2025, 4, 1, tzinfo=UTC)
    with EventStore(tmp_path / "events.duckdb") as es:
        es.ingest(tmp_path / "sim" / "events", identity_mapping(), load_taxonomy())
        es.load_attributes(pq.read_table(tmp_path / "sim" / "customers"))
        summary = journey_summary(es, SPEC.taxonomy, as_of)
        ev, _ = BatchEngine(es, SPEC).encoded(as_of)
    jm = journey_map(ev, SPEC, micros(as_of), load_params())
    assert (jm.customers, jm.events, jm.no_stage) == (
        summary.customers, summary.events, summary.no_stage)
    assert [r.reached for r in jm.funnel] == [r.reached for r in summary.stages]
    assert [r.at_stage for r in jm.funnel] == [r.customers_at for r in summary.stages]
    # Flows conserve customers: every customer with a stage ends in dropped or active, and
    # those dropped at a stage are the funnel's.
    assert_conserved(jm.flows, SPEC.stages, jm.customers - jm.no_stage)
    ends = [(s, t, n) for s, t, n in jm.flows if t in ("dropped", "active")]
    assert {s: n for s, t, n in ends if t == "dropped"} == {
        r.stage: r.dropped for r in jm.funnel if r.dropped}
    by_channel = jm.by_channel
    assert by_channel.total_conversions > 0
    assert sum(c.share for c in by_channel.labels) == pytest.approx(1.0)
