"""A scoring run's population from the service's histories leaves out the customers with no
event before the cutoff, and is then what gathering only the others gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from features.events import EventArrays
from features.history import COLUMNS, Attributes, HistoryIndex
from features.spec import load_spec
from serving.score_job import joined, population_from_history, population_parts
from serving.segment_config import SegmentConfig

SPEC = load_spec()
DAY = 86_400_000_000
CONFIG = SegmentConfig(value_window_days=90, value_horizon_days=90, dimensions=("tier",),
                       chunk_customers=1000, keep_snapshots=3)


def _index(rng: np.random.Generator, customers: int) -> HistoryIndex:
    counts = rng.integers(1, 9, customers)
    ends = np.cumsum(counts)
    n = int(ends[-1])
    # first events spread over 100 days: a cutoff inside leaves some customers with none
    ts = np.concatenate([np.sort(rng.integers(0, 100, k)) * DAY for k in counts])
    base = EventArrays(
        [f"c{i}" for i in range(customers)],
        np.repeat(np.arange(customers, dtype=np.int32), counts), ts.astype(np.int64),
        rng.integers(0, 5, n).astype(np.int16), rng.integers(0, 3, n).astype(np.int16),
        rng.integers(-1, 2, n).astype(np.int16), rng.random(n), rng.random(n),
        segments=(ends - counts, ends))
    return HistoryIndex.of(SPEC, base, Attributes({}, {}))


@pytest.mark.parametrize(("seed", "cutoff_days"), [(0, 3), (1, 40), (2, 0), (3, 1_000)])
def test_customers_without_events_are_left_out_and_the_rest_gathered(
        seed: int, cutoff_days: int) -> None:
    index = _index(np.random.default_rng(seed), 400)
    t = cutoff_days * DAY
    arrays = population_from_history(index, CONFIG, t).arrays
    have = [c for c in index.customer_ids()
            if (a := index.arrays(c, t)) is not None and len(a.ts)]
    assert arrays.customer_ids == have
    want = index.many(have, t)
    assert arrays.segments is not None and want.segments is not None
    for got, expected in zip(arrays.segments, want.segments, strict=True):
        np.testing.assert_array_equal(got, expected)
    for name in ("cust", *COLUMNS):
        assert getattr(arrays, name).dtype == getattr(want, name).dtype, name
        np.testing.assert_array_equal(getattr(arrays, name), getattr(want, name), err_msg=name)
    assert 0 < len(have) < 400 or cutoff_days in (0, 1_000)


@pytest.mark.parametrize("size", [1, 7, 64, 399, 400, 10_000])
def test_parts_joined_are_the_whole(size: int) -> None:
    """What the score worker receives in parts and joins is the population gathered whole,
    with attributes, customers with events added since the load, and one first seen since."""
    rng = np.random.default_rng(size)
    index = _index(rng, 400)
    index.attributes.key_of.update({f"c{i}": i for i in range(0, 400, 3)})
    index.attributes.columns["region"] = (rng.integers(-1, 3, 400).astype(np.int32),
                                          ["north", "south", "east"])
    config = dataclasses.replace(CONFIG, dimensions=("tier", "region"))
    for cid, day in (("c5", 50), ("c399", 10), ("new", 20)):
        index._added.add(cid, EventArrays([cid], np.zeros(2, np.int32),
                                          np.array([day, day + 1], np.int64) * DAY,
                                          np.array([1, 2], np.int16), np.zeros(2, np.int16),
                                          np.full(2, -1, np.int16), np.full(2, np.nan),
                                          np.full(2, np.nan)))
    t = 30 * DAY
    whole = next(population_parts(index, config, t, size=10**9))
    parts = list(population_parts(index, config, t, size=size))
    assert len(parts) == -(-401 // size)
    got = joined(parts)
    assert parts == []  # consumed: each part's columns were let go as they were copied
    assert got.arrays.customer_ids == whole.arrays.customer_ids
    assert "new" in got.arrays.customer_ids
    for name in ("cust", *COLUMNS):
        np.testing.assert_array_equal(getattr(got.arrays, name), getattr(whole.arrays, name),
                                      err_msg=name)
        assert getattr(got.arrays, name).dtype == getattr(whole.arrays, name).dtype
    assert got.arrays.segments is not None and whole.arrays.segments is not None
    for a, b in zip(got.arrays.segments, whole.arrays.segments, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got.attributes["region"][0], whole.attributes["region"][0])
    assert got.attributes["region"][1] == ["north", "south", "east"]
    assert (got.attributes["region"][0] >= 0).sum() > 0
