"""Scoring runs in the score worker's child process: the same snapshot as a run in the service,
one child for many runs, and a run in the service when the child cannot score (it died, or the
registry's champions are not the served ones); a run's own error is raised here."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from features.batch import micros
from features.events import EventArrays
from serving.score_job import population_from_history
from serving.score_worker import ScoreJob, ScoreWorker, _Child
from serving.scoring import Population
from serving.settings import ServeSettings
from serving.snapshots import Snapshot
from serving.state import ServiceState
from tests.serving.conftest import AS_OF, Served

# Meta that differs between any two runs: when, how fast, and their place in the chain.
VARYING = {"scored_at", "score_seconds", "journey_map_seconds", "write_seconds", "published",
           "id", "previous", "previous_as_of"}  # the chain of snapshots


@pytest.fixture(scope="module")
def state(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceState]:
    folder = tmp_path_factory.mktemp("score-worker")
    settings = served.settings(served.store_copy(folder), scores=folder / "scores",
                               drift_worker=False, score_worker=True)
    st = ServiceState(settings)
    st.start(background=False)
    yield st
    st.close()


def _worker(state: ServiceState) -> ScoreWorker:
    worker = state._score_worker
    assert worker is not None
    return worker


def _same(a: Snapshot, b: Snapshot) -> None:
    assert a.id != b.id
    assert a.customers().equals(b.customers())
    assert a.journey_map() == b.journey_map()
    assert json.dumps(a.kpis(), sort_keys=True) == json.dumps(b.kpis(), sort_keys=True)
    assert {k: v for k, v in a.meta.items() if k not in VARYING} == \
        {k: v for k, v in b.meta.items() if k not in VARYING}


def _here(state: ServiceState) -> Snapshot:
    models, history = state._models()
    return state.marketing.score(models, history, AS_OF)  # no worker: in this process


def test_the_child_scores_what_the_service_would(state: ServiceState) -> None:
    in_child = state.score_all(AS_OF)
    worker = _worker(state)
    assert worker.child.started == 1 and worker.child.proc is not None
    assert in_child.meta["customers"] > 100 and in_child.meta["actions"]
    _same(in_child, _here(state))
    again = state.score_all(AS_OF)
    assert worker.child.started == 1  # one child, models kept, for every run
    _same(in_child, again)
    assert state.marketing.book().snapshot.id == again.id  # the routes read the new one


def test_a_dead_child_is_replaced(state: ServiceState) -> None:
    worker = _worker(state)
    state.score_all(AS_OF)
    proc = worker.child.proc
    assert proc is not None
    started = worker.child.started
    proc.kill()
    proc.wait()
    snap = state.score_all(AS_OF)
    assert snap.meta["customers"] > 100 and worker.child.started == started + 1


class _Crash:
    """A population that, unpickled in the child, ends it: a child dying mid-run."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return os._exit, (3,)


def test_a_child_dying_mid_run_costs_one_run_here(state: ServiceState,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    worker = _worker(state)
    models, _ = state._models()
    with caplog.at_level(logging.WARNING, "journey.serving"):
        got = worker(models, [_Crash()], AS_OF)  # type: ignore[list-item]
    assert got is None  # the caller scores it itself
    assert "serving.score_worker failed" in caplog.text and "scoring in the service" in caplog.text
    assert worker.child.proc is None  # dropped; the next run starts another
    started = worker.child.started
    assert state.score_all(AS_OF).meta["customers"] > 100
    assert worker.child.started == started + 1


@dataclasses.dataclass
class _Promoted:
    """Served models whose versions the registry no longer names (a promotion the service
    has not reloaded)."""

    real: dict[str, str]

    def versions(self) -> dict[str, str]:
        return {**self.real, "churn": "999"}


def test_champions_other_than_the_served_are_scored_here(
        state: ServiceState, caplog: pytest.LogCaptureFixture) -> None:
    models, history = state._models()
    population = population_from_history(history, state.marketing.config, micros(AS_OF))
    with caplog.at_level(logging.WARNING, "journey.serving"):
        got = _worker(state)(_Promoted(models.versions()), [population],  # type: ignore[arg-type]
                             AS_OF)
    assert got is None  # the caller scores it itself
    assert "are not the served" in caplog.text and "'999'" in caplog.text


def test_an_error_in_the_run_is_raised_here(state: ServiceState) -> None:
    models, history = state._models()
    population = population_from_history(history, state.marketing.config, micros(AS_OF))
    broken = dataclasses.replace(population,
                                 arrays=dataclasses.replace(population.arrays, segments=None))
    with pytest.raises(ValueError, match="customer segments"):
        _worker(state)(models, [broken], AS_OF)
    assert isinstance(_worker(state)(models, [population], AS_OF), Snapshot)  # it lives on


def test_close_ends_the_child(served: Served, tmp_path: Path) -> None:
    settings = served.settings(served.store_copy(tmp_path), scores=tmp_path / "scores",
                               drift_worker=False, score_worker=True)
    st = ServiceState(settings)
    st.start(background=False)
    try:
        st.score_all(AS_OF)
        proc = _worker(st).child.proc
        assert proc is not None and proc.poll() is None
    finally:
        st.close()
    assert proc.poll() is not None and _worker(st).child.proc is None


def test_the_child_keeps_only_the_parts_of_the_run_under_way(tmp_path: Path) -> None:
    """Parts come after their run's job; a new job drops what an abandoned run sent (the
    service failed while gathering it), so no run is scored with another's customers."""
    child = _Child()
    part = Population(cast(EventArrays, None), {})
    with pytest.raises(RuntimeError, match="before a run's job"):
        child(part)
    job = ScoreJob(ServeSettings(home=tmp_path), {"churn": "1"}, AS_OF)
    assert child(job) is None and child(part) is None and child.parts == [part]
    assert child(job) is None and child.parts == []
    with pytest.raises(RuntimeError, match="unknown message 'stop'"):
        child("stop")
