"""A stored action is read by the loader's rule in every engine: blank is no action, padding
is trimmed. The service stored "" and " discount_email " as sent; batch and Spark counted the
first as a marketing action ("other") where a running service's online vectors counted none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from features.batch import BatchEngine, micros
from features.history import HistoryIndex
from features.normalize import normal_action
from features.online import OnlineFeatures
from features.schema import events_table
from features.spec import load_spec
from features.store import EventStore
from tests.features.test_leakage import assert_same_vector

SPEC = load_spec()
T = datetime(2024, 2, 1, tzinfo=UTC)
ACTION_FEATURES = ("actions_30d", "act_other_90d", "act_discount_email_90d", "days_since_action",
                   "action_responses", "action_response_rate")


def _events(first: str | None, second: str | None) -> list[dict[str, Any]]:
    def at(day: int, i: int, **fields: Any) -> dict[str, Any]:
        return {"event_id": f"e{i}", "customer_id": "c1", "channel": "email",
                "ts": datetime(2024, 1, day, tzinfo=UTC), **fields}

    return [at(1, 1, event_type="page_view"),
            at(2, 2, event_type="purchase", value=10.0, action=first),
            at(3, 3, event_type="action_sent", action=second),
            at(4, 4, event_type="page_view")]


@pytest.mark.parametrize("blank", ["", "  ", "\t\n"])
def test_a_blank_action_is_no_action_in_batch_restarted_live_and_inline(
        tmp_path: Path, blank: str) -> None:
    events = _events(blank, " discount_email ")
    online, t = OnlineFeatures(SPEC), micros(T)
    with EventStore(tmp_path / "s.duckdb") as store:
        store.append(events_table(events[:1]))
        store.serve_appends(2)
        running = HistoryIndex.load(store, SPEC)  # the service at start
        added = store.append(events_table(events[1:]), returning=True)
        assert added.rows is not None
        running.add(added.rows)  # the service after POST /v1/events
        live_arrays = running.arrays("c1", t)
        restarted_arrays = HistoryIndex.load(store, SPEC).arrays("c1", t)
        assert live_arrays is not None and restarted_arrays is not None
        live = online.from_arrays(live_arrays, t)
        restarted = online.from_arrays(restarted_arrays, t)
        batch = BatchEngine(store, SPEC).features(T).to_pylist()[0]
        from_store = online.vector("c1", store.customer_history("c1"), T)
    inline = online.vector("c1", events, T)
    # Read as the loader would have stored them: no action, then discount_email.
    clean = online.vector("c1", [{**e, "action": normal_action(e.get("action"))}
                                 for e in events], T)
    assert clean["actions_30d"] == 1 and clean["act_discount_email_90d"] == 1
    assert clean["act_other_90d"] == 0
    batch.pop("customer_id")
    for vector in (live, restarted, from_store, inline):
        assert_same_vector(vector, clean)
    assert_same_vector(batch, clean)


@pytest.mark.spark
def test_spark_reads_blank_and_padded_actions_as_batch(tmp_path: Path, spark: Any) -> None:
    from features.spark import spark_features

    events = _events("", "\tdiscount_email ")
    pq.write_table(events_table(events), tmp_path / "events.parquet")
    got = spark_features(spark.read.parquet(str(tmp_path / "events.parquet")), SPEC, T)
    row = got.toArrow().to_pylist()[0]
    with EventStore(tmp_path / "s.duckdb") as store:
        store.append(events_table(events))
        batch = BatchEngine(store, SPEC).features(T).to_pylist()[0]
    assert {k: row[k] for k in ACTION_FEATURES} == {k: batch[k] for k in ACTION_FEATURES}
    assert batch["actions_30d"] == 1 and batch["act_other_90d"] == 0


@pytest.mark.parametrize(("sent", "stored"), [
    ("", None), ("   ", None), (" discount_email ", "discount_email"), ("x y", "x y"),
    (None, None), ("Discount_Email", "Discount_Email")])  # case is kept, as the loader does
def test_normal_action_is_the_loaders_rule(sent: str | None, stored: str | None) -> None:
    assert normal_action(sent) == stored
