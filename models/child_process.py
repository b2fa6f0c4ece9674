"""Work handed to a long-lived child process, off the calling process's interpreter.

The service's threads share one interpreter lock: a thread running Python code for seconds
(a drift comparison, a scoring run's recommendation loop) takes it from the event loop, whose
every socket read and write must win it back (up to the 0.5 ms switch interval each time), so
requests queue behind it. A child started with ``python -m MODULE`` runs on the other core
with an interpreter of its own; the caller waits on a pipe read, which gives the lock up.

The protocol is pickles over the child's stdin and stdout (its own prints go to stderr): a job
in, ``(True, result)`` or ``(False, exception)`` out. The child is started at the first job
and kept; ``ask`` raises ``OSError``, ``EOFError`` or ``pickle.UnpicklingError`` when it cannot
start or dies, and the next job starts a new one.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any

CHILD_FAILED = (OSError, EOFError, pickle.UnpicklingError)


class ChildProcess:
    """``ask(job)``: ``(ok, result)`` from a ``python -m module`` child that runs
    ``serve_pickles``; ``answer`` and ``close`` take the lock, one job at a time."""

    def __init__(self, module: str, env: Mapping[str, str] | None = None) -> None:
        self.module = module
        self.env = dict(env or {})  # set for the child beside this process's environment
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0  # children started (for tests and diagnosis)
        self.lock = threading.Lock()

    def ask(self, job: Any) -> tuple[bool, Any]:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            proc = self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, **self.env,
                     "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
            self.started += 1
        assert proc.stdin is not None and proc.stdout is not None
        pickle.dump(job, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.flush()
        answer: tuple[bool, Any] = pickle.load(proc.stdout)  # the read gives up the GIL
        return answer

    def answer(self, job: Any, log: logging.Logger, instead: str) -> tuple[bool, Any] | None:
        """``ask``, or None when the child cannot answer: it is dropped (the next job starts
        another) and ``log`` warns that the caller does the job itself, ``instead``."""
        with self.lock:
            try:
                return self.ask(job)
            except CHILD_FAILED as exc:
                log.warning("%s failed (%s: %s); %s this time", self.module,
                            type(exc).__name__, exc, instead)
                self.stop()
                return None

    def close(self) -> None:
        with self.lock:
            self.stop()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
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


def serve_pickles(handle: Callable[[Any], Any], jobs: IO[bytes] | None = None,
                  answers: IO[bytes] | None = None) -> None:
    """The child's loop: ``handle(job)`` for each job until the parent closes its end. By
    default on this process's stdin and stdout, whose prints go to stderr from here on (the
    protocol owns the real stdout)."""
    if answers is None:
        answers = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
    jobs = jobs or sys.stdin.buffer
    while True:
        try:
            job = pickle.load(jobs)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, handle(job))
        except Exception as exc:  # the parent raises it
            answer = (False, exc)
        try:
            pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            pickle.dump((False, RuntimeError(f"{type(exc).__name__}: {exc}")), answers)
        answers.flush()
