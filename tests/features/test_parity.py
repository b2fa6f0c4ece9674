"""Batch and online vectors are identical for every customer of a simulated store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest

from features.batch import BatchEngine
from features.online import OnlineFeatures
from features.spec import load_spec
from features.store import EventStore
from tests.features.engines import SIM_CUTOFF, sim_store  # noqa: F401
from tests.features.test_leakage import assert_same_vector


def test_batch_and_online_agree_for_every_customer(sim_store: Path) -> None:  # noqa: F811
    spec = load_spec()
    online = OnlineFeatures(spec)
    with EventStore(sim_store, read_only=True) as store:
        table = BatchEngine(store, spec).features(SIM_CUTOFF)
        assert table.num_rows > 1000
        assert pc.sum(table["purchases_total"]).as_py() > 100  # the data exercises the families
        for row in table.to_pylist():
            customer = row.pop("customer_id")
            attrs = {a: row[f"attr_{a}"] for a in spec.attributes}
            assert all(attrs.values())
            vector = online.vector(customer, store.customer_history(customer), SIM_CUTOFF, attrs)
            assert_same_vector(vector, row)


def test_population_is_customers_seen_before_the_cutoff(sim_store: Path) -> None:  # noqa: F811
    early = SIM_CUTOFF - timedelta(days=60)  # customers keep arriving until day 90
    with EventStore(sim_store, read_only=True) as store:
        table = BatchEngine(store, load_spec()).features(early)
        seen = store.con.execute(
            "SELECT count(DISTINCT customer_id) FROM events WHERE ts < ?", [early]
        ).fetchone()
        everyone = store.con.execute("SELECT count(DISTINCT customer_id) FROM events").fetchone()
    assert seen is not None and everyone is not None
    assert table.num_rows == seen[0] < everyone[0]
    assert table["customer_id"].to_pylist() == sorted(table["customer_id"].to_pylist())


def test_parallel_kernel_matches_serial(sim_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Large batches run customers on all cores; the result must not depend on it."""
    from features import kernels

    spec = load_spec()
    with EventStore(sim_store, read_only=True) as store:
        engine = BatchEngine(store, spec)
        monkeypatch.setattr(kernels, "PARALLEL_MIN_CUSTOMERS", 10**9)
        serial = engine.features(SIM_CUTOFF)
        monkeypatch.setattr(kernels, "PARALLEL_MIN_CUSTOMERS", 0)
        parallel = engine.features(SIM_CUTOFF)
    assert parallel.column_names == serial.column_names
    assert parallel["customer_id"].to_pylist() == serial["customer_id"].to_pylist()
    for left, right in zip(serial.to_pylist(), parallel.to_pylist(), strict=True):
        assert_same_vector(left, right)


def test_partitioned_batch_matches_one_pass(
    sim_store: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Logs larger than a partition are processed in customer-key partitions (bounded memory);
    the vectors must be the same as in one pass."""
    from features import batch

    spec = load_spec()
    with EventStore(sim_store, read_only=True) as store:
        whole = BatchEngine(store, spec).features(SIM_CUTOFF)
        monkeypatch.setattr(batch, "ROWS_PER_PARTITION", 20_000)
        parts = BatchEngine(store, spec).features(SIM_CUTOFF)
    assert parts.num_rows == whole.num_rows
    by_id = {row.pop("customer_id"): row for row in parts.to_pylist()}
    for row in whole.to_pylist():
        assert_same_vector(row, by_id[row.pop("customer_id")])
