"""Drift comparisons in a child process, off the serving process's interpreter.

A comparison is ~50 ms of frame building and ~70 ms of binning and tests for a 5,000-row window
(169 columns), all of it holding the GIL. In the service that time is taken from the event
loop: paced to a fifth of the interpreter it still slowed every request for one to two seconds
each minute (the serving benchmark's p99 was 4.06 ms with drift evaluation on against 3.53 ms
with it off). Here the service sends the window's arrays to a child (one pickle: ~5 ms) and
waits for the report without holding the lock; the child runs on the other core.

The child is ``python -m models.drift_worker`` (models.child_process): it imports only what a
comparison needs. It is started at the first comparison and kept; if it dies, the comparison
runs in the calling process instead and the next one starts a new child.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from models.child_process import ChildProcess, serve_pickles
from models.drift import DriftProfile, DriftReport, DriftSettings, Window, compare_window

log = logging.getLogger("journey.drift")
Comparer = Callable[[DriftProfile, Window, DriftSettings], DriftReport]


class DriftWorker:
    """``worker(profile, window, settings)``: the report, computed by the child process;
    ``fallback`` computes it here when the child cannot."""

    def __init__(self, fallback: Comparer) -> None:
        self._fallback = fallback
        self.child = ChildProcess("models.drift_worker")

    def __call__(self, profile: DriftProfile, window: Window,
                 settings: DriftSettings) -> DriftReport:
        got = self.child.answer((profile, window, settings), log, "comparing in the service")
        if got is None:
            return self._fallback(profile, window, settings)
        ok, result = got
        if not ok:
            raise result  # the comparison's own error, as if it had run here
        report: DriftReport = result
        return report

    def close(self) -> None:
        self.child.close()


def _compare(job: tuple[DriftProfile, Window, DriftSettings]) -> Any:
    return compare_window(*job)


if __name__ == "__main__":
    serve_pickles(_compare)
