"""The in-memory history index gives the same vectors as reading the store, before and after
appends (new events, ties, out-of-order events, new customers), one customer or many."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from features.batch import BatchEngine, micros
from features.history import END_OF_TIME, HistoryIndex
from features.online import OnlineFeatures, Vector
from features.schema import EVENT_SCHEMA
from features.store import EventStore
from tests.training.world import World

T = datetime(2025, 10, 1, tzinfo=UTC)


def same(a: Vector, b: Vector) -> bool:
    def eq(x: object, y: object) -> bool:
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y

    return a.keys() == b.keys() and all(eq(a[k], b[k]) for k in a)


@pytest.fixture
def store(world: World, tmp_path: Path) -> EventStore:
    path = tmp_path / "events.duckdb"
    shutil.copy(world.store, path)
    return EventStore(path)


def check(store: EventStore, index: HistoryIndex, ids: list[str], when: datetime) -> None:
    online = OnlineFeatures(index.spec)
    t = micros(when)
    for cid in ids:
        attrs = index.attributes.of(cid)
        arrays = index.arrays(cid, t)
        assert arrays is not None
        from_index = online.vectors(arrays, t, [attrs]).records()[0]
        from_store = online.vector(cid, store.customer_history(cid), when, attrs)
        assert same(from_index, from_store), cid
    many = online.vectors(index.many(ids, t), t, [index.attributes.of(c) for c in ids])
    for cid, row in zip(ids, many.records(), strict=True):
        assert same(row, online.vector(cid, store.customer_history(cid), when,
                                       index.attributes.of(cid)))


def rows(events: list[dict[str, object]]) -> pa.Table:
    full = [{"channel": "web", "value": None, "action": None, "properties": None, **e}
            for e in events]
    return pa.Table.from_pylist(full, schema=EVENT_SCHEMA)


def test_index_matches_the_store(world: World, store: EventStore) -> None:
    index = HistoryIndex.load(store, world.spec)
    ids = [r[0] for r in store.con.execute(
        "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 40").fetchall()]
    count = store.con.execute("SELECT count(DISTINCT customer_key) FROM events").fetchone()
    assert count is not None and index.n_customers == count[0]
    check(store, index, ids, T)
    check(store, index, ids, T + timedelta(days=45, hours=7))
    assert index.arrays("nobody", micros(T)) is None and "nobody" not in index
    with pytest.raises(KeyError):
        index.many([ids[0], "nobody"], micros(T))


@pytest.mark.parametrize("rows", [5_000, 60_000])
def test_a_load_in_key_ranges_holds_what_one_pass_would(world: World, store: EventStore,
                                                       rows: int) -> None:
    engine = BatchEngine(store, world.spec)
    ranges = list(engine.encoded_ranges(END_OF_TIME, engine.key_ranges(END_OF_TIME, rows)))
    whole, _ = engine.encoded(END_OF_TIME)
    assert len(ranges) > 2  # several ranges, each whole customers in key order
    assert [c for r, _ in ranges for c in r.customer_ids] == whole.customer_ids
    index = HistoryIndex.load(store, world.spec, rows=rows)
    one = HistoryIndex.of(world.spec, whole, index.attributes)
    assert index.customer_ids() == one.customer_ids()
    assert index._segment == one._segment
    assert (index.loaded.t0, index.loaded.unit) == (one.loaded.t0, one.loaded.unit)
    for name in ("ts", *one.loaded.columns):
        want = one.loaded.ts if name == "ts" else one.loaded.columns[name]
        got = index.loaded.ts if name == "ts" else index.loaded.columns[name]
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("when", [T, END_OF_TIME])
def test_encoded_in_key_ranges_is_encoded_in_one_pass(world: World, store: EventStore,
                                                      when: datetime) -> None:
    engine = BatchEngine(store, world.spec)
    (one, one_keys), (joined, joined_keys) = engine.encoded(when), engine.encoded(when, 7_000)
    assert len(engine.key_ranges(when, 7_000).bounds) > 2
    assert joined.customer_ids == one.customer_ids
    np.testing.assert_array_equal(joined_keys, one_keys)
    assert one.segments is not None and joined.segments is not None
    for a, b in zip(joined.segments, one.segments, strict=True):
        np.testing.assert_array_equal(a, b)
    for name in ("cust", "ts", "etype", "channel", "action", "value", "score"):
        want, got = getattr(one, name), getattr(joined, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_appends_keep_the_index_in_step(world: World, store: EventStore) -> None:
    index = HistoryIndex.load(store, world.spec)
    first = store.con.execute("SELECT customer_id FROM customers LIMIT 1").fetchone()
    assert first is not None
    cid = first[0]
    last = store.customer_history(cid)["ts"].to_pylist()[-1]
    events = [
        {"event_id": "h1", "customer_id": cid, "ts": T - timedelta(days=1),
         "event_type": "purchase", "value": 40.0},
        {"event_id": "h2", "customer_id": cid, "ts": last, "event_type": "review",
         "properties": '{"rating": 2}'},  # a tie with the last stored event
        {"event_id": "h3", "customer_id": cid, "ts": last - timedelta(days=30),
         "event_type": "page_view"},  # older than events already indexed
        {"event_id": "h4", "customer_id": "brand-new", "ts": T - timedelta(hours=3),
         "event_type": "ad_click", "channel": "social"},
    ]
    result = store.append(rows(events), returning=True)
    assert result.rows is not None and result.rows.num_rows == 4
    index.add(result.rows)
    again = store.append(rows(events), returning=True)  # duplicates: nothing to apply
    assert again.rows is not None and again.rows.num_rows == 0
    index.add(again.rows)
    assert "brand-new" in index
    check(store, index, [cid, "brand-new"], T)
    check(store, index, [cid], last)  # strictly before a tie: the tie is excluded


def test_one_append_of_many_customers(world: World, store: EventStore) -> None:
    """Requests' worth of events of many customers, interleaved (encoded in one pass, then
    split by customer), twice: every customer's arrays match their store history."""
    index = HistoryIndex.load(store, world.spec)
    known = [r[0] for r in store.con.execute(
        "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 30").fetchall()]
    ids = [*known, "new-a", "new-b"]
    kinds = ["review", "page_view", "purchase", "survey_response", "add_to_cart"]
    events = [{"event_id": f"m{i}", "customer_id": ids[i % len(ids)],
               "ts": T - timedelta(hours=i % 7, days=i % 11), "event_type": kinds[i % 5],
               "value": 12.5 if i % 5 == 2 else None,
               "properties": '{"rating": 4, "nps": 9}' if i % 5 in (0, 3) else None}
              for i in range(200)]
    for part in (events[:120], events[120:]):
        result = store.append(rows(part), returning=True)
        assert result.rows is not None and result.rows.num_rows == len(part)
        index.add(result.rows)
    check(store, index, ids, T)
    check(store, index, ids, T - timedelta(days=5))


def test_added_events_grow_and_read_back_in_tie_order() -> None:
    """Adds past the arrays' capacity (they double) read back each customer's events, all and
    only theirs, in the order the batch engine gives them."""
    import numpy as np

    from features.events import EventArrays, tie_order
    from features.history import AddedEvents

    rng = np.random.default_rng(4)
    added = AddedEvents(capacity=4)
    expected: dict[str, list[tuple[int, int, int, int, float, float]]] = {}
    for _ in range(60):
        cid = f"c{rng.integers(7)}"
        n = int(rng.integers(1, 4))
        ts = rng.integers(0, 5, n).astype(np.int64)  # ties on purpose
        rows = [(int(t), int(rng.integers(3)), int(rng.integers(2)), -1,
                 float(rng.integers(10)), float("nan")) for t in ts]
        cols = list(zip(*rows, strict=True))
        added.add(cid, EventArrays([cid], np.zeros(n, np.int32), np.array(cols[0], np.int64),
                                   np.array(cols[1], np.int16), np.array(cols[2], np.int16),
                                   np.array(cols[3], np.int16), np.array(cols[4]),
                                   np.array(cols[5])))
        expected.setdefault(cid, []).extend(rows)
    assert len(added) == sum(len(v) for v in expected.values())
    assert sorted(added.customers()) == sorted(expected) and "nobody" not in added
    assert added.of("nobody") is None
    for cid, rows in expected.items():
        got = added.of(cid)
        assert got is not None and got.customer_ids == [cid]
        c = [np.array(x) for x in zip(*rows, strict=True)]
        order = tie_order(c[0], c[1].astype(np.int16), c[2].astype(np.int16),
                          c[3].astype(np.int16), c[4], c[5])
        np.testing.assert_array_equal(got.ts, c[0][order])
        np.testing.assert_array_equal(got.etype, c[1][order])
        np.testing.assert_array_equal(got.value, c[4][order])
