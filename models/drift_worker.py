"""Drift comparisons in a child process, off the serving process's interpreter.

A comparison is ~50 ms of frame building and ~70 ms of binning and tests for a 5,000-row window
(169 columns), all of it holding the GIL. In the service that time is taken from the event
loop: paced to a fifth of the interpreter it still slowed every request for one to two seconds
each minute (the serving benchmark's p99 was 4.06 ms with drift evaluation on against 3.53 ms
with it off). Here the service sends the window's arrays to a child (one pickle: ~5 ms) and
waits for the report without holding the lock; the child runs on the other core.

The child is ``python -m models.drift_worker``: it imports only what a comparison needs, and
speaks pickles over its stdin and stdout (its own prints go to stderr). It is started at the
first comparison and kept; if it dies, the comparison runs in the calling process instead
and the next one starts a new child.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from models.drift import DriftProfile, DriftReport, DriftSettings, Window, compare_window

log = logging.getLogger("journey.drift")
Comparer = Callable[[DriftProfile, Window, DriftSettings], DriftReport]


class DriftWorker:
    """``worker(profile, window, settings)``: the report, computed by the child process;
    ``fallback`` computes it here when the child cannot."""

    def __init__(self, fallback: Comparer) -> None:
        self._fallback = fallback
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self.started = 0  # children started (for tests and diagnosis)

    def __call__(self, profile: DriftProfile, window: Window,
                 settings: DriftSettings) -> DriftReport:
        with self._lock:
            try:
                ok, result = self._ask((profile, window, settings))
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                log.warning("drift worker failed (%s: %s); comparing in the service this time",
                            type(exc).__name__, exc)
                self._stop()
                return self._fallback(profile, window, settings)
        if not ok:
            raise result  # the comparison's own error, as if it had run here
        report: DriftReport = result
        return report

    def _ask(self, job: tuple[DriftProfile, Window, DriftSettings]) -> tuple[bool, Any]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            proc = self._proc = subprocess.Popen(
                [sys.executable, "-m", "models.drift_worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
            self.started += 1
        assert proc.stdin is not None and proc.stdout is not None
        pickle.dump(job, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.flush()
        answer: tuple[bool, Any] = pickle.load(proc.stdout)  # the read gives up the GIL
        return answer

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        try:
            proc.wait(5)  # stdin closed: the child ends its loop
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(jobs: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: a job in, ``(True, report)`` or ``(False, error)`` out, until the
    parent closes its end."""
    while True:
        try:
            profile, window, settings = pickle.load(jobs)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, compare_window(profile, window, settings))
        except Exception as exc:  # the parent raises it
            answer = (False, exc)
        try:
            pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            pickle.dump((False, RuntimeError(f"{type(exc).__name__}: {exc}")), answers)
        answers.flush()


def main() -> None:
    # The protocol owns the real stdout; anything a library prints goes to stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
