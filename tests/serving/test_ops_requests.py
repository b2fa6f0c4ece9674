"""Operators match an answer to the log and count every answer (serving/observe.py): a request
id on every answer and error body, incoming ones kept when sane; a 500 logged once, with one
traceback, its route, method, status and key name; refused keys logged (rate-limited), other
4xx not; 429 and 504 counted with their real status; slow requests logged; latency buckets up
to the request timeout.

The app is built without a registry or store (nothing is loaded: no lifespan), with a failing
and a sleeping route added for the purpose; 429 and 504 go through the middleware BentoML
stacks around it (serving/front.py, serving/timeout.py), in BentoML's order."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from serving.app import create_app
from serving.front import LimitedConcurrency
from serving.keys import Role, create_key
from serving.logs import TextFormatter
from serving.metrics import LATENCY_BUCKETS, Metrics
from serving.observe import Observed
from serving.settings import ServeSettings
from serving.state import ServiceState
from serving.timeout import InTaskTimeout

GENERATED = re.compile(r"[0-9a-f]{16}")


def light_app(home: Path, **overrides: Any) -> tuple[FastAPI, dict[Role, str]]:
    """The service's app on an empty home (nothing loaded), one key per role, and two routes
    of its own: /boom fails (a bug), /sleep?s= answers after that many seconds."""
    home.mkdir(parents=True, exist_ok=True)
    keys_file = home / "api_keys.yaml"
    keys = {role: create_key(keys_file, f"ops-{role.value}", role) for role in Role}
    settings = ServeSettings(home=home, store=home / "events.duckdb",
                             mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
                             api_keys=keys_file, score_worker=False, drift_worker=False,
                             **overrides)
    app = create_app(settings)

    async def boom(_: Request) -> JSONResponse:
        return JSONResponse(json.loads("{not json"))

    async def sleep(request: Request) -> JSONResponse:
        await asyncio.sleep(float(request.query_params.get("s", "0")))
        return JSONResponse({"slept": True})

    app.router.routes[:0] = [Route("/boom", boom), Route("/sleep", sleep)]
    return app, keys


def state(app: FastAPI) -> ServiceState:
    found = app.state.journey
    assert isinstance(found, ServiceState)
    return found


def counted(metrics: Metrics, route: str, method: str = "GET") -> dict[str, float]:
    """journey_requests_total of one route and method, by status."""
    text = metrics.render().decode()
    pattern = re.compile(rf'journey_requests_total{{method="{method}",route="{re.escape(route)}",'
                         r'status="(\d+)"} (\S+)')
    return {m[1]: float(m[2]) for m in pattern.finditer(text)}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def request_log() -> Iterator[list[logging.LogRecord]]:
    """The records of journey.requests, at INFO (the service's level: serving/logs.py)."""
    handler = Records()
    journey, requests = logging.getLogger("journey"), logging.getLogger("journey.requests")
    level = journey.level
    journey.setLevel(logging.INFO)
    requests.addHandler(handler)
    try:
        yield handler.records
    finally:
        requests.removeHandler(handler)
        journey.setLevel(level)


@pytest.fixture
def light(tmp_path: Path) -> tuple[TestClient, dict[Role, str]]:
    app, keys = light_app(tmp_path / "home")
    return TestClient(app), keys


@functools.cache
def bentomls_middleware() -> tuple[Any, ...]:
    """The classes the service's BentoML app stacks before the app, outermost first, as
    `bentoml serve` builds it (serving/front.py and serving/timeout.py install theirs)."""
    from serving.service import Journey

    outer = Journey.to_asgi(is_main=True)  # type: ignore[attr-defined]
    return tuple(m.cls for m in outer.user_middleware)


def bentoml_like(api: FastAPI, timeout: float, limit: int) -> Starlette:
    """The app mounted at /v1 behind the middleware BentoML stacks before it, in its order,
    with a test's timeout and concurrency limit."""
    options: dict[Any, dict[str, Any]] = {
        Observed: {"api": api, "prefix": "/v1"}, InTaskTimeout: {"timeout": timeout},
        LimitedConcurrency: {"max_concurrency": limit}}
    return Starlette(routes=[Mount("/v1", app=api)], middleware=[
        Middleware(cls, **options[cls]) for cls in bentomls_middleware() if cls in options])


# -- request ids ---------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "kept"), [
    (None, False), ("abc-123", True), ("x" * 128, True), ("x" * 129, False),
    ("has space", False), ("tab\there", False), ("caf\u00e9".encode("latin-1"), False), ("", False),
    ("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:1", True)])
def test_every_answer_carries_a_request_id(light: tuple[TestClient, dict[Role, str]],
                                           given: str | bytes | None, kept: bool) -> None:
    client, keys = light
    headers: dict[str, str | bytes] = {} if given is None else {"X-Request-ID": given}
    answers = {
        200: client.get("/healthz", headers=headers),
        401: client.get("/metrics", headers=headers),
        403: client.get("/segments/export", headers={**headers, "X-API-Key": keys[Role.monitor]}),
        404: client.get("/no/such/route", headers=headers),
        422: client.post("/predict", json={"customer_id": []},
                         headers={**headers, "X-API-Key": keys[Role.predict]}),
        500: client.get("/boom", headers=headers),
    }
    seen = set()
    for status, r in answers.items():
        assert r.status_code == status, r.text
        rid = r.headers["x-request-id"]
        assert rid == given if kept else GENERATED.fullmatch(rid), (status, rid)
        if status >= 400:
            assert r.json()["request_id"] == rid, r.text
        seen.add(rid)
    assert len(seen) == (1 if kept else len(answers))  # a new one per request


def test_a_500_names_its_request_id(light: tuple[TestClient, dict[Role, str]]) -> None:
    client, _ = light
    r = client.get("/boom", headers={"X-Request-ID": "trace-42"})
    assert r.status_code == 500
    assert r.json() == {"code": "internal", "field": None, "request_id": "trace-42",
                        "message": "internal error (JSONDecodeError); the service log has the "
                                   "details under request id trace-42"}


# -- log lines -----------------------------------------------------------------------------

def test_a_500_is_logged_once_with_its_request_and_one_traceback(
        tmp_path: Path, request_log: list[logging.LogRecord],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, keys = light_app(tmp_path / "home")

    def broken() -> dict[str, str]:
        raise RuntimeError("versions unreadable")

    monkeypatch.setattr(state(app), "versions", broken)
    # The default client raises what the app raises to the server: nothing may be, or the
    # server logs it (with its own traceback) a second time.
    r = TestClient(app).get("/models", headers={"X-API-Key": keys[Role.marketer],
                                                "X-Request-ID": "req-500"})
    assert r.status_code == 500 and r.json()["request_id"] == "req-500"
    assert len(request_log) == 1
    record = request_log[0]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "GET /models -> 500 internal in" in message and "key 'ops-marketer'" in message
    assert record.__dict__["request_id"] == "req-500"
    assert record.__dict__["route"] == "/models" and record.__dict__["status"] == 500
    text = TextFormatter().format(record)
    assert text.count("Traceback (most recent call last)") == 1
    assert "RuntimeError: versions unreadable" in text
    assert all("req-500" in line for line in text.splitlines())  # every line is its own


def test_an_error_before_any_answer_is_a_500_logged_once(
        request_log: list[logging.LogRecord]) -> None:
    """Raised outside the app's own error handler (BentoML's middleware, the front): answered
    here in the service's shape, not left to the server (a bare 500 and its own traceback)."""
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("front")

    r = TestClient(Observed(failing)).get("/v1/predict", headers={"X-Request-ID": "early-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "early-1"
    assert r.json()["request_id"] == "early-1" and r.json()["code"] == "internal"
    assert r.headers["x-content-type-options"] == "nosniff"
    [record] = request_log
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_client_errors_are_not_logged_refused_keys_are_once_a_minute(
        light: tuple[TestClient, dict[Role, str]], request_log: list[logging.LogRecord]) -> None:
    client, keys = light
    assert client.get("/no/such/route").status_code == 404
    assert client.post("/predict", json={"customer_id": []},
                       headers={"X-API-Key": keys[Role.predict]}).status_code == 422
    assert not request_log
    for _ in range(3):  # a scanner: one line
        assert client.get("/metrics", headers={"X-API-Key": "jk_wrong"}).status_code == 401
    assert client.get("/segments", headers={"X-API-Key": keys[Role.monitor]}).status_code == 403
    assert [(r.levelno, r.__dict__["status"], r.__dict__["code"]) for r in request_log] == [
        (logging.INFO, 401, "invalid_key"), (logging.INFO, 403, "forbidden")]
    refused = request_log[1].getMessage()
    assert "GET /segments -> 403 forbidden" in refused and "key 'ops-monitor'" in refused
    assert "from testclient" in refused  # the client's address
    assert all(keys[role] not in r.getMessage() for r in request_log for role in Role)


def test_a_slow_request_is_logged(tmp_path: Path, request_log: list[logging.LogRecord]) -> None:
    app, _ = light_app(tmp_path / "home", slow_request_seconds=0.05)
    client = TestClient(app)
    assert client.get("/sleep", params={"s": 0.01}).status_code == 200
    assert not request_log
    assert client.get("/sleep", params={"s": 0.1},
                      headers={"X-Request-ID": "slow-1"}).status_code == 200
    [record] = request_log
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("slow request: GET /sleep -> 200 in ")
    assert "JOURNEY_SLOW_REQUEST_SECONDS=0.05" in record.getMessage()
    assert record.__dict__["request_id"] == "slow-1" and record.__dict__["duration_ms"] >= 100


# -- 429 and 504 ---------------------------------------------------------------------------

def test_a_504_is_counted_and_logged_as_a_504(tmp_path: Path,
                                             request_log: list[logging.LogRecord]) -> None:
    api, _ = light_app(tmp_path / "home")
    client = TestClient(bentoml_like(api, timeout=0.2, limit=10))
    r = client.get("/v1/sleep", params={"s": 2}, headers={"X-Request-ID": "late-1"})
    assert r.status_code == 504 and r.headers["x-request-id"] == "late-1"
    assert r.json()["code"] == "timeout" and r.json()["request_id"] == "late-1"
    assert counted(state(api).metrics, "/sleep") == {"504": 1.0}  # not a 500
    [record] = request_log
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("request timed out: GET /sleep -> 504 timeout in ")
    assert record.__dict__["request_id"] == "late-1"


def test_a_429_is_counted_with_its_route_and_logged_once_a_minute(
        tmp_path: Path, request_log: list[logging.LogRecord]) -> None:
    api, _ = light_app(tmp_path / "home")
    front = bentoml_like(api, timeout=10, limit=1)

    async def crowd() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=front)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            held = asyncio.create_task(c.get("/v1/sleep", params={"s": 0.5}))
            await asyncio.sleep(0.1)
            refused = [await c.post("/v1/predict", json={}) for _ in range(2)]
            return [*refused, await held]

    first, second, held = asyncio.run(crowd())
    assert (first.status_code, second.status_code, held.status_code) == (429, 429, 200)
    assert first.json()["request_id"] == first.headers["x-request-id"]
    assert counted(state(api).metrics, "/predict", "POST") == {"429": 2.0}
    assert counted(state(api).metrics, "/sleep") == {"200": 1.0}
    [record] = request_log  # the second 429 within the minute: held back
    assert "POST /predict -> 429 too_many_requests" in record.getMessage()


def test_the_service_observes_outside_bentomls_middleware() -> None:
    from serving.service import Journey, app

    outer = Journey.to_asgi(is_main=True)  # type: ignore[attr-defined]
    first = outer.user_middleware[0]
    assert first.cls is Observed and first.kwargs == {"api": app, "prefix": "/v1"}
    kinds = [m.cls for m in outer.user_middleware]
    assert kinds.index(Observed) < kinds.index(InTaskTimeout) < kinds.index(LimitedConcurrency)


# -- latency buckets -------------------------------------------------------------------------

def test_latency_buckets_reach_the_request_timeout() -> None:
    from serving.service import Journey

    timeout = Journey.config["traffic"]["timeout"]  # type: ignore[attr-defined]
    assert max(LATENCY_BUCKETS) >= timeout
    assert {0.0005, 0.001, 0.002, 0.003, 0.005, 0.01} <= set(LATENCY_BUCKETS)  # predict's
    metrics = Metrics()
    metrics.request("/admin/score", "POST", 200, 26.0)
    text = metrics.render().decode()
    finite = [float(m[1]) for m in re.finditer(
        r'journey_request_seconds_bucket{le="([0-9.]+)",route="/admin/score"} 1.0', text)]
    assert finite and min(finite) <= 30.0  # a 26 s scoring run has a bucket, not only +Inf
