"""Fixtures of the service tests: the shared world's store and the small experiment's models,
promoted to champion in a copy of the registry, with one API key per role. Each test module
gets its own copy of the event store (ingest tests write to it). The dashboard's browser tests
have their own fixtures in tests/serving/dashboard."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from models.registry import alias_version
from models.targets import TARGETS, target
from models.uplift_model import registered_name
from serving.app import create_app
from serving.keys import Role, create_key
from serving.settings import ServeSettings
from serving.state import ServiceState
from tests.training.world import (
    Trained,
    UpliftTrained,
    World,
    clean_env,
    copy_registry,
    one_thread,
)

# After the world's last training window; the world's events end on 2025-12-31.
AS_OF = datetime(2025, 11, 15, tzinfo=UTC)


@dataclass(frozen=True)
class Served:
    world: World
    trained: Trained
    home: Path
    tracking_uri: str
    keys: dict[Role, str]
    versions: dict[str, str]  # champion version per target and uplift model

    def settings(self, store: Path, **overrides: Any) -> ServeSettings:
        # Scoring runs in this process: a score worker child per app (model loading, seconds
        # each) would add minutes to the suite; tests/serving/test_score_worker.py and the
        # BentoML tests run the child. No heap freeze either: in this process it walks every
        # fixture of the session (1-2 s a start); tests/serving/test_memory.py and the
        # services started as processes freeze.
        values: dict[str, Any] = {
            "home": self.home, "store": store, "mlflow_tracking_uri": self.tracking_uri,
            "api_keys": self.home / "api_keys.yaml", "as_of": AS_OF, "score_worker": False,
            "freeze_heap": False, **overrides}
        return ServeSettings(**values)

    def headers(self, role: Role) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def store_copy(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / "events.duckdb"
        shutil.copy(self.world.store, dst)
        return dst


def app_of(client: TestClient) -> FastAPI:
    """The FastAPI app a test client drives (create_app's)."""
    assert isinstance(client.app, FastAPI)
    return client.app


def state_of(client: TestClient) -> ServiceState:
    """The service state of the app a test client drives."""
    state = app_of(client).state.journey
    assert isinstance(state, ServiceState)
    return state


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with clean_env(), one_thread():
        yield


@pytest.fixture(scope="session")
def served(world: World, trained: Trained, uplift_trained: UpliftTrained,
           tmp_path_factory: pytest.TempPathFactory) -> Served:
    return build_served(world, trained, uplift_trained, tmp_path_factory.mktemp("serve"))


def build_served(world: World, trained: Trained, uplift_trained: UpliftTrained,
                 home: Path) -> Served:
    """A home whose registry copy has the small experiment's LightGBM models and the uplift
    models as champions, and one API key per role."""
    tracking = copy_registry(uplift_trained.tracking, home)  # predictive and uplift models
    client = tracking.client()
    versions = {}
    for name in TARGETS:
        registered = target(name, world.spec.stages).registered_name
        version = trained.result(name, "lightgbm").version
        client.set_registered_model_alias(registered, "champion", version)
        versions[name] = version
    for outcome in ("convert", "churn"):  # promoted by the uplift fixture's gate
        champion = alias_version(client, registered_name(outcome), "champion")
        assert champion is not None
        versions[registered_name(outcome)] = str(champion.version)
    keys = {role: create_key(home / "api_keys.yaml", f"test-{role.value}", role)
            for role in Role}
    return Served(world, trained, home, tracking.tracking_uri, keys, versions)


@pytest.fixture(scope="module")
def app_client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A loaded app on its own store copy (module scope: loading takes a few seconds)."""
    store = served.store_copy(tmp_path_factory.mktemp("store"))
    with clean_env(), one_thread(), TestClient(
            create_app(served.settings(store), background=False)) as client:
        yield client
