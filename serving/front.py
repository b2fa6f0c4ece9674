"""What the BentoML server answers before the service's app at /v1, as pure ASGI middleware:

- ``ServiceFront``: only /v1 and BentoML's health probes. BentoML's index page at / loads
  Google Tag Manager into the dashboard's origin (where the marketer's key lies in
  sessionStorage), and its /docs.json, /schema.json, /static_content and /assets tell its
  version and routes to anyone: all of them are a 404 in the service's error shape. Given the
  app, it hands /v1 requests to it itself, as BentoML's mount would.
- ``LimitedConcurrency``: BentoML's ``traffic.max_concurrency``, answered in the service's
  error shape (BentoML's own says ``{"error": ...}``) with the security headers. ``install``
  makes BentoML build its apps with it, as ``serving.timeout`` does its timeout.
- ``serving.observe.Observed``, outermost (outside BentoML's timeout and concurrency limit):
  the request id of every answer, and the count, time and log line of the 429s and 504s
  answered before or after the app's own middleware could see them.
"""

from __future__ import annotations

from typing import Any

from _bentoml_impl.server.app import ServiceAppFactory
from bentoml._internal.server.http import traffic
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.middleware import Middleware
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.hardening import SecurityHeaders
from serving.http import error_json
from serving.observe import Observed

API_PREFIX = "/v1"
PROBES = frozenset({"/healthz", "/readyz", "/livez"})  # BentoML's: orchestrators call them


class ServiceFront:
    """/v1 (the service's own app, which adds its headers) and the health probes pass; any
    other path is a 404.

    Given ``api`` (the app BentoML mounts at /v1), a request under /v1 goes straight to it,
    with the scope Starlette's mount makes (``root_path`` /v1). BentoML's way there (its
    request-context middleware, its router trying its own routes and then each of the
    app's, the mount) took ~15 % of a prediction's time in the server, and the app routes
    the request again anyway: its catch-all route means BentoML's mount never turned one
    away. Nothing of the service reads BentoML's request context."""

    def __init__(self, app: ASGIApp, api: FastAPI | None = None) -> None:
        self.app = app
        self._probes = SecurityHeaders(app)
        self._mount = Mount(API_PREFIX, app=api) if api is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: BentoML's
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(API_PREFIX + "/") or path == API_PREFIX:
            if self._mount is not None:
                # Mount's plain match (not BentoML's PassiveMount): /v1 itself does not
                # match and goes on to BentoML's router, which redirects it to /v1/.
                match, child = self._mount.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await self._mount.handle(scope, receive, send)
                    return
            await self.app(scope, receive, send)
        elif path in PROBES:
            await self._probes(scope, receive, send)
        else:
            answer = error_json(404, "not_found", f"no route {path}; the API is under "
                                f"{API_PREFIX} (its routes are listed at {API_PREFIX}/docs)")
            await SecurityHeaders(answer)(scope, receive, send)


class LimitedConcurrency(traffic.MaxConcurrencyMiddleware):
    """At most ``max_concurrency`` requests in the service at once (the health probes
    aside); more are refused at once with a 429, not queued without bound. A request
    counts while its body arrives, so the key gate's early 401 keeps keyless senders from
    holding places."""

    def __init__(self, app: ASGIApp, max_concurrency: int,
                 skip_paths: list[str] | None = None) -> None:
        super().__init__(app, max_concurrency, skip_paths)
        self.limit = max_concurrency
        # A count, not BentoML's semaphore: nothing waits for a place (one event loop, so
        # no lock either), and it costs a fraction of a semaphore's acquire and release.
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            answer = error_json(429, "too_many_requests", f"the service is answering its "
                                f"limit of {self.limit} requests at once; retry shortly",
                                headers={"Retry-After": "1"})
            await SecurityHeaders(answer)(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


_BENTOML_MIDDLEWARES: Any = ServiceAppFactory.middlewares  # a property: BentoML's own list
_TRACING: Any = OpenTelemetryMiddleware  # as Middleware.cls holds it (typed as a factory)


def install(api: FastAPI | None = None) -> None:
    """BentoML apps built from now on limit concurrency with ``LimitedConcurrency``, and,
    given the service's app mounted at /v1, observe every request with ``Observed`` before
    any of BentoML's middleware (the first listed is the outermost) and leave out BentoML's
    tracing middleware: the service samples no trace (``serving/service.py``), yet that
    middleware still works out each request's URL to find it excluded (~4 % of a
    prediction's time in the server)."""
    traffic.MaxConcurrencyMiddleware = LimitedConcurrency  # type: ignore[misc]
    if api is None:
        ServiceAppFactory.middlewares = _BENTOML_MIDDLEWARES
        return

    def middlewares(factory: ServiceAppFactory) -> list[Middleware]:
        own: list[Middleware] = _BENTOML_MIDDLEWARES.fget(factory)
        kept = [m for m in own if m.cls is not _TRACING]
        return [Middleware(Observed, api=api, prefix=API_PREFIX), *kept]

    ServiceAppFactory.middlewares = property(middlewares)
