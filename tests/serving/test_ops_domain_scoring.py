"""Scoring runs as an operator sees them: a line when one starts (who asked, as of when), one
when it ends (seconds, customers, the snapshot, the one compared with, those pruned), fails
(why) or is abandoned by a stop; runs by outcome, their duration, the last success and the
run in progress in the service's registry; runs the score worker left to the service counted
by reason; and the stop signal's line naming the run it cuts short."""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

import serving.marketing
from serving import score_worker
from serving.champions import ModelSet
from serving.errors import NotReadyError
from serving.score_worker import ScoreWorker
from serving.scoring import Population
from serving.scoring_runs import ScoringAbandonedError, ScoringRuns
from serving.settings import ServeSettings
from serving.snapshots import Snapshot
from serving.state import ServiceState
from serving.stopping import StopSignals
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_score_worker_stopping import _Models, _Terminated

OLD = "20000101T000000000000Z"  # sorts before any snapshot a run writes


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "journey.serving" and "scoring run" in r.getMessage()]


@pytest.fixture(scope="module")
def state(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceState]:
    folder = tmp_path_factory.mktemp("ops-scoring")
    scores = folder / "scores"
    for i in range(12):  # as many as the segment config keeps: the run prunes the oldest
        (scores / f"{OLD[:-3]}{i:02d}Z").mkdir(parents=True)
    settings = served.settings(served.store_copy(folder), scores=scores, drift_worker=False,
                               drift_window_rows=50)
    st = ServiceState(settings)
    st.start(background=False)
    yield st
    st.close()


def test_a_run_says_who_asked_what_it_wrote_and_is_measured(
        state: ServiceState, caplog: pytest.LogCaptureFixture) -> None:
    registry = state.metrics.registry
    assert sample(registry, "journey_scoring_runs_total", outcome="success") == 0
    assert sample(registry, "journey_scoring_last_success_timestamp_seconds") == 0
    with caplog.at_level(logging.INFO, logger="journey.serving"):
        snap = state.score_all(AS_OF, requested_by="ops-admin")
    lines = messages(caplog)
    assert lines[0] == (logging.INFO, "scoring run started, as of 2025-11-15T00:00:00Z, asked "
                                      "by key 'ops-admin'")
    level, done = lines[-1]
    customers = snap.meta["customers"]
    assert level == logging.INFO and re.fullmatch(
        rf"scoring run done in \d+\.\ds, as of 2025-11-15T00:00:00Z, asked by key "
        rf"'ops-admin': {customers:,} customers scored in the service into snapshot {snap.id} "
        rf"\(no previous snapshot to compare; pruned {OLD[:-3]}00Z\)", done), done
    assert len(lines) == 2
    assert sample(registry, "journey_scoring_runs_total", outcome="success") == 1
    assert sample(registry, "journey_scoring_duration_seconds_count") == 1
    assert (sample(registry, "journey_scoring_last_success_timestamp_seconds") or 0) > 0
    assert sample(registry, "journey_scoring_in_progress") == 0
    text = state.metrics.render().decode()
    assert 'journey_scoring_duration_seconds_bucket{le="600.0"} 1.0' in text
    assert 'journey_scoring_runs_total{outcome="failed"} 0.0' in text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="journey.serving"):
        again = state.score_all(AS_OF)  # no key name given: none said
    assert f"into snapshot {again.id} (compared with {snap.id}" in messages(caplog)[-1][1]
    assert "asked by" not in caplog.text


def test_a_failed_run_is_one_line_with_the_reason(
        state: ServiceState, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise OSError("No space left on device\nsecond line")

    monkeypatch.setattr(serving.marketing, "ScoreRun", broken)
    registry = state.metrics.registry
    with caplog.at_level(logging.INFO, logger="journey.serving"), pytest.raises(OSError):
        state.score_all(AS_OF, requested_by="ops-admin")
    failed = [m for level, m in messages(caplog) if level == logging.ERROR]
    assert len(failed) == 1 and re.fullmatch(
        r"scoring run failed after \d+\.\ds, as of 2025-11-15T00:00:00Z, asked by key "
        r"'ops-admin': OSError: No space left on device", failed[0]), failed
    assert sample(registry, "journey_scoring_runs_total", outcome="failed") == 1
    assert sample(registry, "journey_scoring_in_progress") == 0


def test_a_run_in_progress_is_a_gauge_and_the_stop_signal_names_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    runs = ScoringRuns(registry)
    seen: list[int] = []

    def server(sig: int, _: FrameType | None) -> None:  # uvicorn's graceful shutdown
        seen.append(sig)

    def in_flight() -> list[str]:
        run = runs.current
        return [f"a scoring run ({run.describe()})"] if run else []

    before = signal.signal(signal.SIGTERM, server)
    signals = StopSignals(threading.Event(), in_flight)
    try:
        signals.watch()
        with caplog.at_level(logging.INFO, logger="journey.serving"), \
                runs.run(AS_OF, "ops-admin", tmp_path) as run:
            assert sample(registry, "journey_scoring_in_progress") == 1
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)  # a second one says nothing new
            run.snapshot = Snapshot(tmp_path / "s1", {"customers": 3, "previous": None})
    finally:
        signals.restore()
        signal.signal(signal.SIGTERM, before)
    assert seen == [signal.SIGTERM, signal.SIGTERM]
    stops = [r.getMessage() for r in caplog.records if "stop signal" in r.getMessage()]
    assert stops == ["stop signal SIGTERM received: stopping; under way: a scoring run (as of "
                     "2025-11-15T00:00:00Z, asked by key 'ops-admin')"]
    assert sample(registry, "journey_scoring_in_progress") == 0 and runs.current is None


def test_an_abandoned_run_is_counted_and_said(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    runs = ScoringRuns(registry)
    with caplog.at_level(logging.INFO, logger="journey.serving"), \
            pytest.raises(ScoringAbandonedError), runs.run(AS_OF, None, tmp_path):
        raise ScoringAbandonedError("the service is stopping")
    (line,) = [m for level, m in messages(caplog) if level == logging.WARNING]
    assert re.fullmatch(r"scoring run abandoned after \d+\.\ds, as of 2025-11-15T00:00:00Z: "
                        r"the service is stopping; nothing was published", line)
    total = "journey_scoring_runs_total"
    assert sample(registry, total, outcome="abandoned") == 1
    assert sample(registry, total, outcome="failed") == 0


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[ScoreWorker, CollectorRegistry]]:
    registry = CollectorRegistry()
    w = ScoreWorker(ServeSettings(home=tmp_path), threading.Event(),
                    ScoringRuns(registry).fallback)
    yield w, registry
    w.close()


def _run(w: ScoreWorker) -> object:
    return w(cast(ModelSet, _Models()), [cast(Population, _Terminated())],
             datetime(2025, 1, 1, tzinfo=UTC))


def test_the_worker_counts_runs_left_to_the_service_and_abandons_on_stop(
        worker: tuple[ScoreWorker, CollectorRegistry], monkeypatch: pytest.MonkeyPatch) -> None:
    w, registry = worker
    fallbacks = "journey_score_worker_fallbacks_total"
    monkeypatch.setattr(score_worker, "SIGNAL_GRACE_SECONDS", 0.2)
    assert _run(w) is None  # the child died while the service runs on: scored there
    assert sample(registry, fallbacks, reason="child_failed") == 1
    assert sample(registry, fallbacks, reason="models_changed") == 0
    w.stopping.set()
    with pytest.raises(ScoringAbandonedError) as info:
        _run(w)
    assert isinstance(info.value, NotReadyError) and info.value.status == 503
    assert sample(registry, fallbacks, reason="child_failed") == 1  # not a fallback


def test_a_run_under_way_is_in_the_states_stop_line(state: ServiceState,
                                                    tmp_path: Path) -> None:
    assert state._in_flight() == []
    with state.scoring.run(AS_OF, "ops-admin", tmp_path) as run:
        (said,) = state._in_flight()
        run.snapshot = cast(Any, SimpleNamespace(id="s", meta={}))
    assert re.fullmatch(r"a scoring run for \d+s \(as of 2025-11-15T00:00:00Z, asked by key "
                        r"'ops-admin'\)", said), said
