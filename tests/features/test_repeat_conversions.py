"""The taxonomy's repeat_conversion_stage ("bought again" is retention): the same stage in the
feature kernel, the labels, the journey summary and the journey map, and batch equals online
on a simulated store. Spark's parity is in test_spark.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from features.batch import BatchEngine, micros
from features.errors import ConfigError
from features.labels import labels
from features.online import OnlineFeatures
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from features.summary import journey_summary
from features.taxonomy import load_taxonomy
from models.journey_events import StageEvents
from tests.features.engines import SIM_CUTOFF, sim_store  # noqa: F401
from tests.features.kernel_cases import T, ago, ev, vec
from tests.features.test_labels import at, by_customer, fill
from tests.features.test_labels import ev as event
from tests.features.test_leakage import assert_same_vector

PURCHASE, RETENTION = 3, 4


def repeat_spec(stage: str = "retention") -> FeatureSpec:
    return load_spec(taxonomy=replace(load_taxonomy(), repeat_conversion_stage=stage))


@pytest.fixture(scope="module")
def rspec() -> FeatureSpec:
    return repeat_spec()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "r.duckdb") as s:
        yield s


# -- the setting ---------------------------------------------------------------------------------
def test_read_from_the_taxonomy_file_and_checked(tmp_path: Path) -> None:
    text = "stages: [a, b, c]\nevent_types: {view: a, purchase: b}\n"
    path = tmp_path / "t.yaml"
    path.write_text(text + "repeat_conversion_stage: c\n", encoding="utf-8")
    assert load_taxonomy(path).repeat_stage_index == 2
    path.write_text(text + "repeat_conversion_stage: loyal\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t.yaml: repeat_conversion_stage 'loyal' is not a "):
        load_taxonomy(path)
    path.write_text(text + "repeat_conversion_stages: c\n", encoding="utf-8")  # misspelt
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['repeat_conversion_stages'\]"):
        load_taxonomy(path)
    assert load_taxonomy().repeat_stage_index == -1  # the shipped taxonomy has no such rule


def test_the_purchase_log_example_is_the_default_with_the_rule() -> None:
    example = load_taxonomy(Path(__file__).parents[2] / "examples" / "purchases_taxonomy.yaml")
    assert example == replace(load_taxonomy(), repeat_conversion_stage="retention")


def test_the_rule_changes_the_feature_hash_only_when_set(rspec: FeatureSpec) -> None:
    assert "repeat_conversion_stage" not in load_spec().definition()
    assert rspec.hash != load_spec().hash
    assert rspec.definition()["repeat_conversion_stage"] == "retention"


# -- the feature kernel --------------------------------------------------------------------------
def test_a_later_purchase_signals_retention(rspec: FeatureSpec) -> None:
    online = OnlineFeatures(rspec)
    events = [ev(ago(40), "page_view"), ev(ago(30), "purchase", value=10.0),
              ev(ago(30), "purchase", value=5.0),  # the same time as the first: not "again"
              ev(ago(12), "page_view"), ev(ago(5), "purchase", value=20.0)]
    v = vec(online, events)
    assert (v["stage_current"], v["stage_furthest"]) == (RETENTION, RETENTION)
    assert v["days_in_stage"] == 5.0
    assert v["stage_regressions"] == 1.0  # purchase -> consideration
    assert (v["st_purchase_7d"], v["st_retention_7d"]) == (0.0, 1.0)
    assert (v["st_purchase_90d"], v["st_retention_90d"]) == (2.0, 1.0)
    assert v["purchases_total"] == 3.0  # still three conversions
    without = vec(OnlineFeatures(load_spec()), events)
    assert (without["stage_current"], without["stage_furthest"]) == (PURCHASE, PURCHASE)
    only_first = vec(online, events[:3])
    assert (only_first["stage_current"], only_first["stage_furthest"]) == (PURCHASE, PURCHASE)


def test_a_repeat_purchase_never_lowers_a_stage() -> None:
    """With the rule pointing at an earlier stage, a repeat purchase keeps its own stage."""
    v = vec(OnlineFeatures(repeat_spec("decision")),
            [ev(ago(9), "purchase"), ev(ago(2), "purchase")])
    assert (v["stage_current"], v["stage_furthest"]) == (PURCHASE, PURCHASE)


# -- labels, summary and the journey map ---------------------------------------------------------
def _stored(store: EventStore) -> None:
    fill(store, [
        event("first", at(-10), "page_view"), event("first", at(3), "purchase", 10.0),
        event("again", at(-20), "purchase", 10.0), event("again", at(5), "purchase", 12.0),
        event("twice-in", at(-5), "page_view"), event("twice-in", at(2), "purchase", 5.0),
        event("twice-in", at(4), "purchase", 5.0),
        event("same-day", at(-3), "purchase"), event("same-day", at(-3), "purchase"),
    ])


def test_labels(store: EventStore, rspec: FeatureSpec) -> None:
    _stored(store)
    got = {c: r["next_stage"] for c, r in by_customer(labels(store, rspec, T, 7)).items()}
    assert got == {"first": "purchase", "again": "retention", "twice-in": "retention",
                   "same-day": "inactive"}
    plain = {c: r["next_stage"] for c, r in by_customer(labels(store, load_spec(), T, 7)).items()}
    assert set(plain.values()) == {"purchase", "inactive"}


def test_summary_and_journey_map_agree(store: EventStore, rspec: FeatureSpec) -> None:
    _stored(store)
    summary = journey_summary(store, rspec.taxonomy)
    at_stage = {r.stage: r.customers_at for r in summary.stages}
    # purchase: first, same-day; retention: again, twice-in
    assert (at_stage["purchase"], at_stage["retention"]) == (2, 2)
    early = journey_summary(store, rspec.taxonomy, as_of=T + timedelta(days=4, microseconds=1))
    assert {r.stage: r.customers_at for r in early.stages}["retention"] == 1  # twice-in only
    plain = journey_summary(store, load_taxonomy())
    assert {r.stage: r.customers_at for r in plain.stages}["retention"] == 0

    arrays, _ = BatchEngine(store, rspec).encoded(T + timedelta(days=30))
    e = StageEvents.before(arrays, rspec, micros(T + timedelta(days=30)))
    furthest = {arrays.customer_ids[c]: int(e.stage[e.ev.cust == c].max())
                for c in range(arrays.n_customers)}
    assert furthest == {"first": PURCHASE, "same-day": PURCHASE, "again": RETENTION,
                        "twice-in": RETENTION}


def test_the_summary_of_a_purchase_log_without_the_rule_says_how_to_see_retention(
        store: EventStore, rspec: FeatureSpec) -> None:
    _stored(store)  # page views too (a Segment stream): nobody reaches retention either
    mixed = journey_summary(store, load_taxonomy())
    assert mixed.unstaged_repeats == 2  # again, twice-in; same-day's two are on one day
    assert "2 customers converted again later, but the taxonomy" in " ".join(mixed.lines())
    store.con.execute("DELETE FROM events WHERE event_type_code <> "
                      "(SELECT code FROM vocab WHERE kind = 'event_type' AND name = 'purchase')")
    assert journey_summary(store, load_taxonomy()).unstaged_repeats == 2
    assert journey_summary(store, rspec.taxonomy).unstaged_repeats == 0  # the rule is on
    assert journey_summary(store, load_taxonomy(), as_of=T).unstaged_repeats == 0  # none yet


# -- batch equals online -------------------------------------------------------------------------
def test_batch_and_online_agree_with_the_rule(sim_store: Path, rspec: FeatureSpec) -> None:  # noqa: F811
    online = OnlineFeatures(rspec)
    with EventStore(sim_store, read_only=True) as es:
        table = BatchEngine(es, rspec).features(SIM_CUTOFF)
        retained = [r for r in table.to_pylist() if r["stage_furthest"] == RETENTION]
        plain = BatchEngine(es, load_spec()).features(SIM_CUTOFF)
        assert sum(r["stage_furthest"] == RETENTION for r in plain.to_pylist()) < len(retained)
        for row in table.to_pylist()[:400] + retained[:100]:
            customer: Any = row.pop("customer_id")
            attrs = {a: row[f"attr_{a}"] for a in rspec.attributes}
            vector = online.vector(customer, es.customer_history(customer), SIM_CUTOFF, attrs)
            assert_same_vector(vector, row)
