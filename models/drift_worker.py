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
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from models.child_process import CHILD_FAILED, ChildProcess, serve_pickles
from models.drift import DriftProfile, DriftReport, DriftSettings, Window, compare_window

log = logging.getLogger("journey.drift")
Comparer = Callable[[DriftProfile, Window, DriftSettings], DriftReport]


class DriftWorker:
    """``worker(profile, window, settings)``: the report, computed by the child process;
    ``fallback`` computes it here when the child cannot."""

    def __init__(self, fallback: Comparer) -> None:
        self._fallback = fallback
        self._lock = threading.Lock()
        self._child = ChildProcess("models.drift_worker")

    @property
    def started(self) -> int:
        """Children started (for tests and diagnosis)."""
        return self._child.started

    @property
    def _proc(self) -> subprocess.Popen[bytes] | None:
        return self._child.proc

    def __call__(self, profile: DriftProfile, window: Window,
                 settings: DriftSettings) -> DriftReport:
        with self._lock:
            try:
                ok, result = self._child.ask((profile, window, settings))
            except CHILD_FAILED as exc:
                log.warning("drift worker failed (%s: %s); comparing in the service this time",
                            type(exc).__name__, exc)
                self._child.stop()
                return self._fallback(profile, window, settings)
        if not ok:
            raise result  # the comparison's own error, as if it had run here
        report: DriftReport = result
        return report

    def close(self) -> None:
        with self._lock:
            self._child.stop()


def _compare(job: tuple[DriftProfile, Window, DriftSettings]) -> Any:
    return compare_window(*job)


if __name__ == "__main__":
    serve_pickles(_compare)
