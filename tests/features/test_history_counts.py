"""``HistoryIndex.many``'s count of each segment's events before the cutoff: the same whether it
is read off the requested segments alone (a batch: a small part of the store) or off a running
count over every loaded event (a scoring run's population)."""

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
def test_both_ways_count_alike(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts, start, stop = _segments(rng, 400)
    for cutoff in (0, 1, 500, 999, 1_000, 5_000):
        naive = np.array([np.searchsorted(ts[a:b], cutoff, side="left")
                          for a, b in zip(start, stop, strict=True)])
        assert (_counts_before(ts, start, stop, cutoff) == naive).all()  # all: the whole pass
        pick = rng.choice(len(start), 20, replace=False)  # a few, unsorted: the gathered pass
        got = _counts_before(ts, start[pick], stop[pick], cutoff)
        assert (got == naive[pick]).all()
        none = np.zeros(3, np.int64)  # customers with no loaded segment (added since): 0
        assert (_counts_before(ts, none, none, cutoff) == 0).all()


def test_a_small_batch_does_not_scan_every_loaded_event(monkeypatch: pytest.MonkeyPatch) -> None:
    ts, start, stop = _segments(np.random.default_rng(9), 2_000)
    seen: list[int] = []
    real = np.cumsum

    def counting(a: np.ndarray, *args: object, **kw: object) -> np.ndarray:
        seen.append(len(a))
        return real(a, *args, **kw)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(np, "cumsum", counting)
    _counts_before(ts, start[:10], stop[:10], 500)
    assert seen and max(seen) < len(ts) // 4
