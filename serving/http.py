"""ASGI plumbing: body size limit as pure ASGI middleware (Starlette's BaseHTTPMiddleware
costs a task and a queue per request), errors as JSON ``{code, message, field, request_id}``.
Requests are counted, timed and logged by ``serving.observe``."""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.yaml_config import message
from serving.errors import ServiceError, TooLargeError
from serving.event_checks import schema_passed_problems
from serving.json_keys import TOO_DEEP, long_integer_at
from serving.request_ids import current as current_request_id
from serving.schemas import Event, HistoryEvent

if TYPE_CHECKING:
    from serving.state import ServiceState


class BodyLimit:
    """Refuses bodies over ``limit`` bytes: by Content-Length before reading any of it, and
    while reading when the length is not declared (chunked). The refusal is raised where the
    route reads its body, not answered here: the route is matched by then (metrics label it)
    and its key checked first (``install_error_handlers``), so a caller without a valid key
    hears that, not the size of a body it may not send."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused: str | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    refused = self._message(declared)
        seen = 0

        async def limited() -> Message:
            nonlocal seen, refused
            if refused is not None:  # again on every read: a reader handed on meets it too
                raise TooLargeError(refused)
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                refused = self._message(seen)
                raise TooLargeError(refused)
            return message

        await self.app(scope, limited, send)

    def _message(self, size: int) -> str:
        what = "an invalid Content-Length" if size < 0 else f"{size:,} bytes"
        return f"request body has {what}; the limit is {self.limit:,} bytes"


class FastJSON(JSONResponse):
    """JSON by orjson: a batch of 1000 predictions with reasons is ~2 MB, 60 ms with the
    standard library and 6 ms this way (same numbers: shortest round-trip floats)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_json(status: int, code: str, message: str, field: str | None = None,
               headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The service's error answer; ``request_id`` (also the X-Request-ID header) names the
    request in the service log."""
    content = {"code": code, "message": message, "field": field, **extra}
    rid = current_request_id()
    if rid is not None:
        content["request_id"] = rid
    return JSONResponse(content, status_code=status, headers=headers)


def _field(loc: tuple[int | str, ...]) -> str:
    """('body', 'events', 3, 'ts') -> 'events[3].ts'."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def service_error_response(exc: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "ApiKey"} if exc.status == 401 else None
    extra = {} if exc.errors is None else {"errors": exc.errors}
    return error_json(exc.status, exc.code, exc.message, exc.field, headers, **extra)


def install_error_handlers(app: FastAPI) -> None:
    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return service_error_response(exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # FastAPI reads the body before it resolves the route's key check: a caller without a
        # valid key learns that first, not what is wrong with a body it may not send.
        refused = await key_refusal(request)
        if refused is not None:
            return service_error_response(refused)
        body = await request.body()
        errors = [{"field": "body", "message": _json_error(e, body)} if e["type"] == "json_invalid"
                  else {"field": _field(tuple(e["loc"])), "message": message(e)}
                  for e in exc.errors()]
        errors = _in_request_order(errors + _service_problems(request, body))
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return error_json(422, "bad_request", f"{first['field']}: {first['message']}",
                          first["field"], errors=errors)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Starlette raises the exception on after this answer: serving.observe logs it once,
        # with the request's id, route and key name, and does not raise it to the server.
        rid = current_request_id()
        where = f" under request id {rid}" if rid else ""
        return error_json(500, "internal", f"internal error ({type(exc).__name__}); the "
                          f"service log has the details{where}")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.__cause__, ServiceError) or exc.status_code == 400:
            # Raised while FastAPI read the body (BodyLimit's 413, a body it cannot decode):
            # before the route's key check, which must speak first.
            refused = await key_refusal(request)
            if refused is not None:
                return service_error_response(refused)
        if isinstance(exc.__cause__, ServiceError):
            return service_error_response(exc.__cause__)
        if exc.status_code == 400:
            # FastAPI's answer to a body its parser failed on other than by syntax (not UTF-8,
            # too deep, a huge integer), where invalid JSON gets a 422: one status and code for
            # every bad payload, as the API promises.
            problem = _unparsable(exc.__cause__, await request.body())
            return error_json(422, "bad_request", f"body: {problem}", "body",
                              errors=[{"field": "body", "message": problem}])
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_json(exc.status_code, code, str(exc.detail), None,
                          dict(exc.headers) if exc.headers else None)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def route_path(scope: Scope) -> str:
    """The path within this app: mounted (BentoML's /v1), the scope's path keeps the prefix
    and its root_path names it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _service_problems(request: Request, body: bytes) -> list[dict[str, str]]:
    """The service's own checks (``event_checks``) of the events of an /events or inline-history
    /predict body that the schema accepted, when it refused others."""
    state: ServiceState | None = getattr(request.app.state, "journey", None)
    path = route_path(request.scope)
    if state is None or path not in ("/events", "/predict"):
        return []
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return []
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list) or len(events) > state.settings.max_events:
        return []  # the route refuses the request whole
    if path == "/events":
        return schema_passed_problems(events, Event, state.spec.taxonomy,
                                      state.latest_event_time())
    return schema_passed_problems(events, HistoryEvent, state.spec.taxonomy, None)


_ITEM = re.compile(r"[A-Za-z_]+\[(\d+)\]")


def _in_request_order(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """Errors of list items (``events[3].ts``) by item, the others (``customer_id``) first."""
    def item(error: dict[str, str]) -> int:
        # Only a top-level list's index: a key the client chose (``attributes.a[=b``) may hold
        # brackets of its own.
        found = _ITEM.match(error["field"])
        return int(found.group(1)) if found else -1
    return sorted(errors, key=item)


def _json_error(error: Any, body: bytes) -> str:
    """'JSON decode error' with the parser's reason and where: line, column and offset."""
    loc, reason = error.get("loc", ()), (error.get("ctx") or {}).get("error")
    offset = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    text = "not valid JSON" + (f": {reason}" if reason else "")
    # The parser's offset counts characters of the decoded text (it decoded, to get there).
    return text if offset is None else text + _at(body.decode("utf-8", "replace")[:offset])


def _at(before: str) -> str:
    """Where the text that follows ``before`` starts."""
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f" at line {line}, column {column} (character {len(before)})"


def _unparsable(cause: BaseException | None, body: bytes) -> str:
    """Why the standard library's parser failed on ``body`` (``cause``, its exception) other
    than by a syntax error, and where when that is known."""
    if isinstance(cause, RecursionError):
        return TOO_DEEP
    if isinstance(cause, UnicodeDecodeError):
        return "not valid UTF-8 JSON" + _at(body[:cause.start].decode("utf-8", "replace"))
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        # Python's guard against quadratic-time conversion (CVE-2020-10735); the parser does
        # not say where, so the text is scanned for it as the parser reads it (strings
        # skipped), decoded as the parser decodes bytes. Only here, on the error path.
        limit = sys.get_int_max_str_digits()
        text = body.decode(json.detect_encoding(body), "replace")
        found = long_integer_at(text, limit)
        return (f"a number with more than {limit:,} digits, more than the service reads"
                + ("" if found is None else _at(text[:found])))
    return "not valid UTF-8 JSON"


KEY_CHECK = "journey_key_check"  # marks the dependency that checks a route's API key


async def key_refusal(request: Request) -> ServiceError | None:
    """The error the route's key check would raise for this request, if any (with the checks
    of its query and body headers that follow it: ``serving.deps.require``)."""
    route = request.scope.get("route")
    for dep in getattr(getattr(route, "dependant", None), "dependencies", ()):
        if getattr(dep.call, KEY_CHECK, False):
            try:
                await dep.call(request, request.headers.get("x-api-key"))
            except ServiceError as exc:
                return exc
    return None
