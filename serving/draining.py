"""Draining at the stop: the requests already received are answered, new connections refused.

`journey stop` sends SIGTERM to BentoML's supervisor (a circus arbiter), which passes it on
to the service's worker and then waits for the worker without a limit of its own. The worker
runs uvicorn on the supervisor's listening socket. Left to itself, uvicorn stops accepting at
its next tick and waits for the connections it has, but the supervisor keeps the socket
listening until it exits: connections the kernel had queued for accepting (their requests
already sent) and those made meanwhile were reset then, not answered nor refused (measured
with ten clients: 7 to 13 resets per stop, a third of the requests in flight among them).
``Drain`` chains a handler between the service's (``serving.stopping.StopSignals``) and
uvicorn's that, on the loop, before uvicorn's shutdown:

1. turns new connections away (a socket filter drops their SYN: the client tries again in
   about a second and is refused then), lets the loop accept those already made, queued by
   the kernel or still in their handshake (for up to a second);
2. closes uvicorn's servers and shuts the listening socket down, which ends listening for the
   supervisor's copy too: from here a new connection is refused at once;
3. gives uvicorn ``JOURNEY_STOP_GRACE_SECONDS`` (what is left of it) to finish the requests
   in flight, after which it cancels them (each is answered a 503), and only then passes the
   signal on: uvicorn closes the idle connections, waits, and runs the lifespan's shutdown.

The lifespan's shutdown (``report``) then logs whether every request was answered or how many
were cut. A repeated signal is passed on at once (uvicorn's: a second Ctrl-C forces the exit).
A server other than uvicorn is left alone: the signal goes on at once, as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from asyncio import AbstractServer
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.hardening import SecurityHeaders
from serving.http import error_json
from serving.stopping import STOP_SIGNALS

log = logging.getLogger("journey.serving")
# Polling the accept queue: its length is only readable, not awaitable.
QUEUE_POLL_SECONDS = 0.005
# How long the listener stays open, at most, for the queue to empty: the loop accepts every
# queued connection each time it polls the listener, so this bounds only a stalled loop.
QUEUE_WAIT_SECONDS = 1.0
# Once new connections are turned away, time for handshakes already answered to complete (a
# round trip: the client's last ACK) and join the queue, to be accepted too.
HANDSHAKE_SECONDS = 0.05
# A classic BPF socket filter for the listener that drops every segment with SYN and not ACK
# (the start of a new connection; the client tries again after ~1 s, and is refused then);
# the handshakes under way and the queued connections' data pass. Without it, a connection
# made between the last accept and the listener's shutdown was reset; with it none is
# (Linux: BPF sees the TCP header at offset 0; its flags are byte 13).
_NO_NEW_CONNECTIONS = (
    (0x30, 0, 0, 13),  # ldb [13]: the flags
    (0x54, 0, 0, 0x12),  # and #(SYN|ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN: drop, else accept
    (0x06, 0, 0, 0),  # ret #0: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: the whole segment
)
SO_ATTACH_FILTER = 26  # linux/asm-generic/socket.h; not in Python's socket module
# After the listener closes: time for connections accepted just before to deliver their first
# bytes, or uvicorn's shutdown would take them for idle keep-alive connections and close them.
SETTLE_SECONDS = 0.05
# struct tcp_info (linux/tcp.h): 8 one-byte fields, then u32 rto, ato, snd_mss, rcv_mss and
# unacked, at byte 24: for a listening socket the kernel reports its accept queue's length there.
TCP_INFO_UNACKED = struct.Struct("=24xI")
TCP_INFO_BYTES = 104


class InFlight:
    """The HTTP requests in the app now, with when each began (what was cut, for the log).
    Used on the event loop's thread only (the signal handler runs on it too): no lock."""

    def __init__(self) -> None:
        self._open: dict[int, tuple[float, str]] = {}
        self._ids = itertools.count()
        self.received = 0
        self.stopping: str | None = None  # once the stop came: what a cut request is told
        self.cut: list[str] = []  # requests cancelled since, in words

    def begin(self, what: str) -> int:
        key = next(self._ids)
        self._open[key] = (time.monotonic(), what)
        self.received += 1
        return key

    def end(self, key: int, cancelled: bool = False) -> None:
        began, what = self._open.pop(key, (0.0, ""))
        if cancelled and self.stopping is not None:
            self.cut.append(f"{what} after {time.monotonic() - began:.1f}s")

    def __len__(self) -> int:
        return len(self._open)

    def oldest(self, n: int = 3) -> list[str]:
        """The ``n`` longest-running, in words."""
        now = time.monotonic()
        return [f"{what} for {now - began:.1f}s" for began, what in sorted(self._open.values())[:n]]


class CountInFlight:
    """ASGI middleware: each HTTP request is in ``requests`` while the app has it. One the
    server cancels once the stop's grace period is over is answered a 503 (the server's own
    answer would be a plain-text 500), unless its answer had begun."""

    def __init__(self, app: ASGIApp, requests: InFlight) -> None:
        self.app = app
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = self.requests.begin(f"{scope['method']} {scope['path']}")
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        cancelled = False
        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            cancelled = True
            told = self.requests.stopping
            if started or told is None:
                raise
            answer = error_json(503, "stopping", told, headers={"Connection": "close"})
            await SecurityHeaders(answer)(scope, receive, send)
        finally:
            self.requests.end(key, cancelled)


def count_every_request(app: FastAPI, requests: InFlight) -> None:
    """``CountInFlight`` around the app's whole stack (what ``add_middleware`` adds runs
    inside its error middleware and the wrappers around it)."""
    build = app.build_middleware_stack

    def build_counted() -> ASGIApp:
        return CountInFlight(build(), requests)

    app.build_middleware_stack = build_counted  # type: ignore[method-assign]


def accept_queue(sock: socket.socket) -> int:
    """Connections the kernel holds for a listening socket, not yet accepted (0 where the
    platform does not tell: Linux does)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_BYTES)
    except (OSError, AttributeError):
        return 0
    if len(info) < TCP_INFO_UNACKED.size:
        return 0
    return int(TCP_INFO_UNACKED.unpack_from(info)[0])


def drained_line(grace: float, seconds: float, at_signal: int, since: int,
                 cut: list[str]) -> tuple[int, str]:
    """The log level and line once the requests in flight at the stop are over: all answered,
    or ``cut`` (those still running at the grace period's end, in words)."""
    if not cut:  # (those cancelled with their time, those still running for theirs)
        return logging.INFO, (f"drained in {seconds:.2f}s: every request was answered "
                              f"({at_signal} in flight at the stop signal, {since} more "
                              "received on connections made before the listener closed)")
    shown = "; ".join(cut[:3]) + (f"; {len(cut) - 3} more" if len(cut) > 3 else "")
    return logging.WARNING, (f"stop grace period of {grace:g}s over "
                             f"(JOURNEY_STOP_GRACE_SECONDS): {len(cut)} request(s) still in "
                             f"flight were cut: {shown}")


class Drain:
    """``watch()`` (in the lifespan, before ``StopSignals.watch``) puts itself between the
    service's stop handler and uvicorn's; ``report()`` (in the lifespan's shutdown) logs how
    the drain ended; ``restore()`` puts uvicorn's handler back."""

    def __init__(self, grace: float, requests: InFlight | None = None) -> None:
        self.grace = grace
        self.requests = requests or InFlight()
        self._before: dict[int, Callable[[int, FrameType | None], Any]] = {}
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._began: float | None = None
        self._at_signal = self._received = 0
        self._passed = False

    def watch(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._before:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for sig in STOP_SIGNALS:
            before = signal.getsignal(sig)
            owner = getattr(before, "__self__", None)  # uvicorn's handler: its Server's method
            if isinstance(owner, uvicorn.Server) and callable(before):
                self._server = owner
                self._before[sig] = before
                signal.signal(sig, self._handle)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, before in self._before.items():
            if signal.getsignal(sig) == self._handle:
                signal.signal(sig, before)
        self._before.clear()

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        if self._began is not None:  # a repeated signal: uvicorn's to act on, at once
            self._pass(sig, frame)
            return
        self._began = time.monotonic()
        self._at_signal, self._received = len(self.requests), self.requests.received
        self.requests.stopping = (f"the service stopped before this request was answered: "
                                  f"its stop grace period of {self.grace:g}s ended; retry it")
        log.info("draining: %d request(s) in flight; connections already made are served, "
                 "new ones refused; requests have %gs to finish (JOURNEY_STOP_GRACE_SECONDS)",
                 self._at_signal, self.grace)
        server, loop = self._server, self._loop
        if server is not None:  # uvicorn's own limit, should the drain below not get to it
            server.config.timeout_graceful_shutdown = self.grace  # type: ignore[assignment]
        if server is None or loop is None or loop.is_closed():
            self._pass(sig, frame)
            return
        loop.call_soon_threadsafe(self._start, server, sig, frame)

    def _start(self, server: uvicorn.Server, sig: int, frame: FrameType | None) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain(server, sig, frame))

    async def _drain(self, server: uvicorn.Server, sig: int, frame: FrameType | None) -> None:
        assert self._began is not None
        deadline = self._began + self.grace
        try:
            until = min(deadline, self._began + QUEUE_WAIT_SECONDS)
            queued = await stop_listening(getattr(server, "servers", []), until,
                                          lambda: self._passed)
            if queued:
                log.warning("%d connection(s) were still waiting to be accepted when the "
                            "listener closed (the event loop was held): reset unanswered", queued)
            await asyncio.sleep(SETTLE_SECONDS)
        except Exception:  # the stop must go on whatever failed here
            log.exception("closing the listener at the stop failed; stopping without it")
        finally:
            # Typed int, used as asyncio.wait_for's timeout: a float is what it takes.
            remaining = max(0.0, deadline - time.monotonic())
            server.config.timeout_graceful_shutdown = remaining  # type: ignore[assignment]
            if not self._passed:
                self._pass(sig, frame)

    def _pass(self, sig: int, frame: FrameType | None) -> None:
        self._passed = True
        before = self._before.get(sig) or next(iter(self._before.values()), None)
        if before is not None:
            before(sig, frame)

    def report(self) -> None:
        """The line saying how the drain ended (nothing when no stop signal came)."""
        if self._began is None:
            return
        cut = self.requests.cut + self.requests.oldest(len(self.requests))
        level, line = drained_line(self.grace, time.monotonic() - self._began, self._at_signal,
                                   self.requests.received - self._received, cut)
        log.log(level, "%s", line)


async def stop_listening(servers: Sequence[AbstractServer], until: float,
                         hurried: Callable[[], bool] = lambda: False) -> int:
    """Turn new connections away, let the loop accept those queued for ``servers`` (until the
    queue is seen empty, ``until`` at the latest, or ``hurried()``), then close the servers
    and stop their sockets listening; the connections left in the queue, reset by that (none
    unless ``until`` came first)."""
    listeners = _listeners(servers)
    try:
        # Without the filter (not Linux) the queue is emptied while new ones still come.
        turned_away = [_turn_away_new(s) for s in listeners]
        wait = HANDSHAKE_SECONDS if listeners and all(turned_away) else 0.0
        handshakes = time.monotonic() + wait
        while (time.monotonic() < until and not hurried()
               and (time.monotonic() < handshakes or any(accept_queue(s) for s in listeners))):
            await asyncio.sleep(QUEUE_POLL_SECONDS)
        # No await from here to the shutdown: the loop accepts nothing in between.
        left = sum(accept_queue(s) for s in listeners)
        for each in servers:
            each.close()
        for s in listeners:
            _stop_listening(s)
    finally:
        for s in listeners:
            s.close()  # a duplicate: the socket itself is the servers' and the supervisor's
    return left


def _listeners(servers: Sequence[AbstractServer]) -> list[socket.socket]:
    """Duplicates of the servers' listening TCP sockets (asyncio's or uvloop's)."""
    out = []
    for each in servers:
        for s in getattr(each, "sockets", None) or ():
            dup = socket.socket(fileno=os.dup(s.fileno()))
            if dup.type == socket.SOCK_STREAM and dup.family in (socket.AF_INET,
                                                                   socket.AF_INET6):
                out.append(dup)
            else:
                dup.close()
    return out


def _turn_away_new(sock: socket.socket) -> bool:
    """Attach ``_NO_NEW_CONNECTIONS`` to the listener (for every process holding it)."""
    if not sys.platform.startswith("linux"):
        return False
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op)
                                                for op in _NO_NEW_CONNECTIONS))
    program = struct.pack("HP", len(_NO_NEW_CONNECTIONS), ctypes.addressof(code))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)  # the kernel copies it
    except OSError as exc:
        log.debug("new connections cannot be turned away before the listener closes: %s", exc)
        return False
    return True


def _stop_listening(sock: socket.socket) -> None:
    """Stop the socket listening for every process holding it (the supervisor too): a new
    connection is refused at once instead of waiting in a queue nobody accepts from, to be
    reset when the supervisor exits (Linux; elsewhere that remains)."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError as exc:
        log.debug("the listening socket could not be shut down: %s", exc)
