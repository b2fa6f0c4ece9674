"""The drift worker: comparisons in a child process give the same report as in the calling
process, errors come back as errors, and a dead child is replaced without losing a report."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from models.drift import DriftProfile, DriftReport, DriftSettings, Window, compare_window
from models.drift_worker import DriftWorker

SETTINGS = DriftSettings(min_samples=50)


def _window(shift: float, n: int = 800) -> Window:
    rng = np.random.default_rng(3)
    numbers = np.column_stack([rng.normal(size=n) + shift, rng.random(n)])
    labels = rng.choice(np.array(["a", "b", None], dtype=object), (n, 1))
    return Window(numbers, labels, ("x", "score_churn"), ("c",),
                  datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))


@pytest.fixture(scope="module")
def profile() -> DriftProfile:
    return DriftProfile().fit(_window(0.0, 3000).frame())


class _Worker(DriftWorker):
    """A drift worker that records its fallback comparisons (the tests read them)."""

    fallbacks: list[int]


@pytest.fixture
def worker() -> Iterator[_Worker]:
    calls: list[int] = []

    def fallback(p: DriftProfile, w: Window, s: DriftSettings) -> DriftReport:
        calls.append(1)
        return compare_window(p, w, s)

    w = _Worker(fallback)
    w.fallbacks = calls
    yield w
    w.close()


def test_the_child_reports_what_this_process_would(worker: _Worker,
                                                     profile: DriftProfile) -> None:
    for shift in (0.0, 1.0):
        window = _window(shift)
        got = worker(profile, window, SETTINGS)
        assert got.to_dict() == compare_window(profile, window, SETTINGS).to_dict()
    assert got.alarm and worker.child.started == 1  # one child served both
    assert worker.fallbacks == []


def test_an_error_in_the_comparison_is_raised_here(worker: _Worker,
                                                   profile: DriftProfile) -> None:
    broken = Window(np.zeros((3, 1)), np.zeros((3, 0), dtype=object), ("x", "y"), ())
    with pytest.raises(ValueError, match="Shape of passed values"):
        compare_window(profile, broken, SETTINGS)  # pandas refuses the shape here...
    with pytest.raises(ValueError, match="Shape of passed values"):
        worker(profile, broken, SETTINGS)  # ...and in the child alike
    assert worker(profile, _window(0.0), SETTINGS).window_size == 800  # the child lives on


def test_a_dead_child_is_replaced(worker: _Worker, profile: DriftProfile) -> None:
    window = _window(0.5)
    want = compare_window(profile, window, SETTINGS).to_dict()
    assert worker(profile, window, SETTINGS).to_dict() == want
    proc = worker.child.proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert worker(profile, window, SETTINGS).to_dict() == want
    assert worker.child.started == 2 and worker.fallbacks == []


class _Crash(DriftProfile):
    """A profile that, unpickled in the child, ends the child: a worker dying in
    mid-comparison."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return os._exit, (3,)


def test_a_child_dying_mid_comparison_costs_one_comparison_here(
        worker: _Worker, profile: DriftProfile) -> None:
    window = _window(0.5)
    want = compare_window(profile, window, SETTINGS).to_dict()
    worker._fallback = lambda _p, w, s: compare_window(profile, w, s)
    assert worker(_Crash(), window, SETTINGS).to_dict() == want
    assert worker.child.proc is None  # dropped; the next comparison starts another
    assert worker(profile, window, SETTINGS).to_dict() == want
    assert worker.child.started == 2


def test_close_ends_the_child(worker: _Worker, profile: DriftProfile) -> None:
    worker(profile, _window(0.0), SETTINGS)
    proc = worker.child.proc
    assert proc is not None
    worker.close()
    assert proc.poll() is not None and worker.child.proc is None


def test_a_window_rebuilds_the_frame_it_was_taken_from() -> None:
    window = _window(0.0, 5)
    frame = window.frame()
    assert list(frame.columns) == ["x", "score_churn", "c"]
    pd.testing.assert_series_equal(frame["x"], pd.Series(window.numbers[:, 0], name="x"))
    assert [None if pd.isna(v) else v for v in frame["c"]] == window.labels[:, 0].tolist()
