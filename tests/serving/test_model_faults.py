"""Model faults during a reload: a corrupt artifact, a missing alias, a registry that cannot be
read or stops answering half-way. Each time the last good models keep serving (every request
of a client predicting throughout succeeds, with the same versions), /readyz stays 200 and
names the last load error, /metrics counts the failure; once the fault is repaired, a reload
picks up the new good version."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient

from models.registry import client_for
from models.targets import target
from serving.app import create_app
from serving.keys import Role
from tests.serving.conftest import Served
from tests.serving.test_reload import move, registry

CUSTOMERS = ("C0000001", "C0000002", "C0000003", "C0000004")


@contextmanager
def traffic(client: TestClient, served: Served) -> Iterator[list[tuple[int, Any]]]:
    """Predictions sent back to back from another thread while the block runs: each
    answer's status and the model versions it was scored with."""
    seen: list[tuple[int, Any]] = []
    stop = threading.Event()

    def run() -> None:
        i = 0
        while not stop.is_set() or len(seen) < 5:
            try:
                r = client.post("/predict", headers=served.headers(Role.predict),
                                json={"customer_id": CUSTOMERS[i % len(CUSTOMERS)]})
                ok = r.status_code == 200
                seen.append((r.status_code, r.json()["model_versions"] if ok else r.text))
            except Exception as exc:  # an app error raised through the test client: a failure
                seen.append((-1, repr(exc)))
            i += 1

    worker = threading.Thread(target=run)
    worker.start()
    try:
        yield seen
    finally:
        stop.set()
        worker.join(60)


def reload(client: TestClient, served: Served) -> dict[str, Any]:
    r = client.post("/admin/reload", headers=served.headers(Role.admin))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def fails_safely(client: TestClient, served: Served, good: dict[str, str], why: str,
                 failures: int) -> None:
    """One reload attempt under traffic: refused, the last good set serving throughout and
    after, and the failure visible in /readyz, /models and /metrics."""
    with traffic(client, served) as seen:
        r = reload(client, served)
    assert r["changed"] is False and r["models"] == good
    assert re.search(why, r["error"]), r["error"]
    assert {status for status, _ in seen} == {200}, seen[:5]
    assert all(versions == good for _, versions in seen)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert re.search(why, ready.json()["last_load_error"])
    models = client.get("/models", headers=served.headers(Role.predict)).json()
    assert models["models"] == good and re.search(why, models["last_load_error"])
    metrics = client.get("/metrics", headers=served.headers(Role.marketer)).text
    assert "journey_model_last_load_ok 0.0" in metrics
    assert f"journey_model_load_failures_total {failures:.1f}" in metrics
    for name, version in good.items():
        assert f'journey_model_version{{target="{name}",version="{version}"}} 1.0' in metrics


def recovers(client: TestClient, served: Served, expected: dict[str, str]) -> None:
    """After the repair: the next reload serves ``expected`` and clears the error."""
    with traffic(client, served) as seen:
        r = reload(client, served)
    assert r == {"changed": True, "models": expected, "error": None}
    assert {status for status, _ in seen} == {200}
    assert client.get("/readyz").json()["last_load_error"] is None
    metrics = client.get("/metrics", headers=served.headers(Role.marketer)).text
    assert "journey_model_last_load_ok 1.0" in metrics
    out = client.post("/predict", json={"customer_id": CUSTOMERS[0]},
                      headers=served.headers(Role.predict)).json()
    assert out["model_versions"] == expected


def copy_version(uri: str, served: Served, name: str, folder: Path) -> tuple[str, Path]:
    """A new version of ``name`` registered from a copy of its champion's files (this test's
    to break; the shared fixture's artifacts stay untouched)."""
    client = client_for(uri)
    registered = target(name, served.world.spec.stages).registered_name
    champion = client.get_model_version_by_alias(registered, "champion")
    src = Path(urlparse(client.get_model_version_download_uri(registered,
                                                              champion.version)).path)
    dst = folder / f"{registered}-copy"
    shutil.copytree(src, dst)
    mv = client.create_model_version(registered, str(dst), run_id=champion.run_id,
                                     tags=dict(champion.tags))
    return str(mv.version), dst


@contextmanager
def loaded_app(served: Served, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """A loaded app on its own store and registry copies (aliases this test may move)."""
    uri = registry(served, tmp_path / "reg")
    settings = served.settings(served.store_copy(tmp_path), mlflow_tracking_uri=uri)
    with TestClient(create_app(settings, background=False)) as client:
        assert client.get("/readyz").json()["models"] == served.versions
        yield client, uri


CORRUPTIONS: dict[str, Callable[[Path], object]] = {
    "garbage": lambda f: f.write_bytes(b"\x00not a pickle\xff" * 64),
    "truncated": lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]),
    "missing": lambda f: f.unlink(),
}


def test_corrupt_artifact(served: Served, tmp_path: Path) -> None:
    """The alias moves to a new version whose model file is broken (three ways)."""
    with loaded_app(served, tmp_path) as (client, uri):
        version, files = copy_version(uri, served, "churn", tmp_path)
        pickled = files / "model.pkl"
        good_bytes = pickled.read_bytes()
        registered = target("churn", served.world.spec.stages).registered_name
        client_for(uri).set_registered_model_alias(registered, "champion", version)
        for failures, corrupt in enumerate(CORRUPTIONS.values(), start=1):
            pickled.write_bytes(good_bytes)
            corrupt(pickled)
            fails_safely(client, served, served.versions,
                         f"{registered}/{version}", failures)
        pickled.write_bytes(good_bytes)  # repaired: the same version loads now
        recovers(client, served, {**served.versions, "churn": version})


def test_missing_alias(served: Served, tmp_path: Path) -> None:
    with loaded_app(served, tmp_path) as (client, uri):
        registered = target("conversion", served.world.spec.stages).registered_name
        version, _ = copy_version(uri, served, "conversion", tmp_path)  # a new good version
        client_for(uri).delete_registered_model_alias(registered, "champion")
        fails_safely(client, served, served.versions,
                     f"{registered} has no version with alias 'champion'", 1)
        client_for(uri).set_registered_model_alias(registered, "champion", version)
        recovers(client, served, {**served.versions, "conversion": version})


def test_registry_unreadable(served: Served, tmp_path: Path) -> None:
    """The registry's SQLite file becomes unreadable (overwritten in place) after an alias
    moved: the error says the registry failed, not that the alias is missing."""
    with loaded_app(served, tmp_path) as (client, uri):
        moved = move(uri, served, "churn", "baseline")
        db = Path(uri.removeprefix("sqlite:///"))
        good_bytes = db.read_bytes()
        db.write_bytes(b"this is not a SQLite database" * 4096)
        try:
            fails_safely(client, served, served.versions, "registry", 1)
        finally:
            db.write_bytes(good_bytes)
        assert "alias" not in client.get("/readyz").json()["last_load_error"]
        recovers(client, served, {**served.versions, "churn": moved})


@pytest.mark.parametrize("error", [
    ConnectionError("[Errno 111] Connection refused"),
    MlflowException("API request failed: the tracking server is unavailable",
                    TEMPORARILY_UNAVAILABLE),
], ids=["connection-error", "mlflow-unavailable"])
def test_registry_lost_during_reload(served: Served, tmp_path: Path,
                                     error: Exception) -> None:
    """The registry stops answering half-way through a reload (after the predictive models'
    aliases, before the uplift models'): nothing of the half-read set is served."""
    with loaded_app(served, tmp_path) as (client, uri):
        moved = move(uri, served, "churn", "baseline")
        answer = MlflowClient.get_model_version_by_alias

        def flaky(self: MlflowClient, name: str, alias: str) -> Any:
            if "uplift" in name:
                raise error
            return answer(self, name, alias)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(MlflowClient, "get_model_version_by_alias", flaky)
            fails_safely(client, served, served.versions, "unavailable|refused", 1)
        recovers(client, served, {**served.versions, "churn": moved})
