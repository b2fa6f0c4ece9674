"""Fixtures of the service tests: the shared world's store and the small experiment's models,
promoted to champion in a copy of the registry, with one API key per role. Each test module
gets its own copy of the event store (ingest tests write to it). The dashboard's browser tests
share one server process and one headless Chromium for the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient

from models.registry import alias_version
from models.targets import TARGETS, target
from models.uplift_model import registered_name
from serving.app import create_app
from serving.keys import Role, create_key
from serving.settings import ServeSettings
from tests.serving.browser_setup import (
    CHROMIUM,
    FLAGS,
    ROOT,
    TIMEOUT_MS,
    Server,
    Tab,
    free_port,
    stop,
    wait_ready,
)
from tests.training.world import (
    LEAKY_ENV,
    Trained,
    UpliftTrained,
    World,
    clean_env,
    copy_registry,
    one_thread,
)

if TYPE_CHECKING:  # Playwright is imported by the browser fixtures only: it may be missing
    from playwright.sync_api import Browser, Route

# After the world's last training window; the world's events end on 2025-12-31.
AS_OF = datetime(2025, 11, 15, tzinfo=UTC)
EARLIER = AS_OF - timedelta(days=30)  # the dashboard's server scores here first, then at AS_OF


@dataclass(frozen=True)
class Served:
    world: World
    trained: Trained
    home: Path
    tracking_uri: str
    keys: dict[Role, str]
    versions: dict[str, str]  # champion version per target and uplift model

    def settings(self, store: Path, **overrides: object) -> ServeSettings:
        values: dict[str, object] = {
            "home": self.home, "store": store, "mlflow_tracking_uri": self.tracking_uri,
            "api_keys": self.home / "api_keys.yaml", "as_of": AS_OF, **overrides}
        return ServeSettings(**values)  # type: ignore[arg-type]

    def headers(self, role: Role) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def store_copy(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / "events.duckdb"
        shutil.copy(self.world.store, dst)
        return dst


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


# -- the dashboard's browser tests ------------------------------------------------------------
# One server process for the package: the real app under uvicorn on a free port of 127.0.0.1,
# on its own copy of the served world's store, scored twice through ``POST /admin/score`` (a
# month before AS_OF, then at AS_OF, so the page shows changes). One headless Chromium for the
# package (Debian's /usr/bin/chromium driven by Playwright's Python package), a fresh context
# (no stored key) per test. The test modules import tests.serving.dashboard_page, which skips
# them without Playwright or Chromium; these fixtures are only set up when a test asks for them.

@pytest.fixture(scope="package")
def server(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app under uvicorn in its own process, scored twice, stopped by its PID at the end."""
    folder = tmp_path_factory.mktemp("dashboard")
    store = served.store_copy(folder / "store")
    settings = served.settings(store, scores=folder / "scores")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JOURNEY_") and k not in LEAKY_ENV}
    env.update({
        "JOURNEY_HOME": str(settings.home),
        "JOURNEY_STORE": str(settings.store_path),
        "JOURNEY_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "JOURNEY_API_KEYS": str(settings.keys_path),
        "JOURNEY_AS_OF": AS_OF.isoformat(),
        "JOURNEY_SCORES": str(settings.scores_path),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "BENTOML_DO_NOT_TRACK": "true",
        "OMP_NUM_THREADS": "1",  # two cores, shared with the browser
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
    })
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with log.open("wb") as out:
        # cwd: an empty folder, so no .env file of the project's directory is read.
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = httpx.Client(timeout=300.0, trust_env=False)
    try:
        wait_ready(proc, client, url, log)
        admin = served.headers(Role.admin)
        for when in (EARLIER, AS_OF):
            r = client.post(f"{url}/admin/score", json={"as_of": when.isoformat()}, headers=admin)
            assert r.status_code == 200, r.text
        yield Server(url, served, log, client)
    finally:
        client.close()
        stop(proc)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def tab(browser: Browser, server: Server) -> Iterator[Tab]:
    """A fresh context (empty sessionStorage): page errors and any request leaving the server
    are recorded and fail the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US",
                                  timezone_id="UTC", accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    offsite: list[str] = []

    def guard(route: Route) -> None:
        if route.request.url.startswith(server.url + "/") or route.request.url.startswith(
                ("data:", "blob:")):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "401" not in msg.text and "403" not in msg.text
            and "404" not in msg.text else None)
    try:
        yield Tab(page, errors, offsite)
    finally:
        context.close()
    assert not offsite, f"the page fetched from outside the service: {offsite}"
    assert not errors, errors
