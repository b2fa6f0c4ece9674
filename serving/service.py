"""The BentoML service: the FastAPI app mounted at /v1 (`journey serve` runs it).

BentoML's own access log, metrics and tracing middleware are off: the app counts and times
every route itself (/v1/metrics, behind a key), and each costs latency on every request.
"""

from __future__ import annotations

import os
from typing import cast

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
import bentoml

from serving import front, logs, timeout
from serving.app import create_app
from serving.orphan import stop_with_parent
from serving.settings import ServeSettings
from serving.state import ServiceState

timeout.install()  # before BentoML builds the service's app
# What the service writes (events, firings, scores, exports) is its user's alone, also when
# it is started as `bentoml serve` without `journey serve` (which sets the same).
os.umask(0o077)


settings = ServeSettings()
# BentoML's logging config keeps only its own loggers' records, so the service's own (models
# loaded and reloaded, store errors, key-file reloads, requests that failed) and MLflow's go
# to stderr, which `journey serve --detach` writes to serve.log, in one format.
logs.configure(settings.log_format)

MAX_CONCURRENCY = 100
app = create_app(settings)  # builds routes only; the lifespan loads histories and models
front.install(app)  # its request ids, counts and log lines outermost, around BentoML's own


@bentoml.service(
    name="journey",
    workers=1,  # the embedded DuckDB store has one writer: this process
    # Requests in the service at once, the health probes aside; more get a 429 at once. A
    # single worker answers ~1,500 predictions a second, so 100 waiting are ~0.07 s of work;
    # each may hold a body of up to JOURNEY_MAX_BODY_BYTES.
    traffic={"timeout": 60, "max_concurrency": MAX_CONCURRENCY},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    # No trace is sampled, and serving.front leaves BentoML's tracing middleware out (it
    # built a span for every send: ~0.4 ms a request; excluded URLs alone still cost).
    tracing={"sample_rate": 0.0, "excluded_urls": ["/v1/", "/healthz", "/readyz", "/livez"]},
)
@bentoml.asgi_app(app, path="/v1")
class Journey:
    def __init__(self) -> None:
        stop_with_parent()  # made in the worker only: not orphaned if its supervisor is killed

    def __is_ready__(self) -> bool:
        state: ServiceState = app.state.journey
        return state.ready


# Only /v1 and the health probes: BentoML's index page, its docs and static folders are 404;
# /v1 goes straight to the app. (The decorators' types lose the class's Service type.)
cast("bentoml.Service[Journey]", Journey).add_asgi_middleware(front.ServiceFront, api=app)
