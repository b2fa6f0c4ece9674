"""Benchmark plumbing: a child process's peak memory is its own, not its parent's."""

from __future__ import annotations

import multiprocessing as mp
import sys
from multiprocessing.queues import Queue

import numpy as np
import pytest

from benchmarks.common import own_peak_rss_mb

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="parent peaks carry into children on Linux")


def _report(queue: Queue[float]) -> None:
    queue.put(own_peak_rss_mb())


def test_a_spawned_child_does_not_report_its_parents_peak() -> None:
    grown = np.ones(600 * 2**20 // 8)  # touched, so resident: 600 MB
    parent_peak = own_peak_rss_mb()
    del grown
    ctx = mp.get_context("spawn")
    queue: Queue[float] = ctx.Queue()
    child = ctx.Process(target=_report, args=(queue,))
    child.start()
    child_peak = queue.get(timeout=60)
    child.join(timeout=60)
    assert parent_peak >= 600
    # An interpreter with numpy and pytest loaded is well under 300 MB.
    assert 0 < child_peak < 300, (child_peak, parent_peak)
