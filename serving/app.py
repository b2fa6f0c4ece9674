"""The FastAPI app (mounted at /v1 by the BentoML service; tests drive it directly).

``create_app`` builds it without loading anything; the lifespan opens the store and loads the
histories and models in the background, so /healthz answers at once and /readyz says 503 until
everything is in place."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from serving import (
    backtest_routes,
    drift_routes,
    marketing_routes,
    ops_routes,
    routes,
    trigger_routes,
)
from serving.build import BuildInfo, startup_lines
from serving.deps import documented_errors, without_default_422
from serving.docs_page import install_docs
from serving.draining import Drain, count_every_request
from serving.fast_predict import PATH, FastPredict
from serving.hardening import KeyGate, secure_every_answer
from serving.http import BodyLimit, error_json, install_error_handlers
from serving.observe import observe_every_answer
from serving.settings import ServeSettings
from serving.state import ServiceState

# The order the docs list them in (the hot routes are then moved to the front).
ROUTES = (routes.api, marketing_routes.api, trigger_routes.api, backtest_routes.api,
          drift_routes.api, ops_routes.api)
log = logging.getLogger("journey.serving")


def create_app(settings: ServeSettings | None = None, background: bool = True) -> FastAPI:
    settings = settings or ServeSettings()
    state = ServiceState(settings)
    drain = Drain(settings.stop_grace_seconds)
    info = BuildInfo.now()
    state.metrics.describe(info.version, info.commit, info.python, settings.as_of)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        before = sys.getswitchinterval()  # process-wide: restored when the app stops
        sys.setswitchinterval(settings.switch_interval_ms / 1000)
        # The configuration at INFO; a pinned clock, which nothing else shows, at WARNING.
        config, *notes = startup_lines(info, settings, state.keys.names(),
                                       len(state.triggers.rules))
        log.info("%s", config)
        for note in notes:
            log.warning("%s", note)
        # Before the state's: its stop handler sets the stop event, then hands the signal to
        # the drain's, which hands it to the server's once no new connection can come.
        drain.watch()
        state.start(background)
        try:
            yield
        finally:
            drain.report()  # the server has answered (or cut) what was in flight
            state.close()
            drain.restore()  # after the state's: its handler chains to this one
            sys.setswitchinterval(before)

    # No OpenTelemetry export: without this, a provider set up by the host (BentoML makes one)
    # would have FastAPI trace every request.
    app = FastAPI(title="Journey", version="1", lifespan=lifespan,
                  summary="Predictions, reason codes and event ingest for customer journeys.",
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  docs_url=None, redoc_url=None)  # served by install_docs, without a CDN
    app.state.journey = state
    app.state.build = info
    install_error_handlers(app)
    for table in ROUTES:
        table.install(app, documented_errors)
    install_docs(app)
    _documented(app)
    _hot_routes_first(app)
    _unmatched_last(app)
    # The last added runs first: the body limit, then the key gate (no body is read for a
    # request without a valid key), then /predict's fast path; around them all, the security
    # headers, and around those the request's id, metrics and log lines; outermost, the
    # count of requests in flight a stop waits for.
    predict = next(r for r in app.router.routes if isinstance(r, APIRoute) and r.path == PATH)
    app.add_middleware(FastPredict, state=state, route=predict)
    app.add_middleware(KeyGate, state=state, routes=list(app.router.routes))
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    secure_every_answer(app)
    observe_every_answer(app)
    count_every_request(app, drain.requests)
    return app


def _documented(app: FastAPI) -> None:
    """The schema FastAPI makes, less its default 422 (``without_default_422``)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_default_422(make())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


HOT_ROUTES = ("/predict", "/events", "/recommend", "/predict/batch")


def _hot_routes_first(app: FastAPI) -> None:
    """Routes match in order, and BentoML's mount matches the whole list once more before the
    app's router does: put the per-request routes ahead of the docs and dashboard ones
    (~25 us a prediction). No other route shares their paths, so no answer changes."""
    hot = [r for path in HOT_ROUTES for r in app.router.routes if getattr(r, "path", None) == path]
    app.router.routes[:] = hot + [r for r in app.router.routes if r not in hot]


def _unmatched_last(app: FastAPI) -> None:
    """A JSON 404 (or 405) for every path under the mount that no route serves. BentoML's
    mount only passes on paths one of the app's routes matches, and its own 404 is plain text;
    this route matches them all, after every other."""
    served = [r for r in app.router.routes if isinstance(r, Route)]  # docs pages too

    async def unmatched(request: Request) -> Response:
        prefix, path = request.scope.get("root_path", ""), request.scope["path"]
        path = path[len(prefix):] if prefix and path.startswith(prefix + "/") else path
        other = path[:-1] if path.endswith("/") else path + "/"
        if any(r.path_regex.match(other) for r in served):  # as Starlette's redirect_slashes
            return RedirectResponse(request.url.replace(path=prefix + other), 307)
        allowed = sorted({m for r in served if r.path_regex.match(path) for m in r.methods or ()})
        if allowed:
            return error_json(405, "method_not_allowed", f"{request.method} is not allowed "
                              f"here; use {', '.join(allowed)}", None,
                              {"Allow": ", ".join(allowed)})
        return error_json(404, "not_found",
                          f"no route {prefix}{path}; the routes are listed at {prefix}/docs")

    app.add_api_route("/{path:path}", unmatched, include_in_schema=False,
                      methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
