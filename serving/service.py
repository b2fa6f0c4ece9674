"""The BentoML service: the FastAPI app mounted at /v1 (`journey serve` runs it).

BentoML's own access log, metrics and tracing middleware are off: the app counts and times
every route itself (/v1/metrics, behind a key), and each costs latency on every request.
"""

from __future__ import annotations

import os

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import bentoml

from serving import timeout
from serving.app import create_app
from serving.state import ServiceState

timeout.install()  # before BentoML builds the service's app

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
