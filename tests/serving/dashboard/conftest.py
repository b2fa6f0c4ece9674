"""Fixtures of the dashboard's browser tests.

One server process for this package: the real app under uvicorn on a free port of 127.0.0.1,
on its own copy of the served world's store, scored twice through ``POST /admin/score`` (a
month before AS_OF, then at AS_OF, so the page shows changes). One headless Chromium for this
package (Debian's /usr/bin/chromium driven by Playwright's Python package), a fresh context
(no stored key) per test. The test modules import dashboard_page, which skips them without
Playwright or Chromium.

The package is its own folder so that both end with its last test: Playwright's sync API keeps
an event loop running in the main thread while it is open, and later tests that start one
(asyncio.run, anyio.run) would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from serving.keys import Role
from tests.serving.conftest import AS_OF, Served
from tests.serving.dashboard.browser_setup import (
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
from tests.training.world import LEAKY_ENV

if TYPE_CHECKING:  # Playwright is imported by the browser fixture only: it may be missing
    from playwright.sync_api import Browser, Route

EARLIER = AS_OF - timedelta(days=30)  # the server scores here first, then at AS_OF

# The server is session-scoped though only this package uses it: package-scoped, under make
# test's two processes (--dist loadfile, one file at a time) each of the package's files
# started and stopped its own (about 20 s each). make test now hands the whole package to one
# process (tests/scheduling.py), so it starts once. The browser stays package-scoped:
# Playwright's sync API keeps an event loop running, and the next package's asyncio.run()
# would fail.

@pytest.fixture(scope="session")
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
    yield from _tab(browser, server, "en-US")


@pytest.fixture
def tab_de(browser: Browser, server: Server) -> Iterator[Tab]:
    """As ``tab``, in a German browser (de-DE: 1.234,5 and its compact formats)."""
    yield from _tab(browser, server, "de-DE")


def _tab(browser: Browser, server: Server, locale: str) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale=locale,
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
