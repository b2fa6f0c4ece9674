"""Prometheus metrics of one service process, in its own registry (no global state, so test
apps do not collide): what runs (build info, a pinned clock), traffic and latency per route,
served model versions and load health, prediction distributions, ingest outcomes.

Other modules add their own metrics on ``Metrics.registry`` (as ``serving.drift.DriftGauges``
does), in their own module: create the collectors once, with this registry, where the state
that feeds them is built; /v1/metrics renders everything registered on it."""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from serving.champions import ModelHolder
from serving.predictor import TIERS, Scored
from serving.recommender import Recommended

# Fine below 10 ms (a single prediction's p99 is a few ms), then up to the 60 s request
# timeout (serving/service.py): scoring runs and batches of seconds have a bucket, not +Inf.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25,
                   0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20))
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the output and no dashboard reads them
# BentoML's workers set PROMETHEUS_MULTIPROC_DIR, so prometheus_client warns on every remove()
# (each model swap) that removal is not implemented for its multiprocess collector. The
# service's registry is read in-process (/v1/metrics), where remove() works: the warning is
# noise in serve.log (as clear()'s, serving/drift.py).
warnings.filterwarnings("ignore", message="Removal of labels has not been implemented",
                        category=UserWarning)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # The process's memory, CPU and file descriptors, and Python's collections (a full
        # collection is a latency tail): what an operator watches beside the routes.
        ProcessCollector(registry=r)
        GCCollector(registry=r)
        PlatformCollector(registry=r)
        self.build = Gauge("journey_build_info", "1, labelled with what runs.",
                           ["version", "commit", "python"], registry=r)
        self.pinned_clock = Gauge("journey_clock_pinned_timestamp_seconds",
                                  "The scoring clock pinned by JOURNEY_AS_OF (Unix time); "
                                  "0: requests are scored as of now.", registry=r)
        self.requests = Counter("journey_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("journey_request_seconds", "Request latency by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.model_version = Gauge("journey_model_version",
                                   "1 for each served model version.",
                                   ["target", "version"], registry=r)
        self.ready = Gauge("journey_ready", "1 when models and histories are loaded.",
                           registry=r)
        self.load_ok = Gauge("journey_model_last_load_ok",
                             "1 if the last model load attempt succeeded.", registry=r)
        self.load_failures = Counter("journey_model_load_failures",
                                     "Model load attempts that failed (last good kept).",
                                     registry=r)
        self.probability = Histogram("journey_prediction_probability",
                                     "Served probabilities (churn, conversion).", ["target"],
                                     buckets=PROBABILITY_BUCKETS, registry=r)
        self.next_stage = Counter("journey_predicted_next_stage",
                                  "Most probable next stage of served predictions.", ["stage"],
                                  registry=r)
        self.risk = Counter("journey_predicted_risk_tier", "Risk tier of served predictions.",
                            ["tier"], registry=r)
        for tier in TIERS:
            self.risk.labels(tier)
        self.events = Counter("journey_events", "Ingested events by outcome.", ["outcome"],
                              registry=r)
        self.recommended = Counter("journey_recommended_actions",
                                   "First-ranked action of served recommendations ('none': no "
                                   "action), and whether it was explored.",
                                   ["action", "explored"], registry=r)
        self.store_memory = Gauge("journey_store_memory_bytes",
                                  "The event store's (DuckDB's) memory by component; "
                                  "art_index: the customer-id index.",
                                  ["component"], registry=r)
        self._versions: dict[str, str] = {}
        self._failures_seen = 0
        # Children by their labels: ``labels()`` checks and converts its arguments under a
        # lock on every call (~3 us), six times a prediction. Label sets are bounded (route
        # templates, statuses, stages, tiers), so the dicts are too.
        self._routes: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._churn = self.probability.labels("churn")
        self._conversion = self.probability.labels("conversion")
        self._stages: dict[str, Any] = {}
        self._tiers = {tier: self.risk.labels(tier) for tier in TIERS}

    def describe(self, version: str, commit: str, python: str,
                 as_of: datetime | None) -> None:
        """What runs: set once, when the app is built."""
        self.build.labels(version, commit, python).set(1)
        if as_of is not None:
            self.pinned_clock.set(as_of.timestamp())

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request: counted by route template, method and status; timed."""
        key = (route, method, status)
        children = self._routes.get(key)
        if children is None:
            children = self._routes[key] = (self.requests.labels(route, method, str(status)),
                                            self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def observe(self, scored: list[Scored]) -> None:
        churn, conversion = self._churn, self._conversion
        stages: dict[str, int] = {}
        tiers: dict[str, int] = {}
        for s in scored:
            churn.observe(s.churn)
            conversion.observe(s.conversion)
            top = max(s.next_stage, key=s.next_stage.__getitem__)
            stages[top] = stages.get(top, 0) + 1
            tiers[s.risk_tier] = tiers.get(s.risk_tier, 0) + 1
        for stage, count in stages.items():
            child = self._stages.get(stage)
            if child is None:
                child = self._stages[stage] = self.next_stage.labels(stage)
            child.inc(count)
        for tier, count in tiers.items():
            (self._tiers.get(tier) or self.risk.labels(tier)).inc(count)

    def observe_recommendations(self, recommended: list[Recommended]) -> None:
        for r in recommended:
            d = r.decision
            first = d.actions[0].action if d.actions else "none"
            self.recommended.labels(first, "true" if d.explored else "false").inc()

    def sync_models(self, holder: ModelHolder, ready: bool) -> None:
        """Model gauges from the holder (called on every load attempt and scrape)."""
        versions = holder.current.versions() if holder.current else {}
        if versions != self._versions:
            for name, v in self._versions.items():
                self.model_version.remove(name, v)
            for name, v in versions.items():
                self.model_version.labels(name, v).set(1)
            self._versions = versions
        self.load_ok.set(0 if holder.last_error else 1)
        if holder.failures > self._failures_seen:
            self.load_failures.inc(holder.failures - self._failures_seen)
            self._failures_seen = holder.failures
        self.ready.set(1 if ready else 0)

    def sync_store(self, memory: dict[str, int]) -> None:
        for component, used in memory.items():
            self.store_memory.labels(component).set(used)

    def render(self) -> bytes:
        return generate_latest(self.registry)
