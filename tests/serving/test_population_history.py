"""A scoring run's population from the service's histories leaves out the customers with no
event before the cutoff, and is then what gathering only the others gives."""

from __future__ import annotations

import numpy as np
import pytest

from features.events import EventArrays
from features.history import COLUMNS, Attributes, HistoryIndex
from features.spec import load_spec
from serving.score_job import population_from_history
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
