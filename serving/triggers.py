"""Behavioural triggers in the service: rules evaluated as events arrive and on each scoring
run, firings claimed at most once per customer per rule per cool-down, and signed webhooks.

The ingest path only captures: under the service's write lock it keeps each touched customer's
history before and after the new events (references to immutable arrays, a few microseconds
each) and queues them without waiting. A worker thread computes the states, judges the rules
and claims the firings; sender threads deliver them. An acknowledged ingest never waits for
a rule or a receiver; when the queue is full the evaluation is dropped, counted and logged.
Between evaluations the worker also prunes old firings (the rules file's ``retention``), hourly.
"""

from __future__ import annotations

import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from features.batch import micros
from features.events import EventArrays
from features.history import HistoryIndex
from features.spec import FeatureSpec
from models.actions import Catalog
from serving.champions import ModelSet
from serving.firings import FiringStore, NewFiring, Pending, wall_clock
from serving.firings_retention import Pruned, Pruner
from serving.log_throttle import LOG_EVERY_SECONDS, Throttle
from serving.ops_metrics import TriggerMetrics
from serving.predictor import Predictor
from serving.settings import ServeSettings
from serving.snapshots import Snapshot, previous_of
from serving.trigger_config import INGEST_KINDS, TriggerConfig, load_trigger_config
from serving.trigger_rules import judge
from serving.trigger_snapshots import Candidate, new_firings, snapshot_candidates
from serving.trigger_states import Attrs, StateReader
from serving.webhooks import Sender

log = logging.getLogger("journey.triggers")
# The worker prunes triggers.sqlite (the retention section) this long after it starts, then
# every PRUNE_EVERY_SECONDS: not at once, so the short start of `journey score`'s triggers
# leaves pruning to the service, nor during a start-up's resumed deliveries.
PRUNE_FIRST_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 3600.0
# Pauses before evaluating a batch again when its firings could not be stored (a full disk);
# meanwhile new evaluations queue (delivery.queue_size).
RETRY_SECONDS = (1.0, 5.0, 30.0)


@dataclass(frozen=True)
class _Ingested:
    """Customers touched by one ingest: their histories as of ``when``, before and after."""

    when: datetime
    ids: list[str]
    before: list[EventArrays | None]
    after: list[EventArrays | None]


class Triggers:
    def __init__(self, config: TriggerConfig, firings: FiringStore, reader: StateReader,
                 models: Callable[[], ModelSet | None],
                 clock: Callable[[], datetime] | None = None,
                 metrics: TriggerMetrics | None = None) -> None:
        """``clock``: the evaluation clock (JOURNEY_AS_OF or now) the cool-downs count on;
        ``metrics``: in the service's registry (default: a private one)."""
        self.config = config
        self.rules = config.enabled
        self.ingest_rules = [r for r in self.rules if r.kind in INGEST_KINDS]
        self.firings = firings
        self.reader = reader
        self.metrics = metrics or TriggerMetrics()
        self.sender = Sender(firings, config.endpoints, config.delivery, metrics=self.metrics)
        self._models = models
        self._attributes: Callable[[str], Attrs] = lambda _: {}
        self._queue: queue.Queue[_Ingested | Snapshot] = queue.Queue(config.delivery.queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # evaluations not made because the queue was full
        self._warned: dict[str, float] = {}  # rule: when its cap was last warned of
        self._capped: dict[str, int] = {}  # rule: firings held since that warning
        self._throttle = Throttle()  # the queue-full warning: once a minute, with a count
        # Firings by source, and those held by cool-downs, since the last line saying so;
        # said by the worker's loop once the interval is over (every firing within it).
        self._fired: dict[str, int] = {}
        self._cooled, self._fired_logged = 0, -math.inf
        self._fired_lock = threading.Lock()
        self.fired_log_seconds = LOG_EVERY_SECONDS
        self.metrics.rules([r.id for r in self.rules])
        self.metrics.watch(self._queue.qsize, lambda: self.sender.busy)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.prune_first_seconds = PRUNE_FIRST_SECONDS
        self._next_prune = math.inf  # monotonic; set by start
        self._pruning: Pruner | None = None  # a prune under way, resumed between evaluations
        self.retry_seconds: tuple[float, ...] = RETRY_SECONDS

    @classmethod
    def for_settings(cls, settings: ServeSettings, spec: FeatureSpec, catalog: Catalog,
                     predictor: Predictor, models: Callable[[], ModelSet | None],
                     config: TriggerConfig | None = None,
                     clock: Callable[[], datetime] | None = None,
                     metrics: TriggerMetrics | None = None) -> Triggers:
        """The triggers of ``config``, or of the settings' rules file when None; ``clock``:
        the evaluation clock (default: the settings' JOURNEY_AS_OF, else now)."""
        if config is None:
            config = load_trigger_config(settings.triggers, spec.stages, catalog.index)
        return cls(config, FiringStore(settings.firings_path),
                   StateReader(spec, predictor, catalog, config.enabled), models,
                   clock or (lambda: settings.as_of or datetime.now(UTC)), metrics)

    @property
    def active(self) -> bool:
        return bool(self.rules)

    def start(self, attributes: Callable[[str], Attrs] | None = None) -> None:
        """Resume the deliveries a previous run left unfinished, then start the threads (no
        thread at all when no rule is enabled)."""
        if not self.active or self._thread is not None:
            return
        if attributes is not None:
            self._attributes = attributes
        self.sender.start()
        self.sender.submit(self.firings.unfinished())
        self._next_prune = time.monotonic() + self.prune_first_seconds
        self._thread = threading.Thread(target=self._run, name="journey-triggers", daemon=True)
        self._thread.start()

    def close(self, wait_seconds: float = 0.0) -> None:
        """Stop; with ``wait_seconds``, first let queued evaluations and deliveries due by then
        finish. Deliveries left over stay pending in the store for the next start."""
        if wait_seconds > 0:
            self.idle(wait_seconds, due_only=True)
        queued = self._queue.qsize()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        left = self.sender.close()
        self._flush_fired(force=True)
        if self._thread is not None:
            self._log_stopped(queued, left)
        self.firings.close()

    def _log_stopped(self, queued: int, left: int) -> None:
        if queued:
            log.warning("triggers: stopped with %d evaluation(s) queued, not made: their "
                        "firings are lost", queued)
        log.info("triggers: stopped; %d webhook delivery(ies) unsent, kept pending in %s for "
                 "the next start", left, self.firings.path.name)

    def idle(self, timeout: float, due_only: bool = False) -> bool:
        """Wait until every queued evaluation is done and nothing is left to send
        (``due_only``: nothing due within the timeout); whether that happened in time."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return self.sender.wait(max(deadline - time.monotonic(), 0.0), due_only)

    # -- events ----------------------------------------------------------------------------
    def before_ingest(self, history: HistoryIndex, rows: pa.Table, when: datetime
                      ) -> _Ingested | None:
        """Under the write lock, before the histories take ``rows``: the touched customers'
        histories as of ``when`` (None when no rule is evaluated on events)."""
        if not self.ingest_rules or rows.num_rows == 0:  # queued until the worker starts
            return None
        t = micros(when)
        ids = pc.unique(rows["customer_id"]).to_pylist()
        return _Ingested(when, ids, [history.arrays(c, t) for c in ids], [])

    def after_ingest(self, history: HistoryIndex, job: _Ingested | None) -> None:
        """Under the write lock, after: the same customers' histories now, queued for the
        worker without waiting."""
        if job is None:
            return
        t = micros(job.when)
        job.after.extend(history.arrays(c, t) for c in job.ids)
        self._put(job)

    def after_scoring(self, snap: Snapshot) -> None:
        """Queue a scoring run's snapshot for comparison with the previous one."""
        if self.active:
            self._put(snap)

    def _put(self, item: _Ingested | Snapshot) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self.metrics.dropped.inc()
            if self._throttle.allow("queue_full") is not None:  # a flood: once a minute
                log.warning("triggers: evaluation queue full (%d); dropped an evaluation (%d "
                            "so far)", self._queue.maxsize, self.dropped)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._prune_some()
            self._flush_fired()
            self.sender.flush_logs()
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 256:  # what queued meanwhile goes through one kernel pass
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._evaluate_retrying(batch)
            except Exception:  # a bad batch must not stop the triggers for good
                log.exception("triggers: evaluation failed; its firings are lost")
            finally:
                for _ in batch:
                    self._queue.task_done()

    # -- retention -------------------------------------------------------------------------
    def _prune_some(self) -> None:
        """When a prune is due, delete what the retention no longer keeps, a batch per
        transaction while no evaluation waits (at least one batch per turn of the worker's
        loop, so a flood does not starve it). On this thread, never on a request's."""
        if self._pruning is None and time.monotonic() < self._next_prune:
            return
        try:
            if self._pruning is None:
                self._pruning = self.firings.pruner(self.config.retention, self.config.rules,
                                                    micros(self._clock()))
            pruner = self._pruning
            more = self.firings.prune_step(pruner)
            while more and self._queue.empty() and not self._stop.is_set():
                more = self.firings.prune_step(pruner)
        except Exception:  # a full disk, a locked file: the triggers go on, and try again later
            log.exception("triggers: pruning old firings failed; next try in %g s",
                          PRUNE_EVERY_SECONDS)
            more = False
        if more:
            return
        if self._pruning is not None:
            self._log_pruned(self._pruning.done)
        self._pruning = None
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS

    def _log_pruned(self, done: Pruned) -> None:
        if not done.firings:
            return
        keep = self.config.retention
        log.info("triggers: pruned %d firing(s) older than the retention in %s: %d held older "
                 "than %g day(s), %d delivered or dead older than %g day(s) and past their "
                 "cool-down; %d delivery row(s)", done.firings, self.firings.path.name,
                 done.held, keep.keep_held_days, done.finished, keep.keep_days, done.deliveries)

    def _evaluate_retrying(self, batch: Sequence[_Ingested | Snapshot]) -> None:
        """``_evaluate``, again after a pause when triggers.sqlite cannot take the firings (a
        full disk, a locked file): they were lost at the first error. Claims already made
        hold their cool-downs, so a second pass fires nothing twice."""
        for wait in (*self.retry_seconds, None):
            try:
                self._evaluate(batch)
                return
            except sqlite3.OperationalError as exc:
                if wait is None or self._stop.is_set():
                    raise
                log.warning("triggers: firings could not be stored (%s); evaluating again in "
                            "%g s", exc, wait)
                if self._stop.wait(wait):
                    raise

    def _evaluate(self, batch: Sequence[_Ingested | Snapshot]) -> None:
        jobs = [b for b in batch if isinstance(b, _Ingested)]
        for when in dict.fromkeys(j.when for j in jobs):
            self.evaluate_events([j for j in jobs if j.when == when], when)
        for snap in batch:
            if isinstance(snap, Snapshot):
                self.evaluate_snapshot(snap)

    def evaluate_events(self, jobs: Sequence[_Ingested], when: datetime) -> int:
        """Judge the event rules for each customer, before and after their new events."""
        ids: list[str] = []
        histories: list[EventArrays | None] = []
        afters: list[EventArrays | None] = []
        for j in jobs:
            for cid, b, a in zip(j.ids, j.before, j.after, strict=True):
                if a is not None and len(a) > (len(b) if b is not None else 0):
                    ids.append(cid)
                    histories.append(b)
                    afters.append(a)
        if not ids:
            return 0
        attrs = [self._attributes(c) for c in ids]
        states = self.reader.states(self._models(), histories + afters, attrs + attrs, when)
        n = len(ids)
        found = []
        for k, cid in enumerate(ids):
            before, after = states[k], states[n + k]
            if after is None:
                continue
            for rule in self.ingest_rules:
                verdict = judge(rule, before, after, None)
                if verdict.fires:
                    found.append(Candidate(rule, cid, after.at_us, verdict))
        return self.fire(found, "events")

    # -- scoring runs and firing -----------------------------------------------------------
    def evaluate_snapshot(self, snap: Snapshot) -> int:
        """Compare a scoring run's snapshot with the previous one; the firings claimed. A
        snapshot as of an earlier time than the newest (not published) is history, not news:
        nothing fires."""
        if snap.meta.get("published") is False:
            return 0
        return self.fire(snapshot_candidates(self.rules, snap,
                                             previous_of(snap.path.parent, snap)),
                         "scoring run")

    def fire(self, candidates: Sequence[Candidate], source: str) -> int:
        """Claim the candidates the cool-downs and rate caps allow and queue their webhooks."""
        if not candidates:
            return 0
        new = new_firings(candidates, source, wall_clock(datetime.now(UTC)))
        claimed = self.firings.claim_all(new)
        kept = claimed.sent
        self.sender.submit(Pending(f.firing_id, e, f.body, 0, f.rule)
                           for f in kept for e in f.endpoints)
        self._count(kept, claimed.held, claimed.cooled_rules)
        self._log_fired(source, len(kept), claimed.cooled)
        self._warn_capped(claimed.held)
        return len(kept)

    def _count(self, sent: Sequence[NewFiring], held: Mapping[str, int],
               cooled: Mapping[str, int]) -> None:
        by_rule: dict[str, int] = {}
        for f in sent:
            by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
        for state, counts in (("sent", by_rule), ("held", held), ("cooled", cooled)):
            for rule_id, n in counts.items():
                self.metrics.firings.labels(rule_id, state).inc(n)

    def _log_fired(self, source: str, fired: int, cooled: int) -> None:
        """A line at most once a minute with what fired since the last one: a line per
        evaluation batch was 99 % of serve.log under steady traffic (1 MB an hour). What
        fires after a line is said by the worker's loop once the minute is over
        (``_flush_fired``), not only when something fires again."""
        with self._fired_lock:
            if fired:
                self._fired[source] = self._fired.get(source, 0) + fired
            self._cooled += cooled
        self._flush_fired()

    def _flush_fired(self, force: bool = False) -> None:
        """The fired line, when something fired since the last one and the interval is over
        (``force``: now, at shutdown)."""
        with self._fired_lock:
            now = time.monotonic()
            if not self._fired or (not force
                                   and now - self._fired_logged < self.fired_log_seconds):
                return
            counts = ", ".join(f"{n} from {where}" for where, n in sorted(self._fired.items()))
            cooled = self._cooled
            self._fired, self._cooled, self._fired_logged = {}, 0, now
        log.info("triggers: fired %s since the last such line (%d held by cool-downs)", counts,
                 cooled)

    def _warn_capped(self, held: Mapping[str, int]) -> None:
        """A warning per rule at most once a minute while its cap holds firings (a flood
        would otherwise log a line per batch)."""
        now = time.monotonic()
        for rule_id, n in held.items():
            self._capped[rule_id] = self._capped.get(rule_id, 0) + n
            if now - self._warned.get(rule_id, -math.inf) < 60:
                continue
            cap = next((r.max_per_minute for r in self.rules if r.id == rule_id), None)
            log.warning("triggers: rule %s reached its cap of %s firings a minute "
                        "(max_per_minute): %d firing(s) held, not sent (status held, "
                        "rate_cap), since the last warning; events for many new customer ids "
                        "at once?", rule_id, cap, self._capped[rule_id])
            self._warned[rule_id] = now
            self._capped[rule_id] = 0

    def status(self) -> dict[str, object]:
        return {"active": self.active, "queued": self._queue.qsize(), "dropped": self.dropped,
                "sending": self.sender.busy}
