"""Signed webhooks for trigger firings, sent off the request path with retries.

Each attempt POSTs the firing's JSON body unchanged with

- ``X-Journey-Timestamp``: Unix seconds when the attempt was signed;
- ``X-Journey-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<raw body>`` under
  the endpoint's secret (the timestamp is inside the signed bytes, so a captured request
  cannot be replayed later with a fresh timestamp; receivers refuse old ones);
- ``X-Journey-Firing`` (the firing id: retries resend the same firing, receivers dedupe on it)
  and ``X-Journey-Attempt``.

A 2xx answer delivers; anything else (another status, a timeout, a refused connection) is
retried after the policy's delay, doubled each time, until the last attempt, which leaves a
dead letter (the delivery's row, status ``dead``, with the last error). Pending deliveries are
rows too, so a restart resumes them.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import httpx

from serving.firings import FiringStore, Pending
from serving.log_throttle import Throttle, more
from serving.ops_metrics import TriggerMetrics
from serving.trigger_config import DeliveryPolicy, Endpoint

log = logging.getLogger("journey.triggers")

SIGNATURE = "X-Journey-Signature"
TIMESTAMP = "X-Journey-Timestamp"
FIRING = "X-Journey-Firing"
ATTEMPT = "X-Journey-Attempt"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, body: bytes, timestamp: str, signature: str,
           tolerance_seconds: float = 300.0, now: float | None = None) -> bool:
    """What a receiver checks: the signature matches the raw body and timestamp, and the
    timestamp is recent (a replayed request is refused). Constant-time comparison."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@dataclass(order=True)
class _Job:
    due: float  # monotonic clock
    seq: int
    firing_id: str = field(compare=False)
    endpoint: str = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(compare=False)  # the number of the attempt to make (1-based)
    rule: str = field(compare=False, default="")  # a metric label only


class Sender:
    """Delivery threads over a queue ordered by due time: a retry waits in the queue, not in
    a thread, so a dead receiver does not hold up the others."""

    def __init__(self, store: FiringStore, endpoints: Mapping[str, Endpoint],
                 policy: DeliveryPolicy, client: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 metrics: TriggerMetrics | None = None) -> None:
        self.store = store
        self.endpoints = endpoints
        self.policy = policy
        self.client = client or httpx.Client(follow_redirects=False)
        self._clock = clock
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._inflight = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.metrics = metrics or TriggerMetrics()
        # Retries and dead letters: a line per endpoint and kind a minute, with the count.
        self.throttle = Throttle()

    def start(self) -> None:
        for i in range(self.policy.senders):
            t = threading.Thread(target=self._run, name=f"journey-webhooks-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def submit(self, pending: Iterable[Pending]) -> None:
        now = self._clock()
        with self._cond:
            for p in pending:
                heapq.heappush(self._heap, _Job(now, next(self._seq), p.firing_id, p.endpoint,
                                                p.body, p.attempts + 1, p.rule))
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        """Deliveries waiting or being sent."""
        with self._cond:
            return len(self._heap) + self._inflight

    def wait(self, timeout: float, due_only: bool = False) -> bool:
        """Wait until nothing is left to send (``due_only``: nothing due before the deadline);
        whether that happened within ``timeout`` seconds."""
        deadline = self._clock() + timeout
        with self._cond:
            while self._inflight or (self._heap and (
                    not due_only or self._heap[0].due <= deadline)):
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def close(self, join_seconds: float = 1.0) -> int:
        """Stop sending; what is still queued stays pending in the store for the next start.
        The deliveries left so (queued, or still being sent once ``join_seconds`` passed)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(join_seconds)
        self.client.close()
        self.flush_logs(force=True)
        with self._cond:
            return len(self._heap) + self._inflight

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                now = self._clock()
                if self._heap and self._heap[0].due <= now:
                    self._inflight += 1
                    return heapq.heappop(self._heap)
                self._cond.wait(self._heap[0].due - now if self._heap else None)
            return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._deliver(job)
            except Exception:  # a store or client failure must not kill the sender thread
                log.exception("webhook delivery of firing %s failed", job.firing_id)
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._cond.notify_all()

    def _deliver(self, job: _Job) -> None:
        now = datetime.now(UTC)
        endpoint = self.endpoints.get(job.endpoint)
        if endpoint is None or endpoint.secret is None:  # removed from the rules since
            self._dead(job, job.attempt - 1, "the endpoint is no longer configured")
            self.store.record(job.firing_id, job.endpoint, "dead", job.attempt - 1, None,
                              "the endpoint is no longer configured", None, _iso(now))
            return
        code, error = self._post(endpoint, job)
        if error is None:
            self.metrics.deliveries.labels(job.rule, "delivered").inc()
            self.store.record(job.firing_id, job.endpoint, "delivered", job.attempt, code, None,
                              None, _iso(now))
        elif job.attempt >= self.policy.attempts:
            self._dead(job, job.attempt, error)
            self.store.record(job.firing_id, job.endpoint, "dead", job.attempt, code, error,
                              None, _iso(now))
        else:
            delay = self.policy.delay(job.attempt)
            self._retrying(job, error, delay)
            self.store.record(job.firing_id, job.endpoint, "retrying", job.attempt, code, error,
                              _iso(now + timedelta(seconds=delay)), _iso(now))
            with self._cond:
                heapq.heappush(self._heap, _Job(self._clock() + delay, next(self._seq),
                                                job.firing_id, job.endpoint, job.body,
                                                job.attempt + 1, job.rule))
                self._cond.notify_all()

    def _retrying(self, job: _Job, error: str, delay: float) -> None:
        """Counted always; logged at most once a minute per endpoint (the firing named is
        the first of the minute's; ``GET /v1/triggers/firings?status=retrying`` has all)."""
        self.metrics.deliveries.labels(job.rule, "retry").inc()
        held = self.throttle.allow(f"retry:{job.endpoint}")
        if held is not None:
            log.info("firing %s to %s: attempt %d of %d failed (%s); trying again in %gs%s",
                     job.firing_id, job.endpoint, job.attempt, self.policy.attempts, error,
                     delay, more(held, "failed attempts"))

    def _dead(self, job: _Job, attempts: int, error: str) -> None:
        """Counted always; logged at most once a minute per endpoint, with how many died
        since the last line (``GET /v1/triggers/firings?status=dead`` lists them)."""
        self.metrics.deliveries.labels(job.rule, "dead").inc()
        held = self.throttle.allow(f"dead:{job.endpoint}")
        if held is not None:
            log.warning("firing %s to %s dead after %d attempts: %s%s", job.firing_id,
                        job.endpoint, attempts, error, more(held, "dead"))

    def flush_logs(self, force: bool = False) -> None:
        """Say the retries and dead letters held back once their minute is over (``force``:
        now, at shutdown), so each is counted in some line even when no later one comes."""
        for key, n in sorted(self.throttle.due(force).items()):
            kind, endpoint = key.split(":", 1)
            if kind == "dead":
                log.warning("%d more firing(s) to %s dead since the last such line "
                            "(GET /v1/triggers/firings?status=dead lists them)", n, endpoint)
            else:
                log.info("%d more failed attempt(s) to %s since the last such line, each "
                         "retried later", n, endpoint)

    def _post(self, endpoint: Endpoint, job: _Job) -> tuple[int | None, str | None]:
        """(HTTP status, None) when delivered; (status or None, what went wrong) otherwise."""
        assert endpoint.secret is not None
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "journey-webhooks/1",
                   TIMESTAMP: str(ts), SIGNATURE: sign(endpoint.secret, ts, job.body),
                   FIRING: job.firing_id, ATTEMPT: str(job.attempt)}
        try:
            r = self.client.post(endpoint.url, content=job.body, headers=headers,
                                 timeout=endpoint.timeout_seconds)
        except httpx.HTTPError as exc:
            return None, transport_error(exc, endpoint.timeout_seconds)
        if 200 <= r.status_code < 300:
            return r.status_code, None
        return r.status_code, http_error(r.status_code)


def http_error(status: int) -> str:
    """A refusal in words: the status and its standard reason phrase. Not the receiver's
    body nor its own reason phrase: either may hold anything (a stack trace, a password),
    and the error is stored, listed by the firings API and the dashboard, and logged."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:  # a status with no standard phrase
        return f"HTTP {status}"


def transport_error(exc: httpx.HTTPError, timeout: float) -> str:
    """No answer, in words of ours: a protocol error's text quotes what the receiver sent."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"{name}: no answer within {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"{name}: could not connect"
    return f"{name}: the exchange with the receiver failed"
