"""The FastAPI app (mounted at /v1 by the BentoML service; tests drive it directly).

``create_app`` builds it without loading anything; the lifespan opens the store and loads the
histories and models in the background, so /healthz answers at once and /readyz says 503 until
everything is in place."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from serving import backtest_routes, drift_routes, marketing_routes, routes, trigger_routes
from serving.deps import ERRORS
from serving.fast_predict import PATH, FastPredict
from serving.http import BodyLimit, RouteMetrics, install_error_handlers
from serving.settings import ServeSettings
from serving.state import ServiceState

# The order the docs list them in (the hot routes are then moved to the front).
ROUTES = (routes.api, marketing_routes.api, trigger_routes.api, backtest_routes.api,
          drift_routes.api)


def create_app(settings: ServeSettings | None = None, background: bool = True) -> FastAPI:
    settings = settings or ServeSettings()
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        before = sys.getswitchinterval()  # process-wide: restored when the app stops
        sys.setswitchinterval(settings.switch_interval_ms / 1000)
        state.start(background)
        try:
            yield
        finally:
            state.close()
            sys.setswitchinterval(before)

    # No OpenTelemetry export: without this, a provider set up by the host (BentoML makes one)
    # would have FastAPI trace every request.
    app = FastAPI(title="Journey", version="1", lifespan=lifespan,
                  summary="Predictions, reason codes and event ingest for customer journeys.",
                  responses=ERRORS,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.journey = state
    install_error_handlers(app)
    for table in ROUTES:
        table.install(app)
    _hot_routes_first(app)
    # The last added runs first: metrics, then the body limit, then /predict's fast path.
    predict = next(r for r in app.router.routes if isinstance(r, APIRoute) and r.path == PATH)
    app.add_middleware(FastPredict, state=state, route=predict)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RouteMetrics, metrics=state.metrics)
    return app


HOT_ROUTES = ("/predict", "/events", "/recommend", "/predict/batch")


def _hot_routes_first(app: FastAPI) -> None:
    """Routes match in order, and BentoML's mount matches the whole list once more before the
    app's router does: put the per-request routes ahead of the docs and dashboard ones
    (~25 us a prediction). No other route shares their paths, so no answer changes."""
    hot = [r for path in HOT_ROUTES for r in app.router.routes if getattr(r, "path", None) == path]
    app.router.routes[:] = hot + [r for r in app.router.routes if r not in hot]
