"""Model reload: an alias that moves is picked up (admin endpoint, or polling) with no failed
request; a load that fails keeps the last good models and says so in /readyz and /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from fastapi.testclient import TestClient

from models.registry import alias_version, client_for
from models.targets import target
from serving.app import create_app
from serving.keys import Role
from tests.journey.cli_helpers import ok
from tests.serving.conftest import Served, state_of
from tests.training.world import FAST_LGBM, SMALL, copy_registry, write_spec
from training.tracking import Tracking


def registry(served: Served, folder: Path) -> str:
    """A copy of the served registry (aliases included) that this test may change."""
    return copy_registry(Tracking(served.tracking_uri), folder).tracking_uri


def move(uri: str, served: Served, name: str, family: str) -> str:
    version = served.trained.result(name, family).version
    registered = target(name, served.world.spec.stages).registered_name
    client_for(uri).set_registered_model_alias(registered, "champion", version)
    return version


def hammer(client: TestClient, served: Served, stop: threading.Event,
           statuses: list[int]) -> None:
    cid = "C0000001"
    while not stop.is_set():
        r = client.post("/predict", json={"customer_id": cid},
                        headers=served.headers(Role.predict))
        statuses.append(r.status_code)


@contextmanager
def hammering(client: TestClient, served: Served) -> Iterator[list[int]]:
    """Predictions sent one after another for the duration; their status codes."""
    statuses: list[int] = []
    stop = threading.Event()
    worker = threading.Thread(target=hammer, args=(client, served, stop, statuses))
    worker.start()
    try:
        yield statuses
    finally:
        stop.set()
        worker.join()


def test_alias_move_is_picked_up_without_failed_requests(served: Served, tmp_path: Path) -> None:
    uri = registry(served, tmp_path / "reg")
    settings = served.settings(served.store_copy(tmp_path), mlflow_tracking_uri=uri)
    admin = served.headers(Role.admin)
    with TestClient(create_app(settings, background=False)) as client:
        with hammering(client, served) as statuses:
            time.sleep(0.3)
            baseline = move(uri, served, "churn", "baseline")
            r = client.post("/admin/reload", headers=admin).json()
            assert r["changed"] and r["models"]["churn"] == baseline and r["error"] is None
            time.sleep(0.3)
            lgbm = move(uri, served, "churn", "lightgbm")
            assert client.post("/admin/reload", headers=admin).json()["models"]["churn"] == lgbm
            time.sleep(0.3)
        assert len(statuses) > 10 and set(statuses) == {200}
        # a baseline champion scores without tree contributions: no reasons, same shape
        move(uri, served, "churn", "baseline")
        client.post("/admin/reload", headers=admin)
        out = client.post("/predict", json={"customer_id": "C0000001"},
                          headers=served.headers(Role.predict)).json()
        assert out["model_versions"]["churn"] == baseline and out["reasons"]["churn"] == []
        assert 0 < out["churn"] < 1


def test_failed_load_keeps_the_last_good_models(served: Served, tmp_path: Path) -> None:
    uri = registry(served, tmp_path / "reg")
    settings = served.settings(served.store_copy(tmp_path), mlflow_tracking_uri=uri)
    admin, reader = served.headers(Role.admin), served.headers(Role.marketer)
    registered = target("conversion", served.world.spec.stages).registered_name
    with TestClient(create_app(settings, background=False)) as client:
        client_for(uri).delete_registered_model_alias(registered, "champion")
        r = client.post("/admin/reload", headers=admin).json()
        assert r["changed"] is False and r["models"] == served.versions
        assert "no version with alias 'champion'" in r["error"]
        ready = client.get("/readyz")
        assert ready.status_code == 200  # still serving the last good set
        assert "no version with alias" in ready.json()["last_load_error"]
        metrics = client.get("/metrics", headers=reader).text
        assert "journey_model_last_load_ok 0.0" in metrics
        assert "journey_model_load_failures_total 1.0" in metrics
        ok = client.post("/predict", json={"customer_id": "C0000001"},
                         headers=served.headers(Role.predict))
        assert ok.status_code == 200 and ok.json()["model_versions"] == served.versions
        # the alias comes back: the next reload clears the error
        client_for(uri).set_registered_model_alias(registered, "champion",
                                                   served.versions["conversion"])
        assert client.post("/admin/reload", headers=admin).json()["error"] is None
        assert client.get("/readyz").json()["last_load_error"] is None
        assert "journey_model_last_load_ok 1.0" in client.get("/metrics", headers=reader).text


def test_polling_follows_the_alias(served: Served, tmp_path: Path) -> None:
    uri = registry(served, tmp_path / "reg")
    settings = served.settings(served.store_copy(tmp_path), mlflow_tracking_uri=uri,
                               reload_poll_seconds=0.2)
    with TestClient(create_app(settings, background=False)) as client:
        baseline = move(uri, served, "next_stage", "baseline")
        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline:
            seen = client.get("/models", headers=served.headers(Role.predict)).json()["models"]
            if seen["next_stage"] == baseline:
                break
            time.sleep(0.1)
        assert seen is not None and seen["next_stage"] == baseline


def test_reload_is_serialised(served: Served, tmp_path: Path) -> None:
    """Concurrent reloads do not interleave: each sees a whole set."""
    settings = served.settings(served.store_copy(tmp_path))
    with TestClient(create_app(settings, background=False)) as client:
        state = state_of(client)
        results: list[bool] = []
        threads = [threading.Thread(target=lambda: results.append(state.reload()))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [False] * 4 and state.versions() == served.versions


def test_unchanged_aliases_are_not_loaded_again(served: Served, tmp_path: Path) -> None:
    """A reload when nothing moved only asks the registry which versions the aliases name."""
    settings = served.settings(served.store_copy(tmp_path))
    with TestClient(create_app(settings, background=False)) as client:
        holder = state_of(client).holder

        def must_not_load() -> NoReturn:
            raise AssertionError("models loaded although no alias moved")

        holder._loader = must_not_load
        r = client.post("/admin/reload", headers=served.headers(Role.admin)).json()
        assert r == {"changed": False, "models": served.versions, "error": None}


def test_a_promotion_by_journey_retrain_is_picked_up_without_failed_requests(
        served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`journey retrain` moves the small experiment's cutoffs to the newest closed horizon;
    its churn challenger beats the served champion there and is promoted while requests keep
    coming; the service's alias polling swaps it in with every request answered."""
    uri = registry(served, tmp_path / "reg")
    spec = {**SMALL, "name": "small", "targets": ["churn"],
            "models": [{"family": "lightgbm", "params": {**FAST_LGBM, "num_threads": 1}}]}
    write_spec(tmp_path / "spec", spec)
    config = write_spec(tmp_path / "spec", {"name": "cycle", "experiment": "small.yaml",
                                            "every_days": 14, "margin": 0.0,
                                            "metric": {"churn": "log_loss"}})
    for name, value in (("HOME", tmp_path / "home"), ("MLFLOW_TRACKING_URI", uri),
                        ("STORE", served.world.store), ("SNAPSHOTS", tmp_path / "snapshots")):
        monkeypatch.setenv(f"JOURNEY_{name}", str(value))
    monkeypatch.chdir(tmp_path)  # MLflow's Default experiment resolves ./mlruns against it
    settings = served.settings(served.store_copy(tmp_path), mlflow_tracking_uri=uri,
                               reload_poll_seconds=0.2)
    before = served.versions["churn"]
    with (TestClient(create_app(settings, background=False)) as client,
          hammering(client, served) as statuses):
        lines = ok("retrain", "--config", config)
        assert any(line.startswith("churn: PROMOTED") for line in lines), lines
        new = alias_version(client_for(uri), "journey-churn", "champion")
        assert new is not None and str(new.version) != before
        deadline = time.monotonic() + 20
        while client.get("/models", headers=served.headers(Role.marketer)).json()[
                "models"]["churn"] != str(new.version):
            assert time.monotonic() < deadline, "the new champion was not picked up"
            time.sleep(0.1)
        time.sleep(0.3)
    assert len(statuses) > 10 and set(statuses) == {200}
