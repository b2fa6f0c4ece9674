"""A scoring run when the service stops: the stop signal ends the score worker's child too,
and the run is abandoned with a 503 (not scored again in the service, which held up the stop
past `journey stop`'s timeout at a million customers). A child that dies otherwise still
costs one run in the service (tests/serving/test_score_worker.py)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import cast

import pytest

import serving.marketing
from serving import score_worker
from serving.champions import ModelSet
from serving.errors import NotReadyError
from serving.score_worker import ScoreWorker
from serving.scoring import Population
from serving.settings import ServeSettings
from serving.state import ServiceState
from serving.stopping import StopSignals
from tests.serving.conftest import AS_OF, Served

WHEN = datetime(2025, 1, 1, tzinfo=UTC)


class _Terminated:
    """A population that, unpickled in the child, stops it as `journey stop` does (SIGTERM)."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return signal.raise_signal, (signal.SIGTERM,)


class _Models:
    def versions(self) -> dict[str, str]:
        return {"churn": "1"}


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[ScoreWorker]:
    w = ScoreWorker(ServeSettings(home=tmp_path), threading.Event())
    yield w
    w.close()


def _run(worker: ScoreWorker) -> object:
    return worker(cast(ModelSet, _Models()), [cast(Population, _Terminated())], WHEN)


def test_a_run_the_stop_signal_ends_is_abandoned(worker: ScoreWorker,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    worker.stopping.set()  # the service's handler ran first
    with caplog.at_level(logging.WARNING, "journey.serving"), \
            pytest.raises(NotReadyError, match="the service is stopping"):
        _run(worker)
    assert "scoring run abandoned: the service is stopping" in caplog.text
    assert "scoring in the service" not in caplog.text and "failed" not in caplog.text
    assert worker.child.proc is None


def test_the_services_handler_may_run_after_the_child_died(
        worker: ScoreWorker, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The child's end is seen first; the main thread's handler sets the event a moment later.
    stop = worker.child.stop

    def seen_then_signalled() -> None:
        stop()
        assert not worker.stopping.is_set()
        threading.Timer(0.3, worker.stopping.set).start()

    monkeypatch.setattr(worker.child, "stop", seen_then_signalled)
    with caplog.at_level(logging.WARNING, "journey.serving"), pytest.raises(NotReadyError):
        _run(worker)
    assert "abandoned" in caplog.text and "scoring in the service" not in caplog.text


def test_a_child_terminated_while_the_service_runs_on_is_scored_here(
        worker: ScoreWorker, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(score_worker, "SIGNAL_GRACE_SECONDS", 0.2)
    with caplog.at_level(logging.WARNING, "journey.serving"):
        assert _run(worker) is None  # the caller scores it itself
    assert "serving.score_worker failed" in caplog.text and "scoring in the service" in caplog.text


def test_the_stop_signal_sets_the_event_then_reaches_the_servers_handler() -> None:
    seen: list[int] = []

    def server(sig: int, _: FrameType | None) -> None:  # uvicorn's: its graceful shutdown
        seen.append(sig)

    before = signal.signal(signal.SIGTERM, server)
    try:
        stopping = threading.Event()
        signals = StopSignals(stopping)
        signals.watch()
        signal.raise_signal(signal.SIGTERM)
        assert stopping.is_set() and seen == [signal.SIGTERM]
        signals.restore()
        assert signal.getsignal(signal.SIGTERM) is server
    finally:
        signal.signal(signal.SIGTERM, before)


def test_without_a_server_handler_the_signal_still_ends_the_process() -> None:
    code = ("import signal, threading\nfrom serving.stopping import StopSignals\n"
            "StopSignals(threading.Event()).watch()\nsignal.raise_signal(signal.SIGTERM)\n"
            "print('survived')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == -signal.SIGTERM and "survived" not in done.stdout, done.stderr


def test_the_service_answers_503_and_publishes_nothing(
        served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = served.settings(served.store_copy(tmp_path), scores=tmp_path / "scores",
                               drift_worker=False, score_worker=True)
    state = ServiceState(settings)
    state.start(background=False)
    try:
        monkeypatch.setattr(serving.marketing, "population_parts",
                            lambda *_: iter([_Terminated()]))

        def no_run_here(*_: object, **__: object) -> None:
            raise AssertionError("scored in the service while it stops")

        monkeypatch.setattr(serving.marketing, "ScoreRun", no_run_here)
        state._stop.set()  # as the stop signal's handler does (serving/stopping.py)
        with pytest.raises(NotReadyError) as info:
            state.score_all(AS_OF)
        assert info.value.status == 503
        assert not (tmp_path / "scores").exists() or not any((tmp_path / "scores").iterdir())
    finally:
        state.close()
