"""The BentoML service: the FastAPI app mounted at /v1 (`journey serve` runs it).

BentoML's own access log, metrics and tracing middleware are off: the app counts and times
every route itself (/v1/metrics, behind a key), and each costs latency on every request.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import bentoml

from serving import timeout
from serving.app import create_app
from serving.state import ServiceState

timeout.install()  # before BentoML builds the service's app


def _journey_log_to_stderr() -> None:
    """BentoML's logging config keeps only its own loggers' records, so the service's own
    (models loaded and reloaded, store errors, key-file reloads, trigger deliveries) never
    reached serve.log; they go to stderr, which `journey serve --detach` writes there."""
    journey = logging.getLogger("journey")
    if not journey.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        journey.addHandler(handler)
    journey.setLevel(logging.INFO)
    journey.propagate = False


_journey_log_to_stderr()

app = create_app()  # builds routes only; the lifespan loads histories and models


@bentoml.service(
    name="journey",
    workers=1,  # the embedded DuckDB store has one writer: this process
    traffic={"timeout": 60},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    # Traces are not exported (sample rate 0), yet the tracing middleware still builds a span
    # for every send: ~0.4 ms a request. Excluded URLs skip it entirely.
    tracing={"sample_rate": 0.0, "excluded_urls": ["/v1/", "/healthz", "/readyz", "/livez"]},
)
@bentoml.asgi_app(app, path="/v1")
class Journey:
    def __is_ready__(self) -> bool:
        state: ServiceState = app.state.journey
        return state.ready
