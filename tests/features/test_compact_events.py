"""The history index's loaded events are narrowed only where every value comes back unchanged,
are read back in the engines' types, and "before the cutoff" means the same in stored units."""

from __future__ import annotations

import numpy as np
import pytest

from features.compact_events import MAX_OFFSET, CompactBuilder, CompactEvents
from features.events import EventArrays
from features.history import COLUMNS

SECOND = 1_000_000
T0 = 1_735_689_600 * SECOND  # 2025-01-01


def _events(ts: np.ndarray, codes: np.ndarray, value: np.ndarray,
            score: np.ndarray) -> EventArrays:
    n = len(ts)
    return EventArrays(["c"], np.zeros(n, np.int32), ts.astype(np.int64),
                       codes.astype(np.int16), (codes % 3).astype(np.int16),
                       (codes % 5 - 1).astype(np.int16), value.astype(np.float64),
                       score.astype(np.float64))


def _assert_round_trip(events: EventArrays, compact: CompactEvents) -> None:
    n = len(events.ts)
    for name in COLUMNS:
        want = getattr(events, name)
        for got in (compact.read(name, 0, n), compact.gather(name, np.arange(n)[::-1])[::-1]):
            assert got.dtype == want.dtype, name
            np.testing.assert_array_equal(got, want, err_msg=name)
            if want.dtype.kind == "f":  # the sign of a zero too
                assert (np.signbit(got) == np.signbit(want)).all(), name
        rows = np.arange(n + 3) % 4 != 1  # every fourth row is left as it was
        out = np.full(len(rows), 7, want.dtype)
        at = np.arange(int(rows.sum())) % max(n, 1) if n else np.zeros(0, np.int64)
        compact.fill(name, out, rows, at)
        np.testing.assert_array_equal(out[rows], want[at], err_msg=name)
        assert (out[~rows] == 7).all() and out.dtype == want.dtype, name


def test_simulator_like_events_shrink_and_come_back_exactly() -> None:
    rng = np.random.default_rng(3)
    n = 50_000
    ts = np.sort(T0 + rng.integers(0, 365 * 86_400, n) * SECOND)
    value = np.where(rng.random(n) < 0.05, np.round(rng.uniform(1, 500, n), 2), np.nan)
    score = np.where(rng.random(n) < 0.02, rng.integers(0, 11, n), np.nan)
    score[:3] = [-0.0, 0.0, 10.0]
    events = _events(ts, rng.integers(-1, 16, n), value, score)
    compact = CompactEvents.of(events)
    assert compact.ts.dtype == np.int32 and compact.unit == SECOND
    assert {k: str(a.dtype) for k, a in compact.columns.items()} == {
        "etype": "int8", "channel": "int8", "action": "int8", "value": "float64",
        "score": "float32"}
    assert compact.nbytes == 19 * n  # the engines' arrays: 34 bytes an event
    _assert_round_trip(events, compact)


def test_what_would_not_come_back_stays_wide() -> None:
    rng = np.random.default_rng(4)
    n = 5_000
    ts = np.sort(T0 + rng.integers(0, 40 * 86_400 * SECOND, n))  # microseconds over 40 days
    codes = rng.integers(0, 300, n)  # more than int8 holds
    value = rng.uniform(0, 1, n)
    score = np.full(n, 0.5)
    score[7] = 1e39  # float32 would make it inf
    events = _events(ts, codes, value, score)
    compact = CompactEvents.of(events)
    assert compact.ts.dtype == np.int64 and (compact.t0, compact.unit) == (0, 1)
    assert compact.columns["etype"].dtype == np.int16
    assert compact.columns["value"].dtype == compact.columns["score"].dtype == np.float64
    _assert_round_trip(events, compact)


@pytest.mark.parametrize(("span_s", "step_us", "unit", "dtype"), [
    (20 * 86_400, 1_000, 1_000, np.int32),  # milliseconds over 20 days fit in int32
    (30 * 86_400, 1_000, 1, np.int64),  # over 30 days they do not
    (60 * 60 * 24 * 365 * 60, SECOND, SECOND, np.int32),  # seconds over 60 years do
    (1_000, 1, 1, np.int32),  # microseconds within 17 minutes do
])
def test_the_coarsest_exact_unit_that_fits_is_used(span_s: int, step_us: int, unit: int,
                                                    dtype: type[np.generic]) -> None:
    ts = T0 + np.array([0, step_us, span_s * SECOND - step_us, span_s * SECOND], np.int64)
    compact = CompactEvents.of(_events(ts, np.zeros(4), np.zeros(4), np.zeros(4)))
    assert compact.ts.dtype == dtype and compact.unit == unit
    np.testing.assert_array_equal(compact.read("ts", 0, 4), ts)


def test_an_origin_off_the_unit_is_not_shifted() -> None:
    ts = np.array([T0 + 1, T0 + 1 + SECOND], np.int64)  # whole seconds apart, not on them
    compact = CompactEvents.of(_events(ts, np.zeros(2), np.zeros(2), np.zeros(2)))
    np.testing.assert_array_equal(compact.read("ts", 0, 2), ts)


@pytest.mark.parametrize("unit_us", [SECOND, 1_000, 7])
def test_before_the_cutoff_means_the_same_in_stored_units(unit_us: int) -> None:
    rng = np.random.default_rng(unit_us)
    ts = np.sort(T0 + rng.integers(0, 10 * 86_400, 2_000) * unit_us)
    compact = CompactEvents.of(_events(ts, np.zeros(2_000), np.zeros(2_000), np.zeros(2_000)))
    cutoffs = [int(c) for c in rng.choice(ts, 50)]
    cutoffs += [c + d for c in cutoffs[:20] for d in (-1, 1, unit_us - 1)]
    cutoffs += [0, -10**15, T0 - 1, T0, T0 + 1, int(ts[-1]) + 1, 253_402_300_800 * SECOND]
    for cutoff in cutoffs:
        assert ((compact.ts < compact.limit(cutoff)) == (ts < cutoff)).all(), cutoff
    assert compact.limit(10**18) <= MAX_OFFSET + 1


def test_no_events() -> None:
    compact = CompactEvents.of(_events(*(np.zeros(0),) * 4))
    assert len(compact) == 0 and compact.read("ts", 0, 0).dtype == np.int64
    assert (compact.ts < compact.limit(T0)).sum() == 0


def _part(events: EventArrays, a: int, b: int) -> EventArrays:
    return EventArrays(["c"], events.cust[a:b], *(getattr(events, n)[a:b] for n in COLUMNS))


def _late_surprises(rng: np.random.Generator, n: int) -> list[EventArrays]:
    """Events that narrow well until their last rows, which force each column wider: a time
    off the second (then off the millisecond), a code beyond int8, floats float32 changes."""
    ts = np.sort(T0 + rng.integers(0, 20 * 86_400, n) * SECOND)
    codes = rng.integers(-1, 16, n)
    value = np.round(rng.uniform(0, 100, n))
    score = np.where(rng.random(n) < 0.1, rng.integers(0, 11, n), np.nan)
    plain = _events(ts, codes, value, score)
    ms, us, wide_code, inexact = (ts.copy(), ts.copy(), codes.copy(), value.copy())
    ms[-1] += 1_000
    us[-1] += 1_000
    us[-2] += 1
    wide_code[-1] = 300
    inexact[-3] = 0.1
    far = ts.copy()
    far[-1] = T0 + 400 * 86_400 * SECOND  # a time that needs seconds, then microseconds
    far[-2] += 1
    return [plain, _events(ms, codes, value, score), _events(us, wide_code, inexact, score),
            _events(np.sort(far), codes, value, inexact)]


@pytest.mark.parametrize("seed", range(3))
def test_filled_in_parts_the_columns_are_those_of_the_whole(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for events in _late_surprises(rng, 3_000):
        whole = CompactEvents.of(events)
        n = len(events.ts)
        for cuts in ([n], [1, n], [*sorted(rng.choice(np.arange(1, n), 6, replace=False)), n]):
            builder = CompactBuilder(n, int(events.ts.min()), int(events.ts.max()))
            a = 0
            for b in cuts:
                builder.add(_part(events, a, int(b)))
                a = int(b)
            got = builder.done()
            assert (got.t0, got.unit, got.ts.dtype) == (whole.t0, whole.unit, whole.ts.dtype)
            np.testing.assert_array_equal(got.ts, whole.ts)
            for name, column in whole.columns.items():
                assert got.columns[name].dtype == column.dtype, name
                np.testing.assert_array_equal(got.columns[name], column, err_msg=name)
            _assert_round_trip(events, got)


def test_parts_short_of_the_total_keep_what_was_filled() -> None:
    events = _events(T0 + np.arange(10) * SECOND, np.arange(10), np.zeros(10), np.zeros(10))
    builder = CompactBuilder(20, T0, T0 + 19 * SECOND)
    builder.add(events)
    got = builder.done()
    assert len(got) == 10 and got.ts.base is None  # a copy, not a view of the larger arrays
    _assert_round_trip(events, got)


def test_a_part_outside_the_announced_range_is_refused_not_wrapped() -> None:
    events = _events(T0 + np.arange(4) * SECOND, np.zeros(4), np.zeros(4), np.zeros(4))
    for total, first, last in ((3, T0, T0 + 3 * SECOND), (4, T0 + SECOND, T0 + 3 * SECOND),
                               (4, T0, T0 + 2 * SECOND)):
        with pytest.raises(ValueError, match="sized for"):
            CompactBuilder(total, first, last).add(events)
