"""``HistoryIndex.many`` (whole-array gathers) gives exactly what each customer's own arrays
give, in the order asked: loaded customers, customers with events added since (before and
after their loaded ones), new customers, cutoffs before, inside and after the events, and
repeats and reorderings of the ids."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from features.batch import micros
from features.events import EventArrays
from features.history import COLUMNS, HistoryIndex
from features.schema import EVENT_SCHEMA
from features.spec import load_spec

SPEC = load_spec()
DAY = 86_400_000_000


def _base(rng: np.random.Generator, customers: int) -> EventArrays:
    counts = rng.integers(0, 12, customers)
    ends = np.cumsum(counts)
    n = int(ends[-1])
    ts = np.concatenate([np.sort(rng.integers(0, 100, k)) * DAY for k in counts])
    return EventArrays(
        [f"c{i}" for i in range(customers)], np.repeat(np.arange(customers, dtype=np.int32),
                                                         counts),
        ts.astype(np.int64), rng.integers(0, 5, n).astype(np.int16),
        rng.integers(0, 3, n).astype(np.int16), rng.integers(-1, 2, n).astype(np.int16),
        rng.random(n), rng.random(n), segments=(ends - counts, ends))


def _added(rng: np.random.Generator, ids: list[str]) -> pa.Table:
    events = [{"event_id": f"a{k}", "customer_id": cid, "event_type": "page_view",
               "channel": "web", "value": None, "action": None, "properties": None,
               "ts": datetime.fromtimestamp(int(rng.integers(0, 110)) * 86_400, UTC)}
              for k, cid in enumerate(ids)]
    return pa.Table.from_pylist(events, schema=EVENT_SCHEMA)


def _expected(index: HistoryIndex, ids: list[str], t: int) -> dict[str, np.ndarray]:
    parts = [index.arrays(c, t) for c in ids]
    return {name: np.concatenate([getattr(p, name) for p in parts if p is not None]
                                 or [np.zeros(0)]) for name in COLUMNS}


@pytest.mark.parametrize("seed", range(6))
def test_many_is_each_customers_arrays_in_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    index = HistoryIndex.of(SPEC, _base(rng, 300), attributes=None)  # type: ignore[arg-type]
    touched = [f"c{i}" for i in rng.integers(0, 300, 40)] + ["new1", "new2", "new1"]
    index.add(_added(rng, touched))
    everyone = index.customer_ids()
    for ids in (everyone, list(reversed(everyone)), [everyone[3]] * 3 + everyone[:50],
                [c for c in everyone if c in touched], []):
        for day in (-1, 0, 37, 100, 200):
            t = day * DAY
            got = index.many(ids, t)
            want = _expected(index, ids, t)
            for name in COLUMNS:
                np.testing.assert_array_equal(getattr(got, name), want[name], err_msg=name)
            sizes = [len(a.ts) if (a := index.arrays(c, t)) is not None else 0 for c in ids]
            assert got.segments is not None
            np.testing.assert_array_equal(got.segments[1] - got.segments[0], sizes)
            np.testing.assert_array_equal(got.cust, np.repeat(np.arange(len(ids)), sizes))
            assert got.customer_ids == ids


def test_an_unknown_customer_is_named() -> None:
    index = HistoryIndex.of(SPEC, _base(np.random.default_rng(1), 5), attributes=None)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="nobody"):
        index.many(["c1", "nobody"], micros(datetime(2026, 1, 1, tzinfo=UTC)))
