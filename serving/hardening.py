"""What the service answers before and around its routes, as pure ASGI middleware (no task or
queue per request, as ``serving.http``'s):

- ``KeyGate``: a route that needs a key answers 401 (or 503 while the key file cannot be
  read) from the request's headers alone, before any of its body is received. FastAPI reads
  and parses a body before it resolves the route's dependencies, so without the gate anyone
  could make the service read and parse megabytes without a key. Roles stay the route's own
  check (``serving.deps.require``).
- ``SecurityHeaders``: on every answer of the app, headers that keep browsers from framing
  its pages, sniffing a JSON answer into a script, or caching customer data.

What stands before the app in the BentoML server is ``serving.front``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.deps import PRINCIPAL, authenticate, checks_key, key_in
from serving.errors import ServiceError
from serving.http import route_path, service_error_response
from serving.state import ServiceState

Headers = list[tuple[bytes, bytes]]


class KeyGate:
    """401 (or 503) for a keyed route's request without a valid key, from its headers."""

    def __init__(self, app: ASGIApp, state: ServiceState, routes: Sequence[object]) -> None:
        self.app, self.state = app, state
        keyed = [r for r in routes if isinstance(r, APIRoute) and checks_key(r.dependant)]
        # Exact paths: one dict look-up a request. Every keyed route has one today; a
        # templated path ({name}) is matched by its pattern.
        self._exact = {r.path: r for r in keyed if "{" not in r.path}
        self._templated = [r for r in keyed if "{" in r.path]

    def _route(self, scope: Scope) -> APIRoute | None:
        path = route_path(scope)
        route = self._exact.get(path)
        if route is None:
            route = next((r for r in self._templated if r.path_regex.match(path)), None)
        if route is None or scope["method"] not in (route.methods or ()):
            return None  # not keyed, or another method: the router's answer (405) as before
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        try:
            scope.setdefault("state", {})[PRINCIPAL] = authenticate(
                self.state, key_in(scope["headers"]))
        except ServiceError as exc:
            scope["route"] = route  # as the router would have: metrics label the route
            await service_error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


_ALWAYS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # browsers without CSP frame-ancestors
    (b"referrer-policy", b"no-referrer"),
]
# A page (the dashboard, the API docs) may not be framed: a framing page could overlay the
# dashboard's key form. The dashboard's own policy (scripts, styles, connections: this
# origin only) stays in its meta tag, where frame-ancestors would be ignored; both apply.
_PAGE_POLICY = (b"content-security-policy", b"frame-ancestors 'none'")
# Anything else (JSON, CSV, scripts, styles) opened as a document runs and loads nothing.
_DATA_POLICY = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_NO_STORE = (b"cache-control", b"no-store")
_DATA_TYPES = (b"application/json", b"text/csv", b"text/plain")


def secured(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """``headers`` with the security headers; data answers (JSON, CSV, metrics text) not
    stored by browsers or proxies unless the route said how to cache them."""
    out = list(headers)
    media, cached = b"", False
    for name, value in out:
        if name == b"content-type":
            media = value
        elif name == b"cache-control":
            cached = True
    out += _ALWAYS
    out.append(_PAGE_POLICY if media.startswith(b"text/html") else _DATA_POLICY)
    if not cached and media.startswith(_DATA_TYPES):
        out.append(_NO_STORE)
    return out


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secured(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, sending)


def secure_every_answer(app: FastAPI) -> None:
    """``SecurityHeaders`` around the app's whole stack, Starlette's error middleware
    included: middleware added with ``add_middleware`` runs inside it, so its 500s would
    go out without the headers."""
    build = app.build_middleware_stack

    def build_secured() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = build_secured  # type: ignore[method-assign]
