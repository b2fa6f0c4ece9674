"""What runs and who may watch it: the build info metric, GET /v1/version, the start-up lines
(with a pinned clock said out loud, secrets never), the monitor role that reads /metrics and
nothing else, and keys sent as ``Authorization: Bearer``."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from serving.build import BuildInfo, startup_lines
from serving.deps import require
from serving.errors import MissingKeyError
from serving.keys import Role
from serving.settings import ServeSettings
from serving.state import ServiceState
from tests.serving.test_ops_requests import Records, light_app, state

PINNED = datetime(2025, 11, 15, tzinfo=UTC)


def test_the_build_info_metric_and_version_say_what_runs(tmp_path: Path) -> None:
    app, keys = light_app(tmp_path / "home")
    client = TestClient(app)
    before = datetime.now(UTC)
    got = client.get("/version")  # no key, as /healthz
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["version"] == metadata.version("journey") and body["as_of"] is None
    assert re.fullmatch(r"[0-9a-f]{12}|unknown", body["commit"])
    assert datetime.fromisoformat(body["started_at"]) <= before
    text = client.get("/metrics", headers={"X-API-Key": keys[Role.admin]}).text
    assert (f'journey_build_info{{commit="{body["commit"]}",python="{body["python"]}",'
            f'version="{body["version"]}"}} 1.0') in text
    assert "journey_clock_pinned_timestamp_seconds 0.0" in text


def test_without_the_distribution_the_version_comes_from_pyproject(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bento copies the source and pyproject.toml, not the installed distribution."""
    from serving import build

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "journey"\nversion = "9.8.7"\n')
    assert build._version(tmp_path) == "9.8.7"
    assert build._version(tmp_path / "nowhere") == "unknown"
    (tmp_path / "pyproject.toml").write_text("[project\n")
    assert build._version(tmp_path) == "unknown"


def test_a_pinned_clock_shows_in_version_and_metrics(tmp_path: Path) -> None:
    app, keys = light_app(tmp_path / "home", as_of=PINNED)
    client = TestClient(app)
    assert datetime.fromisoformat(client.get("/version").json()["as_of"]) == PINNED
    text = client.get("/metrics", headers={"X-API-Key": keys[Role.admin]}).text
    pinned = re.search(r"^journey_clock_pinned_timestamp_seconds (\S+)$", text, re.MULTILINE)
    assert pinned is not None and float(pinned[1]) == PINNED.timestamp()


def test_the_commit_comes_from_the_environment_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_COMMIT", "0123456789abcdef0123")
    assert BuildInfo.now().commit == "0123456789abcdef0123"


def test_the_startup_lines_tell_the_configuration_without_secrets(tmp_path: Path) -> None:
    settings = ServeSettings(home=tmp_path, as_of=PINNED, reload_poll_seconds=30,
                             mlflow_tracking_uri="postgresql://ml:hunter2@db:5432/mlflow")
    info = BuildInfo("1.2.3", "abcdef123456", "3.11.7", datetime.now(UTC))
    keys = [("a", Role.admin), ("p1", Role.predict), ("p2", Role.predict), ("m", Role.monitor)]
    config, pinned = startup_lines(info, settings, keys, 4)
    assert config.startswith("journey 1.2.3 (commit abcdef123456, python 3.11.7) starting: ")
    for part in (f"store {tmp_path / 'events.duckdb'}", "registry postgresql://ml:***@db:5432",
                 "alias 'champion'", "reload poll every 30 s", "drift evaluation every 60 s",
                 "keys 1 admin, 1 monitor, 2 predict", "enabled trigger rules 4",
                 "clock 2025-11-15T00:00:00Z (pinned by JOURNEY_AS_OF)"):
        assert part in config, part
    assert "hunter2" not in config
    assert pinned.startswith("the scoring clock is PINNED at 2025-11-15T00:00:00Z")
    assert len(startup_lines(info, ServeSettings(home=tmp_path), [], 0)) == 1  # not pinned


def test_the_app_logs_them_when_it_starts(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = light_app(tmp_path / "home", as_of=PINNED)
    monkeypatch.setattr(state(app), "start", lambda background: None)  # nothing to load
    handler = Records()
    journey = logging.getLogger("journey")
    level = journey.level
    journey.setLevel(logging.INFO)
    journey.addHandler(handler)
    try:
        with TestClient(app):
            pass
    finally:
        journey.removeHandler(handler)
        journey.setLevel(level)
    said = [(r.levelno, r.getMessage()) for r in handler.records if r.name == "journey.serving"]
    assert said[0][0] == logging.INFO and " starting: store " in said[0][1]
    assert said[1][0] == logging.WARNING and "PINNED" in said[1][1]


# -- the monitor role, and Bearer keys ---------------------------------------------------------

def test_a_monitor_key_reads_metrics_and_nothing_else(tmp_path: Path) -> None:
    app, keys = light_app(tmp_path / "home")
    client = TestClient(app)
    monitor = {"X-API-Key": keys[Role.monitor]}
    assert client.get("/metrics", headers=monitor).status_code == 200
    for path in ("/segments/export", "/segments", "/models", "/drift", "/triggers/firings"):
        r = client.get(path, headers=monitor)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", (path, r.text)
    for path in ("/healthz", "/readyz", "/version"):  # open to anyone
        assert client.get(path).status_code in (200, 503), path
    r = client.get("/metrics", headers={"X-API-Key": keys[Role.ingest]})
    assert r.status_code == 403
    assert "needs one of: admin, marketer, monitor" in r.json()["message"]


def test_a_key_may_come_as_a_bearer_token(tmp_path: Path) -> None:
    app, keys = light_app(tmp_path / "home")
    client = TestClient(app)
    for scheme in ("Bearer", "bearer"):
        r = client.get("/metrics", headers={"Authorization": f"{scheme} {keys[Role.monitor]}"})
        assert r.status_code == 200, r.text
    assert client.get("/models", headers={
        "Authorization": f"Bearer {keys[Role.predict]}"}).status_code == 200
    for wrong, code in (("Bearer jk_wrong", "invalid_key"), ("Basic dXNlcjpwdw==", "missing_key"),
                        ("Bearer ", "missing_key")):
        r = client.get("/metrics", headers={"Authorization": wrong})
        assert (r.status_code, r.json()["code"]) == (401, code), wrong
    # X-API-Key, when both are sent, is the one checked (as before Bearer was accepted).
    r = client.get("/metrics", headers={"X-API-Key": keys[Role.ingest],
                                        "Authorization": f"Bearer {keys[Role.monitor]}"})
    assert r.status_code == 403
    # The key gate reads it too: a POST without a valid one is refused before its body.
    r = client.post("/events", json={"events": []},
                    headers={"Authorization": f"Bearer {keys[Role.ingest]}"})
    assert r.status_code not in (401, 403), r.text


def test_the_routes_own_check_reads_a_bearer_key_too(tmp_path: Path) -> None:
    """As the key gate does (a request the gate did not see, e.g. an app built without it)."""
    app, keys = light_app(tmp_path / "home")
    check = require(Role.marketer)

    def asked(authorization: str) -> ServiceState:
        request = Request({"type": "http", "method": "GET", "path": "/metrics", "app": app,
                           "query_string": b"",
                           "headers": [(b"authorization", authorization.encode())]})
        return asyncio.run(check(request, None))

    assert asked(f"Bearer {keys[Role.marketer]}") is state(app)
    with pytest.raises(MissingKeyError):
        asked(f"Basic {keys[Role.marketer]}")
