"""Which snapshot training reuses, on a tiny store (no shared world): labels by their churn gap,
features only while the attributes they hold are the store's; and how the time-to-churn
training reads labels that do not apply to a customer (empty: no activity before T)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from features.schema import events_table
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from training.dataset import SnapshotSource
from training.survival import at_risk

T = datetime(2025, 3, 1, tzinfo=UTC)
HORIZON = 14


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """a: active before and in the window; b: silent from T-20 on; c: only a contact before
    T, then active (no time to churn); every window up to T+H observed."""
    day = timedelta(days=1)
    rows = [("a", T - 3 * day, "page_view"), ("a", T + 2 * day, "purchase"),
            ("b", T - 20 * day, "page_view"), ("c", T - 2 * day, "action_sent"),
            ("c", T + 1 * day, "page_view"), ("a", T + 20 * day, "page_view")]
    path = tmp_path / "events.duckdb"
    with EventStore(path) as es:
        es.append(events_table([
            {"event_id": f"e{i}", "customer_id": c, "ts": ts, "event_type": kind,
             "channel": "web", "action": "discount_email" if kind == "action_sent" else None}
            for i, (c, ts, kind) in enumerate(rows)]))
        es.load_attributes(pa.table({"customer_id": ["a", "b", "c"],
                                     "region": ["west", "east", "north"]}))
    return path


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def source(store: Path, spec: FeatureSpec, tmp_path: Path, logged: list[str]
           ) -> Iterator[SnapshotSource]:
    src = SnapshotSource(store, tmp_path / "snapshots", spec, log=logged.append)
    try:
        yield src
    finally:
        src.close()


def computed(logged: list[str]) -> list[str]:
    """The snapshots computed since the last call."""
    out = [line for line in logged if line.startswith("computing")]
    logged.clear()
    return out


def test_labels_of_each_churn_gap_are_kept_and_reused(source: SnapshotSource,
                                                      logged: list[str]) -> None:
    """Gap 30, then 60, then 30 again: the third is the first snapshot, not recomputed over the
    60-day one it used to be replaced by."""
    g30 = source.labels(T, HORIZON, 30)
    g60 = source.labels(T, HORIZON, 60)
    assert g30.path != g60.path
    assert len(computed(logged)) == 2
    again = source.labels(T, HORIZON, 30)
    assert computed(logged) == []
    assert again.path == g30.path and again.manifest["churn_gap_days"] == 30
    days = dict(zip(again.read()["customer_id"].to_pylist(),
                    again.read()["churn_days"].to_pylist(), strict=True))
    assert days["b"] == 10.0  # silent from T-20: churn at T+10 with a 30-day gap


def test_features_are_computed_again_after_an_attribute_load(
        source: SnapshotSource, store: Path, logged: list[str]) -> None:
    """The audit's repro: a feature snapshot, then `journey attributes` changes a region; the
    training path must not hand back the old region beside a fresh batch's new one."""
    first = source.features(T)
    assert region(first.read(), "a") == "west"
    assert source.features(T).path == first.path and len(computed(logged)) == 1
    source.close()  # the store is written to below: no reader may hold it
    with EventStore(store) as es:
        es.load_attributes(pa.table({"customer_id": ["a"], "region": ["CHANGED"]}))
    again = source.features(T)
    assert computed(logged) == [f"computing features as of {T.date()} ..."]
    assert region(again.read(), "a") == "CHANGED"


def region(table: pa.Table, customer: str) -> str:
    rows = {r["customer_id"]: r["attr_region"] for r in table.to_pylist()}
    return str(rows[customer])


def test_time_to_churn_leaves_out_customers_without_activity_before_t(
        source: SnapshotSource) -> None:
    """c's time to churn is empty (only a contact before T): survival fitting and scoring leave
    it out, as they leave out those already churned, and read the others' flags as booleans."""
    frame = source.frame(T, HORIZON, 30)
    assert frame.set_index("customer_id").loc["c", ["churn_days", "churn_observed"]].isna().all()
    rows, days, observed = at_risk(frame)
    assert sorted(rows["customer_id"]) == ["a", "b"]
    assert observed.dtype == np.bool_ and days.dtype == np.float64
    assert dict(zip(rows["customer_id"], observed, strict=True)) == {"a": False, "b": True}
