"""Degraded functions as an operator sees them: /v1/readyz stays 200 (predictions go on) but
lists each function that does not work and why (a broken key file, refused event writes, a
failed model reload, a failed drift evaluation), journey_degraded{function} says the same,
the recoveries are logged once, refused writes are logged at most once a minute, and the
stop ends with the store closed."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from features.store import AppendResult
from models.registry import RegistryError
from serving.app import create_app
from serving.keys import Role
from serving.ops_metrics import FUNCTIONS
from serving.routes import DegradedOut
from serving.state import ServiceState
from tests.serving.conftest import Served, state_of
from tests.serving.test_app import customers
from tests.serving.test_store_guard import FULL
from tests.training.world import clean_env, one_thread


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app with its own key file (the tests break it) and home."""
    folder = tmp_path_factory.mktemp("ops-health")
    keys = folder / "keys.yaml"
    shutil.copy(served.home / "api_keys.yaml", keys)
    settings = served.settings(served.store_copy(folder), home=folder / "home", api_keys=keys,
                               drift_eval_seconds=0)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


def ready(client: TestClient) -> dict[str, Any]:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text  # degraded, still ready: predictions go on
    body: dict[str, Any] = r.json()
    assert body["ready"] is True
    return body


def degraded(state: ServiceState) -> dict[str, float | None]:
    return {f: state.metrics.registry.get_sample_value("journey_degraded", {"function": f})
            for f in FUNCTIONS}


def test_a_healthy_service_has_no_problems(client: TestClient) -> None:
    assert ready(client)["problems"] == []
    assert set(degraded(state_of(client)).values()) == {0.0}
    assert get_args(DegradedOut.model_fields["function"].annotation) == FUNCTIONS


def test_a_broken_key_file_is_a_problem_until_fixed(
        client: TestClient, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    state = state_of(client)
    path = state.keys.path
    good = path.read_text()
    monkeypatch.setattr(state.keys, "reload_seconds", 0.0)  # read at each request
    try:
        path.write_text("keys: [not yaml\n")
        assert client.get("/metrics", headers=served.headers(Role.admin)).status_code == 503
        body = ready(client)
        assert body["message"] == "ready"
        (problem,) = body["problems"]
        assert problem["function"] == "api_keys"
        assert problem["reason"].startswith("every keyed route answers 503 "
                                            "key_file_unreadable: the service's API key file "
                                            "(keys.yaml) was changed and cannot be read")
        assert str(path.parent) not in str(body)
        assert degraded(state)["api_keys"] == 1 and degraded(state)["event_ingest"] == 0
    finally:
        path.write_text(good)
    assert ready(client)["problems"] == []
    assert degraded(state)["api_keys"] == 0


def test_refused_writes_are_a_problem_until_one_is_stored(
        client: TestClient, served: Served, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    state = state_of(client)
    assert state.store is not None
    real = state.store.append
    refusals = [duckdb.IOException(FULL)] * 3

    def append(table: pa.Table, returning: bool = False) -> AppendResult:
        if refusals:
            raise refusals.pop()
        return real(table, returning=returning)

    monkeypatch.setattr(state.store, "append", append)
    who = customers(served, 1)[0]
    h = served.headers(Role.ingest)
    with caplog.at_level(logging.INFO, logger="journey.serving"):
        for i in range(3):
            event = {"event_id": f"ops-health-{i}", "customer_id": who, "event_type":
                     "page_view", "channel": "web", "ts": "2025-11-14T12:00:00Z"}
            r = client.post("/events", json={"events": [event]}, headers=h)
            assert r.status_code == 503 and r.json()["code"] == "store_unavailable"
        (problem,) = ready(client)["problems"]
        assert problem["function"] == "event_ingest"
        assert "could not write 3 request(s)' events since " in problem["reason"]
        assert problem["reason"].endswith("(the disk is full); listed until a write is stored "
                                          "again")
        assert "/home/alice" not in problem["reason"]
        assert degraded(state)["event_ingest"] == 1
        r = client.post("/events", json={"events": [event]}, headers=h)
        assert r.status_code == 200, r.text
    refused = [m for m in caplog.messages if "could not write this request's events" in m]
    assert len(refused) == 1  # once a minute, not once a request
    back = [m for m in caplog.messages if m.startswith("event store writes again")]
    assert len(back) == 1 and back[0].startswith(
        "event store writes again: 3 request(s)' events were refused since ")
    assert back[0].endswith(" (last: the disk is full)")
    assert ready(client)["problems"] == [] and degraded(state)["event_ingest"] == 0


def test_a_failed_reload_is_a_problem_and_its_end_is_logged(
        client: TestClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    state = state_of(client)
    probe = state.holder._probe

    def down() -> dict[str, str]:
        raise RegistryError("cannot read /home/alice/journey/mlruns/models: registry down")

    monkeypatch.setattr(state.holder, "_probe", down)
    assert state.reload() is False
    (problem,) = ready(client)["problems"]
    assert problem["function"] == "model_reload"
    assert problem["reason"].startswith(f"the last model load failed (still serving "
                                        f"{state.versions()}): RegistryError: cannot read ")
    assert "/home/alice" not in problem["reason"]
    assert degraded(state)["model_reload"] == 1
    monkeypatch.setattr(state.holder, "_probe", probe)
    with caplog.at_level(logging.INFO, logger="journey.serving"):
        state.reload()
        state.reload()
    back = [m for m in caplog.messages if m.startswith("models load again")]
    assert back == [f"models load again: the registry answered (serving {state.versions()})"]
    assert ready(client)["problems"] == [] and degraded(state)["model_reload"] == 0


def test_a_failed_drift_evaluation_is_a_problem(client: TestClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    state = state_of(client)
    monkeypatch.setattr(state.drift, "failure", "RuntimeError: the drift worker died")
    (problem,) = ready(client)["problems"]
    assert problem == {"function": "drift_monitoring", "reason": (
        "the last drift evaluation failed (RuntimeError: the drift worker died): the drift "
        "gauges keep the values of an earlier one "
        "(journey_drift_last_evaluation_timestamp_seconds)")}
    assert degraded(state)["drift_monitoring"] == 1


def test_the_stop_ends_with_the_store_closed(served: Served, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    settings = served.settings(served.store_copy(tmp_path), home=tmp_path / "home",
                               drift_eval_seconds=0)
    state = ServiceState(settings)
    state.start(background=False)
    with caplog.at_level(logging.INFO, logger="journey"):
        state.close()
    assert caplog.messages[-1] == "stopped: event store closed"


def test_the_new_metrics_reach_the_metrics_route(
        client: TestClient, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def scrape() -> str:
        r = client.get("/metrics", headers=served.headers(Role.admin))
        assert r.status_code == 200, r.text
        return str(r.text)

    # Read at each scrape, without a /readyz in between.
    monkeypatch.setattr(state_of(client).drift, "failure", "RuntimeError: the worker died")
    assert 'journey_degraded{function="drift_monitoring"} 1.0' in scrape()
    monkeypatch.setattr(state_of(client).drift, "failure", None)
    text = scrape()
    for line in ('journey_degraded{function="drift_monitoring"} 0.0',
                 'journey_degraded{function="api_keys"} 0.0',
                 'journey_scoring_runs_total{outcome="success"} 0.0',
                 "journey_scoring_in_progress 0.0",
                 "journey_scoring_last_success_timestamp_seconds 0.0",
                 "journey_scoring_duration_seconds_count 0.0",
                 'journey_score_worker_fallbacks_total{reason="child_failed"} 0.0',
                 "journey_trigger_queue_depth 0.0", "journey_trigger_queue_dropped_total 0.0",
                 "journey_webhook_deliveries_pending 0.0",
                 "journey_drift_evaluation_failures_total 0.0",
                 "journey_drift_last_evaluation_timestamp_seconds 0.0"):
        assert line in text, line
