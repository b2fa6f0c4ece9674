"""One rule for reading a score, in every engine: the key is a path into the properties, a
number is a JSON number or ASCII decimal text, the first of a key written twice counts, and
properties that are not standard JSON give no score. Batch, online (from rows, from the store,
and from the service's history index, loaded or appended) must agree value by value."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from features.batch import BatchEngine, micros
from features.events import score_number
from features.history import HistoryIndex
from features.online import OnlineFeatures
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from tests.features.histories import CUTOFF, to_table
from tests.features.test_leakage import assert_same_vector

SPEC_TEXT = """\
scores:
  csat: {event_type: support_ticket, key: csat, low: 2}
  nps: {event_type: survey_response, key: survey.nps}
  quoted: {event_type: review, key: "it's"}
  spaced: {event_type: email_open, key: "my key"}
"""
NAN = math.nan
# (properties of a support ticket, the CSAT it gives)
CSAT = [
    ('{"csat": 4}', 4.0), ('{"csat": "4"}', 4.0), ('{"csat": "+4"}', 4.0), ('{"csat": ".5"}', 0.5),
    ('{"csat": "5."}', 5.0), ('{"csat": 2.5e0}', 2.5), ('{"csat": "1e1"}', 10.0),
    ('{"csat": " 3 "}', NAN), ('{"csat": "1_000"}', NAN), ('{"csat": "\u0663"}', NAN),
    ('{"csat": "Infinity"}', NAN), ('{"csat": "NaN"}', NAN), ('{"csat": "n/a"}', NAN),
    ('{"csat": "3\\n"}', NAN), ('{"csat": "0x10"}', NAN), ('{"csat": 1e400}', NAN),
    ('{"csat": "1e400"}', NAN), ('{"csat": true}', NAN), ('{"csat": null}', NAN),
    ('{"csat": [3]}', NAN), ('{"csat": {"v": 3}}', NAN), ('{"other": 3}', NAN),
    ('{"csat": 5, "csat": 1}', 5.0),  # written twice: the first counts, as DuckDB and Spark
    ('{"csat": 5, "x": NaN}', NAN),  # not standard JSON: Spark reads none of it
    ('{"csat": 5,}', NAN),
    ('{"csat": 12345678901234567890123}', 1.2345678901234568e22),
]


def test_the_number_rule() -> None:
    assert score_number("3") == 3.0 and score_number(3) == 3.0 and score_number(2.5) == 2.5
    for value in (" 3", "1_000", "\u0663", "Infinity", "inf", "nan", "", "3\n", True, None,
                  [1], {"a": 1}, float("inf"), 10**400):
        assert math.isnan(score_number(value)), value


def _event(i: int, customer: str, event_type: str, properties: str | None) -> dict[str, Any]:
    return {"event_id": f"{customer}-{i}", "customer_id": customer,
            "ts": CUTOFF - timedelta(days=30 - i), "event_type": event_type, "channel": "email",
            "value": None, "action": None, "properties": properties}


def _events() -> list[dict[str, Any]]:
    """Customer k has one support ticket with the k-th CSAT case, plus a nested, a quoted and
    a spaced score; customer "e5" the audit's case (mean of 4, 2 and 5; " 3 " is no score)."""
    out = []
    for k, (props, _) in enumerate(CSAT):
        c = f"c{k:02d}"
        out += [_event(0, c, "support_ticket", props),
                _event(1, c, "survey_response", f'{{"survey": {{"nps": {k}}}, "nps": 99}}'),
                _event(2, c, "review", f'{{"it\'s": {k}, "its": 99}}'),
                _event(3, c, "email_open", f'{{"my key": "{k}", "my": {{"key": 99}}}}')]
    e5 = ['{"csat": "4"}', '{"csat": 2}', '{"csat": " 3 "}', '{"csat": 5, "csat": 1}']
    return out + [_event(i, "e5", "support_ticket", p) for i, p in enumerate(e5)]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> FeatureSpec:
    path = tmp_path_factory.mktemp("spec") / "features.yaml"
    path.write_text(SPEC_TEXT, encoding="utf-8")
    return load_spec(path)


def test_batch_reads_each_score_by_the_rule(tmp_path: Path, spec: FeatureSpec) -> None:
    with EventStore(tmp_path / "s.duckdb") as store:
        store.append(to_table(_events()))
        rows = {r["customer_id"]: r for r in BatchEngine(store, spec).features(CUTOFF).to_pylist()}
    for k, (props, expected) in enumerate(CSAT):
        row = rows[f"c{k:02d}"]
        got = row["csat_last"]
        assert (math.isnan(got) and math.isnan(expected)) or got == expected, props
        assert row["nps_last"] == row["quoted_last"] == row["spaced_last"] == k
    assert rows["e5"]["csat_count"] == 3 and rows["e5"]["csat_mean"] == pytest.approx(11 / 3)


def test_online_agrees_with_batch_from_rows_store_and_history_index(
    tmp_path: Path, spec: FeatureSpec
) -> None:
    events = _events()
    online = OnlineFeatures(spec)
    with EventStore(tmp_path / "s.duckdb") as store:
        store.append(to_table(events))
        batch = {r.pop("customer_id"): r for r in BatchEngine(store, spec).features(CUTOFF)
                 .to_pylist()}
        loaded = HistoryIndex.load(store, spec)
        for customer, vector in batch.items():
            mine = [e for e in to_table(events).to_pylist() if e["customer_id"] == customer]
            for got in (online.vector(customer, mine, CUTOFF),
                        online.vector(customer, store.customer_history(customer), CUTOFF)):
                assert_same_vector({k: v for k, v in got.items() if k in vector}, vector)
            arrays = loaded.arrays(customer, micros(CUTOFF))
            assert arrays is not None
            assert_same_vector(online.from_arrays(arrays, micros(CUTOFF)), got)


def test_events_posted_to_a_running_service_score_as_loaded_ones(
    tmp_path: Path, spec: FeatureSpec
) -> None:
    """The service loads the store at start (batch arrays) and encodes appended events itself:
    the same events must give the same scores either way."""
    events = _events()
    online = OnlineFeatures(spec)
    t = micros(CUTOFF)
    with EventStore(tmp_path / "loaded.duckdb") as store:
        store.append(to_table(events))
        at_start = HistoryIndex.load(store, spec)
    with EventStore(tmp_path / "posted.duckdb") as store:
        later = HistoryIndex.load(store, spec)  # an empty store: every event comes later
        appended = store.append(to_table(events), returning=True)
        assert appended.rows is not None
        later.add(appended.rows)
    for customer in sorted({e["customer_id"] for e in events}):
        a, b = at_start.arrays(customer, t), later.arrays(customer, t)
        assert a is not None and b is not None
        assert_same_vector(online.from_arrays(a, t), online.from_arrays(b, t))
