"""Prometheus metrics of the service's background work: scoring runs, trigger firings and
webhook deliveries, and which functions are degraded. In the service's registry
(``Metrics.registry``, read by /v1/metrics); a command line that runs the same code
(``journey score``'s triggers) gives none and gets a private registry nobody reads.

Labels are bounded: outcomes and states are fixed lists here, rule names come from the
triggers file, functions from ``FUNCTIONS``; never a customer or firing id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A scoring run is seconds (a small book) to minutes (a million customers): buckets up to
# the ten minutes past which a run is worth an alert of its own.
SCORING_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0,
                   450.0, 600.0)
SCORING_OUTCOMES = ("success", "failed", "abandoned")
# Why a run meant for the score worker was scored in the service (serving/score_worker.py).
FALLBACK_REASONS = ("child_failed", "models_changed")
# delivered: a 2xx; retry: an attempt failed and another is scheduled; dead: the last
# attempt failed, or the endpoint is no longer configured (the dead letter).
DELIVERY_OUTCOMES = ("delivered", "retry", "dead")
# sent: claimed and queued for delivery; held: over the rule's max_per_minute, stored and
# never sent; cooled: the rule had fired for the customer within its cool-down (not stored).
FIRING_STATES = ("sent", "held", "cooled")
# What /v1/readyz lists in ``problems`` (serving/health.py).
FUNCTIONS = ("api_keys", "event_ingest", "event_store", "model_reload", "drift_monitoring")


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.runs = Counter("journey_scoring_runs", "Scoring runs (POST /v1/admin/score) by "
                            "outcome: success, failed, abandoned (the service stopped).",
                            ["outcome"], registry=r)
        for outcome in SCORING_OUTCOMES:
            self.runs.labels(outcome)
        self.duration = Histogram("journey_scoring_duration_seconds", "Seconds of each "
                                  "successful scoring run, from the start to the new "
                                  "snapshot's publication.", buckets=SCORING_BUCKETS,
                                  registry=r)
        self.last_success = Gauge("journey_scoring_last_success_timestamp_seconds",
                                  "Unix time the last successful scoring run ended (0: none "
                                  "since the service started).", registry=r)
        self.in_progress = Gauge("journey_scoring_in_progress", "1 while a scoring run is "
                                 "under way.", registry=r)
        self.fallbacks = Counter("journey_score_worker_fallbacks", "Scoring runs meant for "
                                 "the score worker's child process that were scored in the "
                                 "service: child_failed (it died or could not start), "
                                 "models_changed (the registry's champions are not the "
                                 "served ones).", ["reason"], registry=r)
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason)


class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.deliveries = Counter("journey_webhook_deliveries", "Webhook delivery attempts by "
                                  "rule and outcome: delivered, retry (failed, tried again "
                                  "later), dead (the last attempt failed).",
                                  ["rule", "outcome"], registry=r)
        self.firings = Counter("journey_trigger_firings", "Trigger firings by rule and "
                               "state: sent, held (over max_per_minute), cooled (within the "
                               "rule's cool-down for the customer: not stored).",
                               ["rule", "state"], registry=r)
        self.queue_depth = Gauge("journey_trigger_queue_depth", "Evaluations (ingests, "
                                 "scoring runs) waiting for the triggers' worker.", registry=r)
        self.dropped = Counter("journey_trigger_queue_dropped", "Evaluations dropped because "
                               "the triggers' queue was full (their firings are lost).",
                               registry=r)
        self.pending = Gauge("journey_webhook_deliveries_pending", "Webhook deliveries "
                             "waiting (retries included) or being sent.", registry=r)

    def rules(self, names: Sequence[str]) -> None:
        """Series at 0 for each rule, from the start: an alert on a rate then has a base."""
        for name in names:
            for state in FIRING_STATES:
                self.firings.labels(name, state)
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(name, outcome)

    def watch(self, depth: Callable[[], int], pending: Callable[[], int]) -> None:
        """Read the queue's depth and the deliveries pending at each scrape (no bookkeeping
        on the ingest path)."""
        self.queue_depth.set_function(lambda: float(depth()))
        self.pending.set_function(lambda: float(pending()))


class HealthMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.degraded = Gauge("journey_degraded", "1 while a function of the service is "
                              "degraded (GET /v1/readyz lists why in problems): api_keys, "
                              "event_ingest, event_store, model_reload, drift_monitoring.",
                              ["function"], registry=r)
        for function in FUNCTIONS:
            self.degraded.labels(function).set(0)

    def sync(self, degraded: Sequence[str]) -> None:
        for function in FUNCTIONS:
            self.degraded.labels(function).set(1 if function in degraded else 0)
