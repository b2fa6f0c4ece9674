"""POST /predict's fast path (serving/fast_predict.py): it answers well-formed requests itself,
hands everything else to FastAPI with the body intact, and every answer, good or bad, equals
the one FastAPI gives with the fast path off."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from features.online import Vectors
from features.store import EventStore
from serving.app import create_app
from serving.fast_predict import FastPredict
from serving.keys import Role
from serving.predictor import Scored
from serving.schemas import PredictOut
from serving.state import ServiceState
from tests.serving.conftest import Served
from tests.training.world import clean_env, one_thread


@pytest.fixture(scope="module")
def clients(served: Served, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps on copies of one store: fast path on, and off (FastAPI answers all)."""
    fast = create_app(served.settings(served.store_copy(tmp_path_factory.mktemp("a"))),
                      background=False)
    slow = create_app(served.settings(served.store_copy(tmp_path_factory.mktemp("b")),
                                      fast_predict=False), background=False)
    with clean_env(), one_thread(), TestClient(fast) as a, TestClient(slow) as b:
        yield a, b


def _ids(served: Served, n: int) -> list[str]:
    with EventStore(served.world.store, read_only=True) as store:
        return [r[0] for r in store.con.execute(
            "SELECT customer_id FROM customers ORDER BY customer_id LIMIT ?", [n]).fetchall()]


def _cases(served: Served) -> list[tuple[str, dict[str, str], bytes]]:
    cid = _ids(served, 4)[3]
    p, m = served.headers(Role.predict), served.headers(Role.marketer)
    a = served.headers(Role.admin)
    js = {"content-type": "application/json"}
    body = json.dumps({"customer_id": cid}).encode()
    inline = json.dumps({"customer_id": cid, "as_of": "2025-10-01T00:00:00Z", "events": [
        {"ts": "2025-09-01T00:00:00Z", "event_type": "page_view", "channel": "web"}]}).encode()
    big = json.dumps({"customer_id": cid, "pad": "x" * 2_000_001}).encode()  # the limit: 2 MB
    return [
        ("stored", {**p, **js}, body),
        ("admin key", {**a, **js}, body),
        ("as_of", {**p, **js}, json.dumps({"customer_id": cid,
                                           "as_of": "2025-10-01T00:00:00+02:00"}).encode()),
        ("inline", {**p, **js}, inline),
        ("charset", {**p, "content-type": "application/json; charset=utf-8"}, body),
        ("unknown customer", {**p, **js}, b'{"customer_id": "no-such"}'),
        ("no key", js, body),
        ("bad key", {"X-API-Key": "jrn_nope", **js}, body),
        ("marketer key", {**m, **js}, body),
        ("not json", {**p, **js}, b"{not json"),
        ("NaN", {**p, **js}, b'{"customer_id": NaN}'),
        ("extra field", {**p, **js}, b'{"customer_id": "a", "color": "red"}'),
        ("empty id", {**p, **js}, b'{"customer_id": ""}'),
        ("blank id", {**p, **js}, b'{"customer_id": " \\t "}'),
        ("NUL in id", {**p, **js}, b'{"customer_id": "a\\u0000b"}'),
        ("padded id", {**p, **js}, json.dumps({"customer_id": f" {cid}\n"}).encode()),
        ("no body", {**p, **js}, b""),
        ("text", {**p, "content-type": "text/plain"}, body),
        ("no type", p, body),
        ("form", {**p, "content-type": "application/x-www-form-urlencoded"}, body),
        ("gzip", {**p, **js, "content-encoding": "gzip"}, gzip.compress(body)),
        ("says gzip", {**p, **js, "content-encoding": "gzip"}, body),
        ("identity", {**p, **js, "content-encoding": "identity"}, body),
        ("before history", {**p, **js}, json.dumps({"customer_id": cid,
                                                   "as_of": "2000-01-01T00:00:00Z"}).encode()),
        ("future as_of", {**p, **js}, json.dumps({"customer_id": cid,
                                                 "as_of": "9999-12-31T00:00:00Z"}).encode()),
        ("too large", {**p, **js}, big),
        ("too large, no key", js, big),
        ("bad as_of", {**p, **js}, b'{"customer_id": "a", "as_of": "2025-10-01T00:00"}'),
        ("repeated key", {**p, **js}, f'{{"customer_id": "a", "customer_id": "{cid}"}}'.encode()),
        ("repeated in an event", {**p, **js}, inline.replace(b'"channel": "web"',
                                                             b'"channel": "web", "channel": "x"')),
    ]


def test_every_answer_equals_fastapis(clients: tuple[TestClient, TestClient],
                                      served: Served) -> None:
    fast, slow = clients
    for name, headers, body in _cases(served):
        headers = {**headers, "X-Request-ID": f"case-{len(name)}"}  # errors carry it
        a = fast.post("/predict", content=body, headers=headers)
        b = slow.post("/predict", content=body, headers=headers)
        assert (a.status_code, a.json()) == (b.status_code, b.json()), name
        assert a.headers.get("x-request-id") == b.headers.get("x-request-id"), name
        assert a.headers.get("content-type") == b.headers.get("content-type"), name
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate"), name
        if name == "stored":
            assert a.status_code == 200
            PredictOut.model_validate(a.json())


def test_a_query_string_is_fastapis_to_refuse(clients: tuple[TestClient, TestClient],
                                              served: Served) -> None:
    """A misplaced ?as_of= was answered as if absent by the fast path."""
    fast, slow = clients
    body = {"customer_id": _ids(served, 1)[0]}
    h = {**served.headers(Role.predict), "X-Request-ID": "misplaced-as-of"}
    a = fast.post("/predict?as_of=2025-06-01T00:00:00Z", json=body, headers=h)
    b = slow.post("/predict?as_of=2025-06-01T00:00:00Z", json=body, headers=h)
    assert (a.status_code, a.json()) == (b.status_code, b.json())
    assert a.status_code == 422 and a.json()["field"] == "as_of"
    assert "unknown query parameter 'as_of'" in a.json()["message"]


def test_a_padded_id_is_the_same_customer(clients: tuple[TestClient, TestClient],
                                          served: Served) -> None:
    fast, _ = clients
    cid, h = _ids(served, 1)[0], served.headers(Role.predict)
    a = fast.post("/predict", json={"customer_id": f" {cid}\t"}, headers=h)
    b = fast.post("/predict", json={"customer_id": cid}, headers=h)
    assert a.status_code == 200 and a.json()["customer_id"] == cid
    assert a.json()["churn"] == b.json()["churn"]


def test_metrics_count_the_route(clients: tuple[TestClient, TestClient], served: Served) -> None:
    fast, _ = clients
    cid = _ids(served, 2)[1]
    fast.post("/predict", json={"customer_id": cid}, headers=served.headers(Role.predict))
    text = fast.get("/metrics", headers=served.headers(Role.marketer)).text
    counted = [line for line in text.splitlines() if line.startswith("journey_requests_total")
               and 'route="/predict"' in line and 'status="200"' in line]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1, text[:2000]


async def _drive(middleware: FastPredict, headers: list[tuple[bytes, bytes]], chunks: list[bytes],
                 path: str = "/v1/predict", root_path: str = "/v1",
                 log: list[str] | None = None) -> list[Message]:
    scope: Scope = {"type": "http", "method": "POST", "path": path, "root_path": root_path,
                    "headers": headers}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if log is not None:
            log.append(message["type"])

    await middleware(scope, receive, send)
    return sent


def _state_and_route(client: TestClient) -> tuple[ServiceState, APIRoute]:
    """The service state of the client's app and its /predict route (what FastPredict takes)."""
    app = client.app
    assert isinstance(app, FastAPI)  # the app create_app built
    state: ServiceState = app.state.journey
    route = next(r for r in app.router.routes if getattr(r, "path", None) == "/predict")
    assert isinstance(route, APIRoute)
    return state, route


class _FastAPI:
    """Stands in for the app behind: records what reaches it, with the body it reads."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_well_formed_requests_never_reach_fastapi_and_the_rest_arrive_whole(
        clients: tuple[TestClient, TestClient], served: Served) -> None:
    fast, _ = clients
    state, route = _state_and_route(fast)
    behind = _FastAPI()
    middleware = FastPredict(behind, state, route)
    key = served.keys[Role.predict].encode()
    cid = _ids(served, 3)[2]
    body = json.dumps({"customer_id": cid}).encode()
    js = [(b"content-type", b"application/json"), (b"x-api-key", key)]

    def run(headers: list[tuple[bytes, bytes]], chunks: list[bytes], **kw: Any) -> list[Message]:
        return asyncio.run(_drive(middleware, headers, chunks, **kw))

    sent = run([*js, (b"content-length", str(len(body)).encode())], [body[:5], body[5:]])
    assert sent[0]["status"] == 200 and behind.bodies == []
    assert json.loads(sent[1]["body"])["customer_id"] == cid

    bad = b'{"customer_id": "x", "color": 1}'
    sent = run([*js, (b"content-length", str(len(bad)).encode())], [bad[:3], bad[3:]])
    assert sent[0]["status"] == 299 and behind.bodies == [bad]  # replayed whole
    sent = run(js, [body])  # no declared length (chunked): FastAPI reads it
    assert sent[0]["status"] == 299 and behind.bodies[-1] == body
    sent = run([*js, (b"content-length", b"9")], [body], path="/v1/predict/batch")
    assert sent[0]["status"] == 299 and behind.bodies[-1] == body
    left = run([*js, (b"content-length", b"99")], [])  # the client left before sending
    assert left == [] and len(behind.bodies) == 3


def test_a_bearer_key_takes_the_fast_path_and_x_api_key_wins(
        clients: tuple[TestClient, TestClient], served: Served) -> None:
    fast, _ = clients
    state, route = _state_and_route(fast)
    behind = _FastAPI()
    middleware = FastPredict(behind, state, route)
    cid = _ids(served, 3)[2]
    body = json.dumps({"customer_id": cid}).encode()
    typed = [(b"content-type", b"application/json"),
             (b"content-length", str(len(body)).encode())]
    predict = served.keys[Role.predict].encode()

    def run(headers: list[tuple[bytes, bytes]]) -> list[Message]:
        return asyncio.run(_drive(middleware, [*typed, *headers], [body]))

    sent = run([(b"authorization", b"Bearer " + predict)])
    assert sent[0]["status"] == 200 and behind.bodies == []
    assert json.loads(sent[1]["body"])["customer_id"] == cid
    # X-API-Key is read first, as the route's own check reads it: a bad one is FastAPI's to
    # refuse, whatever the Bearer token says.
    sent = run([(b"authorization", b"Bearer " + predict), (b"x-api-key", b"jrn_nope")])
    assert sent[0]["status"] == 299 and behind.bodies == [body]
    sent = run([(b"authorization", b"Basic " + predict)])
    assert sent[0]["status"] == 299 and len(behind.bodies) == 2


def test_the_answer_is_sent_before_its_bookkeeping(clients: tuple[TestClient, TestClient],
                                                   served: Served,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fast, _ = clients
    state, route = _state_and_route(fast)
    log: list[str] = []
    observe, record = state.metrics.observe, state.drift.window.record

    def logged_observe(scored: list[Scored]) -> None:
        log.append("metrics")
        observe(scored)

    def logged_record(vectors: Vectors, scored: Sequence[Scored]) -> None:
        log.append("drift")
        record(vectors, scored)

    monkeypatch.setattr(state.metrics, "observe", logged_observe)
    monkeypatch.setattr(state.drift.window, "record", logged_record)
    rows = len(state.drift.window.snapshot().frame())
    body = json.dumps({"customer_id": _ids(served, 3)[2]}).encode()
    sent = asyncio.run(_drive(FastPredict(_FastAPI(), state, route), [
        (b"content-type", b"application/json"), (b"x-api-key", served.keys[Role.predict].encode()),
        (b"content-length", str(len(body)).encode())], [body], log=log))
    assert sent[0]["status"] == 200
    assert log == ["http.response.start", "http.response.body", "metrics", "drift"]
    assert len(state.drift.window.snapshot().frame()) == rows + 1


def test_switched_off_fastapi_answers_all(served: Served, tmp_path: Path) -> None:
    app = create_app(served.settings(served.store_copy(tmp_path), fast_predict=False),
                     background=False)
    behind = _FastAPI()
    route = next(r for r in app.router.routes if getattr(r, "path", None) == "/predict")
    assert isinstance(route, APIRoute)
    middleware = FastPredict(behind, app.state.journey, route)
    body = b'{"customer_id": "a"}'
    sent = asyncio.run(_drive(middleware, [
        (b"content-type", b"application/json"), (b"x-api-key", served.keys[Role.admin].encode()),
        (b"content-length", str(len(body)).encode())], [body]))
    assert sent[0]["status"] == 299 and behind.bodies == [body]
