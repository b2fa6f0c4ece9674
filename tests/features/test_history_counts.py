"""``HistoryIndex.many``'s count of each segment's events before the cutoff, by a binary search
in each requested segment: for every segment or a few, in any order, whatever the time type."""

from __future__ import annotations

import numpy as np
import pytest

from features.history import _counts_before


def _segments(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted times per segment, segments laid end to end, some empty."""
    lengths = rng.integers(0, 12, n)
    ts = np.concatenate([np.sort(rng.integers(0, 1_000, k)) for k in lengths]).astype(np.int64)
    stop = np.cumsum(lengths).astype(np.int64)
    return ts, stop - lengths, stop


@pytest.mark.parametrize("seed", range(5))
def test_every_segment_or_a_few_count_as_a_search_does(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts, start, stop = _segments(rng, 400)
    for cutoff in (0, 1, 500, 999, 1_000, 5_000):
        naive = np.array([np.searchsorted(ts[a:b], cutoff, side="left")
                          for a, b in zip(start, stop, strict=True)])
        assert (_counts_before(ts, start, stop, cutoff) == naive).all()  # a population's
        pick = rng.choice(len(start), 20, replace=False)  # a few, unsorted: a batch's
        got = _counts_before(ts, start[pick], stop[pick], cutoff)
        assert (got == naive[pick]).all()
        none = np.zeros(3, np.int64)  # customers with no loaded segment (added since): 0
        assert (_counts_before(ts, none, none, cutoff) == 0).all()


@pytest.mark.parametrize("ts_type", [np.int32, np.int64])  # the compact store's time units
def test_either_time_type_counts_alike(ts_type: type[np.integer]) -> None:
    ts, start, stop = _segments(np.random.default_rng(9), 2_000)
    pick = np.arange(0, 2_000, 7)
    for limit in (0, 500, 2**40):  # past every time (a cutoff far ahead, as micros)
        naive = [np.searchsorted(ts[a:b], limit, side="left")
                 for a, b in zip(start[pick], stop[pick], strict=True)]
        got = _counts_before(ts.astype(ts_type), start[pick], stop[pick], limit)
        assert got.tolist() == naive
