"""What the BentoML server answers before the service's app (serving/front.py): only /v1 and
the health probes (BentoML's index page, docs and static folders are gone), and its
concurrency limit in the service's error shape."""

from __future__ import annotations

import json
from unittest.mock import ANY

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from serving.front import LimitedConcurrency, ServiceFront
from serving.observe import Observed
from serving.timeout import InTaskTimeout


@pytest.fixture(scope="module")
def bentoml_app() -> TestClient:
    """BentoML's app of the service, as `bentoml serve` builds it (no lifespan: nothing is
    loaded, which these routes do not need)."""
    from serving.service import Journey

    # bentoml.service turns the class into a Service; mypy keeps the class.
    return TestClient(Journey.to_asgi(is_main=True))  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/", "/docs.json", "/schema.json", "/static_content/index.css",
                                  "/assets/index.js", "/metrics", "/v2/predict", "/v1x"])
def test_bentoml_pages_are_gone(bentoml_app: TestClient, path: str) -> None:
    r = bentoml_app.get(path)
    assert r.status_code == 404 and r.json()["code"] == "not_found", r.text[:200]
    assert b"googletagmanager" not in r.content and b"bentoml" not in r.content.lower()
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_probes_and_the_api_stay(bentoml_app: TestClient) -> None:
    for probe in ("/healthz", "/livez"):
        r = bentoml_app.get(probe)
        assert r.status_code == 200, probe
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    r = bentoml_app.get("/v1/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["cache-control"] == "no-store"  # once: the app's own, not again
    assert r.headers.get_list("x-frame-options") == ["DENY"]
    app = bentoml_app.app
    kinds = {m.cls: m.kwargs for m in app.user_middleware}  # type: ignore[attr-defined]
    assert ServiceFront in kinds
    assert kinds[LimitedConcurrency]["max_concurrency"] == 100


# Paths and methods under /v1 and beside it: routes, a wrong method, a trailing slash, the
# mount's own path, an unknown path, an encoded dot segment, the docs and static files.
ASKED = [("GET", "/v1/nope"), ("GET", "/v1"), ("GET", "/v1/"), ("GET", "/v1/healthz"),
         ("GET", "/v1/docs"), ("GET", "/v1/docs/"), ("GET", "/v1/openapi.json"),
         ("GET", "/v1/predict"), ("GET", "/v1/predict/"), ("GET", "/v1//predict"),
         ("POST", "/v1/predict"), ("OPTIONS", "/v1/predict"), ("GET", "/v1/dashboard"),
         ("GET", "/v1/%2e%2e/healthz"), ("GET", "/healthz"), ("GET", "/v1x")]


def _answers(client: TestClient) -> list[tuple[int, str | None, bytes, list[tuple[str, str]]]]:
    out = []
    for method, path in ASKED:
        r = client.request(method, path, follow_redirects=False)
        body = r.content.split(b'"request_id"')[0]  # the id differs from request to request
        headers = sorted((k, v) for k, v in r.headers.items()
                         if k not in ("x-request-id", "date", "content-length"))
        out.append((r.status_code, r.headers.get("location"), body, headers))
    return out


def test_v1_goes_straight_to_the_app_with_the_mounts_answers(
        bentoml_app: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under /v1 nothing of BentoML's routing runs (its router would try the mount, which
    fails here), and every answer is the one BentoML's mount gives (the front built without
    the app: the way it went before)."""
    from _bentoml_impl.server.mount import PassiveMount

    from serving.service import Journey

    served = Journey.middlewares  # type: ignore[attr-defined]
    assert (ServiceFront, {"api": ANY}) in served
    direct = _answers(bentoml_app)
    monkeypatch.setattr(Journey, "middlewares", [
        (cls, {} if cls is ServiceFront else options) for cls, options in served])
    mounted = _answers(TestClient(Journey.to_asgi(is_main=True)))  # type: ignore[attr-defined]
    assert direct == mounted
    assert [a[0] for a in direct] == [404, 307, 404, 200, 200, 307, 200, 405, 307, 404, 401,
                                      405, 200, 404, 200, 404]

    def refuse(*_: object) -> None:
        raise AssertionError("BentoML's mount was asked")

    monkeypatch.setattr(PassiveMount, "matches", refuse)
    for path in ("/v1/healthz", "/v1/nope", "/v1/openapi.json"):
        assert bentoml_app.get(path).status_code in (200, 404), path


def test_bentomls_tracing_middleware_is_left_out(bentoml_app: TestClient) -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    kinds = [m.cls for m in bentoml_app.app.user_middleware]  # type: ignore[attr-defined]
    assert OpenTelemetryMiddleware not in kinds
    assert kinds[:2] == [Observed, InTaskTimeout]  # the rest of BentoML's stays, in order


async def _crowd(limit: int) -> list[tuple[int, dict[str, str], dict[str, object]]]:
    """``limit`` requests held inside the app, then one more and a health probe."""
    release = anyio.Event()
    inside = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal inside
        inside += 1
        if scope["path"] != "/healthz":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    limited = LimitedConcurrency(app, limit)
    answers: list[tuple[int, dict[str, str], dict[str, object]]] = []

    async def call(path: str) -> None:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "headers": []}
        await limited(scope, receive, send)
        headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        answers.append((sent[0]["status"], headers, json.loads(body)))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(limit):
                tg.start_soon(call, "/v1/predict")
            while inside < limit:
                await anyio.sleep(0.01)
            await call("/v1/predict")  # one too many: refused at once
            await call("/healthz")  # probes are never refused
            release.set()
        await call("/v1/predict")  # a place again
    return answers


def test_over_the_limit_is_a_429_in_the_service_error_shape() -> None:
    answers = anyio.run(_crowd, 3)
    status, headers, body = answers[0]
    assert status == 429 and body["code"] == "too_many_requests"
    assert "limit of 3 requests" in str(body["message"]) and headers["retry-after"] == "1"
    assert headers["x-content-type-options"] == "nosniff"
    assert [a[0] for a in answers[1:]] == [200, 200, 200, 200, 200]
