"""The service's scoring runs (POST /v1/admin/score) in a child process.

A run over every customer is seconds of Python per customer (vectors, then each customer's
next-best-action arbitration) and held the interpreter lock beside the requests: on 20k
customers /v1/predict waited up to seconds while it ran (benchmarks/score_run.py). The
service builds the population from its in-memory histories (it holds the event store, so the
child cannot read it) and sends it to ``python -m serving.score_worker``
(models.child_process) in parts of 50k customers, one gathered at a time (the whole, 38 bytes
an event, grew the service by 1.2 GB at 1M customers); the child joins them, scores them with
the same champions and writes the snapshot as ``journey score`` does, and the service waits on
the pipe without the lock.

The child is started at the first run and kept, with its models: a run after a hot swap
loads the new champions there first. It runs at a lower priority and off the first CPU
(LightGBM and numba use the others), so the requests keep a core.

When the child cannot score (it cannot start, it dies, or the registry's champions are no
longer the ones the service serves: a promotion it has not reloaded yet) the run is scored in
the service, as before, and the log says why. Not when the service is stopping: its stop
signal ends the child too (serving/stopping.py), and a run scored again in the service would
hold up the stop (at 1M customers past `journey stop`'s timeout). The run is abandoned, 503.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.child_process import CHILD_FAILED, ChildProcess, serve_pickles
from models.registry import client_for
from serving.champions import ModelSet, load_models
from serving.marketing import Marketing
from serving.memory import freeze_loaded, give_back_memory
from serving.score_job import ScoreRun, joined
from serving.scoring import Population
from serving.scoring_runs import ScoringAbandonedError
from serving.service_files import load_service_files
from serving.settings import ServeSettings
from serving.snapshots import Snapshot

log = logging.getLogger("journey.serving")
SOURCE = "service histories"
# A child ended by a stop signal: the service's own comes first (BentoML signals the worker,
# then its children), but its handler runs when the main thread next takes the interpreter.
STOPPED_BY = (-signal.SIGTERM, -signal.SIGINT)
SIGNAL_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class ScoreJob:
    """A run's first message; its population follows in parts, then ``RUN``."""

    settings: ServeSettings
    versions: dict[str, str]  # what the service serves: the child scores with these only
    as_of: datetime


RUN = "run"  # the last message of a run: every part was sent


class ModelsChangedError(RuntimeError):
    """The registry's champions are not the ones the service serves."""


class ScoreWorker:
    """``worker(models, population, as_of)``: the new snapshot, scored by the child; None
    when the child could not (the caller scores it itself)."""

    def __init__(self, settings: ServeSettings, stopping: threading.Event | None = None,
                 fell_back: Callable[[str], None] | None = None) -> None:
        """``fell_back(reason)``: told each time a run is left to the service (a metric)."""
        self.settings = settings
        self.child = ChildProcess("serving.score_worker", _thread_env())
        self.stopping = stopping or threading.Event()  # set once the service is stopping
        self._fell_back = fell_back or (lambda _: None)

    def __call__(self, models: ModelSet, parts: Iterable[Population],
                 as_of: datetime) -> Snapshot | None:
        """``parts``: the population, gathered part by part as they are sent
        (``serving.score_job.population_parts``): the service never holds all of it."""
        got = self._answer(ScoreJob(self.settings, models.versions(), as_of), parts)
        if got is None:
            return None
        ok, result = got
        if not ok and isinstance(result, ModelsChangedError):
            log.warning("score worker: %s; scoring in the service this time", result)
            self._fell_back("models_changed")
            return None
        if not ok:
            raise result  # the run's own error, as if it had run here
        snap: Snapshot = result
        return snap

    def _answer(self, job: ScoreJob, parts: Iterable[Population]) -> tuple[bool, Any] | None:
        """The child's answer; None when it could not answer (scored in the service). Raises
        ScoringAbandonedError (a 503) when it could not because the service is stopping."""
        child = self.child
        with child.lock:
            try:
                for message in itertools.chain([job], parts, [RUN]):
                    ok, result = child.ask(message)
                    if not ok:
                        return ok, result
                return ok, result
            except CHILD_FAILED as exc:
                proc = child.proc
                child.stop()  # waits for the child's end: its exit status tells a signal
                if self._stopping(proc):
                    log.warning("scoring run abandoned: the service is stopping (its score "
                                "worker was stopped with it); nothing was published")
                    raise ScoringAbandonedError(
                        "the service is stopping: this scoring run was abandoned and nothing "
                        "was published; run it again (POST /v1/admin/score) once the service "
                        "is back") from exc
                log.warning("%s failed (%s: %s); scoring in the service this time",
                            child.module, type(exc).__name__, exc)
                self._fell_back("child_failed")
                return None

    def _stopping(self, proc: subprocess.Popen[bytes] | None) -> bool:
        if self.stopping.is_set():
            return True
        ended_by_signal = proc is not None and proc.returncode in STOPPED_BY
        return ended_by_signal and self.stopping.wait(SIGNAL_GRACE_SECONDS)

    def close(self) -> None:
        self.child.close()


class _Child:
    """The child's state between runs: the scoring run's set-up and the models it loaded,
    and during a run its job and the parts of its population received so far."""

    def __init__(self) -> None:
        self.run: ScoreRun | None = None
        self.models: ModelSet | None = None
        self.job: ScoreJob | None = None
        self.parts: list[Population] = []

    def __call__(self, message: ScoreJob | Population | str) -> Snapshot | None:
        if isinstance(message, ScoreJob):  # a new run: what an abandoned one sent is dropped
            self.job, self.parts = message, []
            return None
        if self.job is None:
            raise RuntimeError(f"score worker: {type(message).__name__} before a run's job")
        if isinstance(message, Population):
            self.parts.append(message)
            return None
        if message != RUN:
            raise RuntimeError(f"score worker: unknown message {message!r}")
        job, self.job = self.job, None
        return self._score(job, joined(self.parts))

    def _score(self, job: ScoreJob, population: Population) -> Snapshot:
        settings = job.settings
        run = self.run = self.run or _score_run(settings)
        if self.models is None or self.models.versions() != job.versions:
            self.models = load_models(client_for(settings.tracking_uri), run.spec,
                                      settings.model_alias)
        if self.models.versions() != job.versions:
            raise ModelsChangedError(f"the registry's {settings.model_alias} versions "
                                f"{self.models.versions()} are not the served "
                                f"{job.versions} (reload the service after a promotion)")
        freeze_loaded()
        snap = run.run(self.models, population, job.as_of, SOURCE)
        give_back_memory()
        return snap


def _score_run(settings: ServeSettings) -> ScoreRun:
    """The run the service's Marketing makes, from the same settings and files."""
    files = load_service_files(settings)
    m = Marketing(settings, files.spec, files.catalog)
    return ScoreRun(m.spec, m.config, m.scorer, m.root, params=m.params)


def _spare_cpus() -> list[int]:
    """The CPUs the child may use: all but the first when there are several, which stays
    the service's (LightGBM and numba start a thread per CPU they may use)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[1:] if len(cpus) > 1 else cpus


def _thread_env() -> dict[str, str]:
    n = str(len(_spare_cpus()))  # read by numba and OpenMP when the child imports them
    return {"NUMBA_NUM_THREADS": n, "OMP_NUM_THREADS": n}


def yield_to_service() -> None:
    """The child runs beside the requests: at a lower priority, off the service's CPU."""
    os.nice(5)
    os.sched_setaffinity(0, _spare_cpus())


if __name__ == "__main__":
    # By its module's name: the errors it raises must unpickle in the service, where this file
    # is serving.score_worker, not __main__.
    from serving import score_worker

    score_worker.yield_to_service()
    serve_pickles(score_worker._Child())
