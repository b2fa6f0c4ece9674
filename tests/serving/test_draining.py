"""Draining at the stop (serving/draining.py), under uvicorn alone: a child serves a socket the
test also holds, as BentoML's supervisor does, so the socket outlives the child's servers.
Requests received before SIGTERM are answered, one only queued by the kernel included; new
connections are refused at once; past the grace period a request is cut with a 503."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import Message, Receive, Scope, Send

from serving.draining import (
    CountInFlight,
    InFlight,
    _turn_away_new,
    accept_queue,
    drained_line,
    stop_listening,
)

ROOT = Path(__file__).resolve().parents[2]
LINUX = sys.platform.startswith("linux")  # the accept queue's length, and shutdown's effect

# The served app: /block holds the event loop (a connection made meanwhile waits in the
# kernel's queue); any other path answers once its whole body has come.
CHILD = """
import logging, socket, sys, threading, time
import uvicorn
from serving.draining import Drain, count_every_request
from serving.stopping import StopSignals

logging.basicConfig(level=logging.INFO, format="%(message)s")
drain = Drain(float(sys.argv[2]))
stop = StopSignals(threading.Event())

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                drain.watch()  # in this order, as serving/app.py's lifespan
                stop.watch()
                await send({"type": "lifespan.startup.complete"})
            else:
                drain.report()
                stop.restore()
                drain.restore()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    if scope["path"] == "/block":
        time.sleep(float(body))
    body = b"got " + body
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})

class App:  # what count_every_request wraps: an app with a middleware stack
    def build_middleware_stack(self):
        return app

holder = App()
count_every_request(holder, drain.requests)
server = uvicorn.Server(uvicorn.Config(holder.build_middleware_stack(), log_config=None))
server.run(sockets=[socket.socket(fileno=int(sys.argv[1]))])
"""


class Child:
    def __init__(self, grace: float) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        fd = self.listener.fileno()
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(fd), str(grace)],
                                     pass_fds=[fd], env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        try:
            while self.ask("/", b"up") != "200 got up":
                assert time.monotonic() < deadline and self.proc.poll() is None, "no start"
                time.sleep(0.1)
        except BaseException:
            self.close()
            raise

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def send(self, path: str, body: bytes, length: int | None = None) -> socket.socket:
        s = self.connect()
        s.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %d"
                  b"\r\n\r\n%s"
                  % (path.encode(), len(body) if length is None else length, body))
        return s

    def ask(self, path: str, body: bytes) -> str:
        try:
            with self.send(path, body) as s:
                return answer(s)
        except OSError as exc:
            return type(exc).__name__

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self.listener.close()


def answer(s: socket.socket) -> str:
    """'STATUS BODY' of the response on ``s``, or the error that ended it."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except OSError as exc:
        return type(exc).__name__
    if not data:
        return "closed unanswered"
    head, _, body = data.partition(b"\r\n\r\n")
    return f"{head.split()[1].decode()} {body.decode()}"


def refused_within(child: Child, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            child.connect().close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def child(request: pytest.FixtureRequest) -> Iterator[Child]:
    c = Child(getattr(request, "param", 15.0))
    yield c
    c.close()


@pytest.mark.skipif(not LINUX, reason="Linux's accept queue and listener shutdown")
def test_requests_received_before_the_stop_are_answered(child: Child) -> None:
    slow = child.send("/", b"01234", length=10)  # in the app, its body still coming
    blocking = child.send("/block", b"0.8")  # the loop is held: the next one stays queued
    time.sleep(0.2)
    queued = child.send("/", b"queued")
    time.sleep(0.1)
    child.proc.send_signal(signal.SIGTERM)  # handled once the loop is free again
    assert refused_within(child, 5)  # new connections: refused, not left in the queue
    slow.sendall(b"56789")
    assert answer(slow) == "200 got 0123456789"
    assert answer(queued) == "200 got queued"
    assert answer(blocking) == "200 got 0.8"
    _, err = child.proc.communicate(timeout=30)
    assert "draining: 2 request(s) in flight" in err and "drained in " in err, err
    assert "every request was answered (2 in flight at the stop signal, 1 more" in err, err


@pytest.mark.skipif(not LINUX, reason="Linux's listener shutdown")
def test_an_idle_stop_is_prompt(child: Child) -> None:
    began = time.monotonic()
    err = child.stop()
    assert time.monotonic() - began < 3, err
    assert "drained in " in err and "0 request(s) in flight" in err


@pytest.mark.skipif(not LINUX, reason="Linux's listener shutdown")
@pytest.mark.parametrize("child", [0.5], indirect=True)
def test_a_request_past_the_grace_period_is_cut_with_a_503(child: Child) -> None:
    slow = child.send("/", b"01234", length=10)  # never finished
    time.sleep(0.1)
    child.proc.send_signal(signal.SIGTERM)
    status, _, body = answer(slow).partition(" ")
    assert status == "503" and json.loads(body)["code"] == "stopping", body
    _, err = child.proc.communicate(timeout=30)
    assert "stop grace period of 0.5s over" in err and "1 request(s) still in flight were " \
        "cut: POST / after" in err, err


@pytest.mark.skipif(not LINUX, reason="TCP_INFO reports the accept queue on Linux")
def test_accept_queue_counts_connections_not_yet_accepted() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        assert accept_queue(listener) == 0
        address = listener.getsockname()
        with socket.create_connection(address), socket.create_connection(address):
            time.sleep(0.05)
            assert accept_queue(listener) == 2
            listener.accept()[0].close()
            assert accept_queue(listener) == 1


@pytest.mark.skipif(not LINUX, reason="Linux's accept queue, socket filter and shutdown")
def test_stop_listening_takes_what_is_queued_and_turns_the_rest_away() -> None:
    """A connection queued when the drain begins (the loop has not polled the listener since)
    is accepted and answered; one tried meanwhile is not taken, nor reset: it is refused (on
    its SYN's retry, ~1 s on), as is the next one, though the socket is still held."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"got " + await reader.readline())
        await writer.drain()
        writer.close()

    def attempt(address: tuple[str, int]) -> str:
        began = time.monotonic()
        try:
            with socket.create_connection(address, timeout=5) as s:
                s.sendall(b"late\n")
                return s.recv(100).decode() or "closed"
        except OSError as exc:
            # Turned away during the drain: its SYN was dropped, its retry refused.
            return f"{type(exc).__name__}{' on retry' * (time.monotonic() - began > 0.5)}"

    async def scenario(held: socket.socket) -> tuple[int, bytes, str, str]:
        address = held.getsockname()
        server = await asyncio.start_server(echo, sock=socket.socket(fileno=os.dup(
            held.fileno())))
        queued = socket.create_connection(address)  # no await: it stays queued
        queued.sendall(b"queued\n")
        closing = asyncio.create_task(stop_listening([server], time.monotonic() + 2))
        await asyncio.sleep(0.01)  # new connections are turned away from here
        during = asyncio.create_task(asyncio.to_thread(attempt, address))
        left = await closing
        queued.settimeout(5)
        got = await asyncio.to_thread(queued.recv, 100)
        return left, got, await during, attempt(address)

    with socket.socket() as held:  # the supervisor's copy
        held.bind(("127.0.0.1", 0))
        held.listen(8)
        assert asyncio.run(scenario(held)) == (0, b"got queued\n",
                                               "ConnectionRefusedError on retry",
                                               "ConnectionRefusedError")


@pytest.mark.skipif(not LINUX, reason="Linux's socket filter")
def test_a_listener_turning_new_connections_away_still_gives_the_queued_ones() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = listener.getsockname()
        with socket.create_connection(address) as queued:
            queued.sendall(b"made before")
            assert _turn_away_new(listener)
            with pytest.raises(TimeoutError):  # its SYN is dropped
                socket.create_connection(address, timeout=0.3)
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.recv(100) == b"made before"


def test_the_drained_line() -> None:
    level, line = drained_line(15, 0.42, 3, 1, [])
    assert level == logging.INFO
    assert line == ("drained in 0.42s: every request was answered (3 in flight at the stop "
                    "signal, 1 more received on connections made before the listener closed)")
    cut = [f"POST /v1/predict/batch after {s}.0s" for s in (15, 14, 13, 12)]
    level, line = drained_line(15, 15.1, 4, 0, cut)
    assert level == logging.WARNING
    assert line.endswith("4 request(s) still in flight were cut: POST /v1/predict/batch after "
                         "15.0s; POST /v1/predict/batch after 14.0s; POST /v1/predict/batch "
                         "after 13.0s; 1 more")


def _call(requests: InFlight, cancel: bool) -> list[Message]:
    """What the middleware sends for an app that is cancelled (or not) before answering."""
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert len(requests) == 1
        if cancel:
            raise asyncio.CancelledError
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": []}
    asyncio.run(CountInFlight(app, requests)(scope, receive, send))
    return sent


def test_a_cancelled_request_is_a_503_only_once_stopping() -> None:
    requests = InFlight()
    assert _call(requests, cancel=False)[0]["status"] == 200
    with pytest.raises(asyncio.CancelledError):
        _call(requests, cancel=True)  # the request timeout's, say: not the drain's to answer
    assert requests.cut == [] and len(requests) == 0
    requests.stopping = "the service stopped"
    sent = _call(requests, cancel=True)
    assert sent[0]["status"] == 503 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {"code": "stopping", "message": "the service stopped",
                                           "field": None}
    assert len(requests) == 0 and len(requests.cut) == 1
    assert requests.cut[0].startswith("POST /v1/predict after ") and requests.received == 3
