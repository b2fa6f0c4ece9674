"""Leakage: nothing at or after T may change a vector for T (property-based, with hypothesis).
Parity of batch and online on the same random histories (ties, unknown types and channels)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.batch import BatchEngine
from features.online import OnlineFeatures
from features.spec import load_spec
from features.store import EventStore
from tests.features.histories import CHANNELS, CUTOFF, TYPES, random_history, to_table

SPEC = load_spec()
ONLINE = OnlineFeatures(SPEC)

future_event = st.tuples(
    st.integers(0, 90 * 86_400 * 1_000_000),  # microseconds at or after T
    st.sampled_from(TYPES),
    st.sampled_from(CHANNELS),
    st.one_of(st.none(), st.floats(0, 1e4)),
    st.sampled_from([None, "discount_email"]),
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a))
    return bool(a == b)


def assert_same_vector(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)
    diff = {k: (a[k], b[k]) for k in a if not same(a[k], b[k])}
    assert not diff, diff


def future(
    customer: str, drawn: list[tuple[int, str, str | None, float | None, str | None]]
) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"f{customer}-{i}",
            "customer_id": customer,
            "ts": CUTOFF + timedelta(microseconds=us),
            "event_type": t,
            "channel": ch or "unknown",
            "value": v,
            "action": a,
            "properties": '{"csat": 1}',
        }
        for i, (us, t, ch, v, a) in enumerate(drawn)
    ]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), later=st.lists(future_event, max_size=15)
)
def test_online_vector_ignores_events_at_or_after_the_cutoff(
    seed: int, n: int, later: list[Any]
) -> None:
    past = to_table(random_history(np.random.default_rng(seed), "c", n)).to_pylist()
    before = ONLINE.vector("c", past, CUTOFF)
    after = ONLINE.vector("c", past + future("c", later), CUTOFF)
    assert_same_vector(before, after)


def _batch(path: Path, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    with EventStore(path) as store:
        store.append(to_table(events))
        table = BatchEngine(store, SPEC).features(CUTOFF)
    return {row.pop("customer_id"): row for row in table.to_pylist()}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), later=st.lists(future_event, max_size=10))
def test_batch_vectors_ignore_later_events_and_match_online(
    tmp_path_factory: Any, seed: int, later: list[Any]
) -> None:
    rng = np.random.default_rng(seed)
    customers = [f"c{k}" for k in range(int(rng.integers(1, 5)))]
    past = [e for c in customers for e in random_history(rng, c, int(rng.integers(0, 50)))]
    extra = future(customers[0], later)
    root = tmp_path_factory.mktemp("leak")
    plain, padded = _batch(root / "a.duckdb", past), _batch(root / "b.duckdb", past + extra)
    assert plain.keys() == padded.keys()
    for customer, vector in plain.items():
        assert_same_vector(vector, padded[customer])
        mine = [e for e in to_table(past).to_pylist() if e["customer_id"] == customer]
        online = ONLINE.vector(customer, mine, CUTOFF)
        attrs = {k: v for k, v in online.items() if k.startswith("attr_")}
        assert all(v is None for v in attrs.values())
        assert_same_vector(online, vector)
    # Customers whose every event is at or after T are not in the population.
    seen_before = {e["customer_id"] for e in past if e["ts"] < CUTOFF}
    assert set(plain) == seen_before


def test_store_history_and_arrow_input_give_the_same_vector(tmp_path: Path) -> None:
    events = random_history(np.random.default_rng(7), "c", 120)
    with EventStore(tmp_path / "s.duckdb") as store:
        store.append(to_table(events))
        history = store.customer_history("c")
    from_rows = ONLINE.vector("c", to_table(events).to_pylist(), CUTOFF)
    from_arrow = ONLINE.vector("c", history, CUTOFF)
    assert isinstance(history, pa.Table)
    assert_same_vector(from_rows, from_arrow)
