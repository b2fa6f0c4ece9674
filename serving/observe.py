"""Every request's id, count, time and, when it went wrong, log line: one pure ASGI middleware
(no task or queue per request), outside everything that may answer.

``Observed`` sits outermost in the BentoML server (``serving.front.install``), outside its
request timeout and concurrency limit, so their 504 and 429 are counted with their real
status and carry the request id like every other answer; the app has one too
(``serving.app``), which owns the request when the app runs alone (tests) and steps aside
when an outer one owns it. Per request it:

- takes the caller's ``X-Request-ID`` when sane, else makes one (``serving.request_ids``),
  and returns it in the ``X-Request-ID`` header of every answer (error bodies carry it as
  ``request_id``: ``serving.http.error_json``);
- counts and times it by route template in ``journey_requests_total`` and
  ``journey_request_seconds`` (not per raw path: ids would explode the label set);
- logs each 5xx once, in one record with one traceback (an exception the app raised on after
  its 500 ends here: the server does not log it again); a 503 (a state: not ready, store
  unavailable, key file unreadable, each logged when it begins) and a 429 at most once a
  minute per route and code; a refused key (401, 403) at INFO, at most once a minute per
  code, with the client's address; other 4xx not at all (a client's mistake, and volume);
  a request slower than ``JOURNEY_SLOW_REQUEST_SECONDS``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.deps import gate_principal
from serving.hardening import SecurityHeaders
from serving.http import error_json
from serving.log_throttle import Throttle
from serving.logs import brief_traceback
from serving.metrics import Metrics
from serving.request_ids import HEADER, REQUEST_ID, incoming

log = logging.getLogger("journey.requests")
OWNER = "journey.request_id"  # in the scope's state: the request's id, set by its owner
UNMATCHED = "/{path:path}"  # the app's catch-all route (serving.app): what the router names
READINESS = frozenset({"/readyz"})  # a 503 there is the answer asked for, not a failure
DEFAULT_SLOW_SECONDS = 5.0
HEAD_BYTES = 2048  # of an error's body, read for its code


@dataclass(frozen=True)
class _Line:
    """What a request's log line says."""

    method: str
    route: str
    status: int
    code: str | None
    seconds: float
    key: str | None
    client: str | None

    def text(self) -> str:
        code = f" {self.code}" if self.code else ""
        key = f", key {self.key!r}" if self.key else ""
        return (f"{self.method} {self.route} -> {self.status}{code} in "
                f"{self.seconds * 1000:.1f} ms{key}")

    def fields(self, rid: str) -> dict[str, Any]:
        return {"request_id": rid, "method": self.method, "route": self.route,
                "status": self.status, "code": self.code,
                "duration_ms": round(self.seconds * 1000, 1), "key": self.key,
                "client": self.client}


class Observed:
    """``api``: the service's app, whose metrics count the requests and whose routes name
    those it did not route itself (a 429); ``prefix``: where it is mounted (BentoML's /v1),
    whose requests are counted (the health probes outside it are not)."""

    def __init__(self, app: ASGIApp, api: FastAPI | None = None, prefix: str = "") -> None:
        self.app, self.api, self.prefix = app, api, prefix
        state = getattr(api.state, "journey", None) if api is not None else None
        self.metrics: Metrics | None = state.metrics if state is not None else None
        slow = state.settings.slow_request_seconds if state is not None else DEFAULT_SLOW_SECONDS
        self.slow = slow if slow > 0 else math.inf
        self._refusals, self._busy, self._unavailable = Throttle(), Throttle(), Throttle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if OWNER in state:  # an outer one counts, times and logs it
            await self.app(scope, receive, send)
            return
        rid = state[OWNER] = incoming(scope["headers"])
        header = (HEADER, rid.encode())
        token = REQUEST_ID.set(rid)
        path: str = scope["path"]  # as it came: a mount adds its prefix to root_path
        status, head = 0, b""  # head: the start of an error's body, for its code
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status, head
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            elif status >= 400 and not head:
                head = bytes(message.get("body", b""))[:HEAD_BYTES]
            await send(message)

        failure: Exception | None = None
        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # answered (a 500) and logged here, not raised to the server
            failure = exc
            if not status:
                await self._internal_error(scope, receive, sending, exc)
        try:
            self._after(scope, path, status, head, time.perf_counter() - started, failure, rid)
        finally:
            REQUEST_ID.reset(token)

    @staticmethod
    async def _internal_error(scope: Scope, receive: Receive, send: Send,
                              exc: Exception) -> None:
        """A 500 for an exception raised before any answer started (the app's own error
        handler answers those raised inside it)."""
        answer = error_json(500, "internal", f"internal error ({type(exc).__name__}); the "
                            f"service log has the details under request id {REQUEST_ID.get()}")
        with contextlib.suppress(Exception):  # the client is gone: the log line is what is left
            await SecurityHeaders(answer)(scope, receive, send)

    def _after(self, scope: Scope, path: str, status: int, head: bytes, seconds: float,
               failure: Exception | None, rid: str) -> None:
        status = status or 500
        mine = not self.prefix or path == self.prefix or path.startswith(self.prefix + "/")
        route = self._template(scope, path, mine)
        if mine and self.metrics is not None:
            self.metrics.request(route, scope["method"], status, seconds)
        if status < 400 and seconds < self.slow and failure is None:
            return  # the common case: nothing to log
        who = gate_principal(scope)
        client = scope.get("client")
        line = _Line(scope["method"], route, status, _code(head) if head else None,
                     seconds, who.name if who else None, client[0] if client else None)
        logged = False
        if (status >= 500 or failure is not None) and route not in READINESS:
            logged = self._failed(line, failure, rid)
        elif status in (401, 403):
            self._refused(line, rid)
        elif status == 429:
            self._crowded(line, rid)
        if seconds >= self.slow and not logged:
            log.warning("slow request: %s (over JOURNEY_SLOW_REQUEST_SECONDS=%g)", line.text(),
                        self.slow, extra=line.fields(rid))

    def _failed(self, line: _Line, failure: Exception | None, rid: str) -> bool:
        """Logs a 5xx; False when a 503 line was held back."""
        more = ""
        if line.status == 503:
            held = self._unavailable.allow(f"{line.route} {line.code}")
            if held is None:
                return False
            more = _held(held)
        what = {503: "unavailable", 504: "timed out"}.get(line.status, "failed")
        level = logging.WARNING if line.status in (503, 504) else logging.ERROR
        fields = line.fields(rid)
        exc_info = None
        if failure is not None:
            exc_info = (type(failure), failure, failure.__traceback__)
            fields["exc_brief"] = brief_traceback(failure)
        log.log(level, "request %s: %s%s", what, line.text(), more, exc_info=exc_info,
                extra=fields)
        return True

    def _refused(self, line: _Line, rid: str) -> None:
        held = self._refusals.allow(f"{line.status} {line.code}")
        if held is not None:
            log.info("key refused: %s from %s%s", line.text(), line.client or "unknown",
                     _held(held), extra=line.fields(rid))

    def _crowded(self, line: _Line, rid: str) -> None:
        held = self._busy.allow(line.route)
        if held is not None:
            log.warning("request refused, the service is at its concurrency limit: %s%s",
                        line.text(), _held(held), extra=line.fields(rid))

    def _template(self, scope: Scope, path: str, mine: bool) -> str:
        """The route template the request went to (or would have gone to)."""
        route = scope.get("route")
        if route is not None and not isinstance(route, Mount):
            found: str = route.path
            return found
        if not mine or self.api is None:
            return path
        return self._match(scope["method"], path[len(self.prefix):] or "/")

    def _match(self, method: str, path: str) -> str:
        """As the app's router would match it (only for a request it never saw: a 429)."""
        assert self.api is not None
        for route in self.api.router.routes:
            if (isinstance(route, Route) and route.path_regex.match(path)
                    and method in (route.methods or ())):
                return route.path
        return UNMATCHED


def _code(head: bytes) -> str | None:
    """The error code of a JSON error body (``{"code": ...}``), if it is one."""
    try:
        doc = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, str) else None


def _held(count: int) -> str:
    return f" ({count} more since the last such line)" if count else ""


def observe_every_answer(app: FastAPI) -> None:
    """``Observed`` around the app's whole stack, its error middleware and security headers
    included: what they answer is counted, and carries the request id."""
    build = app.build_middleware_stack

    def build_observed() -> ASGIApp:
        return Observed(build(), api=app)

    app.build_middleware_stack = build_observed  # type: ignore[method-assign]
