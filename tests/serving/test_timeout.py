"""BentoML's request timeout in the request's own task (serving/timeout.py): the same 504 when
no response has started in time, nothing cut once it has, and the service's app built with it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import anyio
import pytest
from bentoml._internal.server.http import traffic
from starlette.types import Message, Receive, Scope, Send

from serving.timeout import InTaskTimeout

HTTP: Scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": []}


async def _drive(app: Any, timeout: float, scope: Scope = HTTP) -> tuple[list[Message], float]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    started = time.perf_counter()
    await InTaskTimeout(app, timeout=timeout)(scope, receive, send)
    return sent, time.perf_counter() - started


async def _answer(send: Send, body: bytes, pause: float = 0.0) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(pause)
    await send({"type": "http.response.body", "body": body})


def _is_504(sent: list[Message], timeout: float) -> None:
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 504
    assert json.loads(sent[1]["body"]) == {  # the service's error shape, as ErrorOut
        "code": "timeout", "message": f"no answer within {timeout} seconds: the request was "
        "given up, but work it started may still finish (a scoring run goes on and publishes "
        "its snapshot, and asking again answers 409 while it runs; an ingest may be stored: "
        "resending it with the same event ids is safe)", "field": None}


def test_a_fast_answer_passes_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _answer(send, b"ok")

    sent, _ = asyncio.run(_drive(app, 5.0))
    assert [m.get("status", m.get("body")) for m in sent] == [200, b"ok"]


@pytest.mark.parametrize("where", ["event loop", "thread"])
def test_no_answer_in_time_is_a_504_and_the_handler_is_cancelled(where: str) -> None:
    cancelled = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if where == "thread":
                await anyio.to_thread.run_sync(time.sleep, 1.0, abandon_on_cancel=True)
            else:
                await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        await _answer(send, b"late")

    async def run() -> tuple[list[Message], float, int]:
        sent, took = await _drive(app, 0.1)
        task = asyncio.current_task()
        assert task is not None
        return sent, took, task.cancelling()

    sent, took, cancelling = asyncio.run(run())
    _is_504(sent, 0.1)
    assert cancelled == [True]
    assert took < 0.9
    assert cancelling == 0  # the timeout's cancellation does not leak into the server's task


def test_a_started_answer_is_not_cut() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _answer(send, b"streamed", pause=0.3)

    sent, took = asyncio.run(_drive(app, 0.1))
    assert [m.get("status", m.get("body")) for m in sent] == [200, b"streamed"]
    assert took >= 0.3


def test_the_handlers_own_timeout_error_is_not_a_504() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise TimeoutError("the store did not answer")

    with pytest.raises(TimeoutError, match="the store did not answer"):
        asyncio.run(_drive(app, 5.0))


def test_lifespan_is_not_timed() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.2)
        await send({"type": "lifespan.startup.complete"})

    sent, _ = asyncio.run(_drive(app, 0.05, {"type": "lifespan"}))
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_the_service_app_times_requests_out_in_their_own_task() -> None:
    from serving.service import Journey

    # bentoml.service turns the class into a Service; mypy keeps the class (and bentoml's
    # _bentoml_sdk, which defines Service, ships no type information).
    outer = Journey.to_asgi(is_main=True)  # type: ignore[attr-defined]
    kinds = [m.cls for m in outer.user_middleware]
    assert InTaskTimeout in kinds
    assert traffic.TimeoutMiddleware is InTaskTimeout
    assert not [k for k in kinds if k is not InTaskTimeout and k.__name__ == "TimeoutMiddleware"]
    timed = next(m for m in outer.user_middleware if m.cls is InTaskTimeout)
    assert timed.kwargs["timeout"] == 60  # traffic.timeout of the service's decorator
