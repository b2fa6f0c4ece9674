"""Everything one service process holds: the event store (it is the single writer), every
customer's encoded history, the served models, API keys and metrics. No web framework here:
the FastAPI layer calls these methods and maps their errors."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from features.batch import micros
from features.group_commit import GroupCommit
from features.history import HistoryIndex
from features.online import OnlineFeatures, Vectors
from features.schema import events_table
from features.spec import FeatureSpec
from features.store import AppendResult, EventStore
from features.store_conflicts import differing_ids
from models.contacts import contacts_from_arrays
from models.drift_worker import DriftWorker
from models.registry import client_for
from serving.batch_vectors import Batch, batch_vectors
from serving.champions import ModelHolder, ModelSet, alias_versions, load_models
from serving.degraded import Degraded
from serving.drift import DriftGauges, DriftMonitor, DriftStatus, DriftWindow, compare_here
from serving.errors import BadRequestError, NotReadyError, UnknownCustomerError
from serving.event_checks import check_events, checked_as_of, stored_form
from serving.keys import KeyRing
from serving.marketing import Marketing
from serving.memory import freeze_loaded, give_back_memory
from serving.metrics import Metrics
from serving.ops_metrics import TriggerMetrics
from serving.predictor import Predictor, Scored
from serving.recommender import Recommended, Recommender
from serving.reload_poll import SettledPoll
from serving.score_worker import ScoreWorker
from serving.scoring_runs import ScoringRuns
from serving.service_files import load_service_files
from serving.settings import ServeSettings
from serving.snapshots import Snapshot
from serving.stopping import StopSignals
from serving.store_guard import StoreGuard
from serving.triggers import Triggers
from serving.utc import iso_z
from serving.warmup import warm_up

log = logging.getLogger("journey.serving")
STORE_NOT_LOADED = "event store not loaded:"


class ServiceState:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        # The files `journey serve` checked before it started this process, loaded alike.
        files = load_service_files(settings)
        self.spec: FeatureSpec = files.spec
        self.online = OnlineFeatures(self.spec)
        self.predictor = Predictor(self.spec.stages, settings.reasons, settings.risk_bands,
                                   settings.survival_days)
        self.keys = KeyRing.load(settings.keys_path)
        catalog = files.catalog
        self.recommender = Recommender(self.spec, catalog, settings.nba_top_k,
                                       settings.nba_exploration, settings.nba_seed)
        self.metrics = Metrics()
        self.scoring = ScoringRuns(self.metrics.registry)  # runs' log lines and metrics
        self.marketing = Marketing(settings, self.spec, catalog, self.scoring)
        self.triggers = Triggers.for_settings(settings, self.spec, catalog, self.predictor,
                                              lambda: self.holder.current, files.triggers,
                                              lambda: self.clock(None),
                                              TriggerMetrics(self.metrics.registry))
        self._drift_worker = DriftWorker(compare_here) if settings.drift_worker else None
        self._stop = threading.Event()  # set by close(), or at once by a stop signal
        self._signals = StopSignals(self._stop, self._in_flight)
        self._score_worker = (ScoreWorker(settings, self._stop, self.scoring.fallback)
                              if settings.score_worker else None)
        self.drift = DriftMonitor(
            files.drift,
            DriftWindow(settings.drift_window_rows, settings.drift_window_seconds,
                        self.spec.attributes),
            lambda: client_for(settings.tracking_uri), DriftGauges(self.metrics.registry),
            settings.drift_eval_seconds, self._drift_worker)
        self.holder = ModelHolder(self._load_models, self._alias_versions)
        self.store: EventStore | None = None
        self.history: HistoryIndex | None = None
        self.startup_error: str | None = None
        self.store_guard = StoreGuard()  # a write the disk refused: 503s, /readyz says why
        self.degraded = Degraded(self.metrics.registry)  # /readyz's problems
        # Concurrent ingests are committed together (features/group_commit.py).
        self.writer = GroupCommit(self._commit, self._after_commit)
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------
    def _load_models(self) -> ModelSet:
        client = client_for(self.settings.tracking_uri)
        models = load_models(client, self.spec, self.settings.model_alias)
        # Before the holder serves them (and /readyz says ready): the first prediction would
        # otherwise compile the kernels, seconds in a new container (serving/warmup.py).
        warm_up(self.online, self.predictor, models)
        return models

    def _alias_versions(self) -> dict[str, str]:
        client = client_for(self.settings.tracking_uri)
        return alias_versions(client, self.spec, self.settings.model_alias)

    def start(self, background: bool = True) -> None:
        """Open the store, load histories and models (in a thread: /healthz answers and
        /readyz says 503 meanwhile), then poll the registry if asked to."""
        self._signals.watch()  # here: in the lifespan, after the server set its handlers
        if not background:
            self._load()
            return
        t = threading.Thread(target=self._load, name="journey-load", daemon=True)
        t.start()
        self._threads.append(t)

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self.store = EventStore(self.settings.store_path,
                                    memory_limit=self.settings.store_memory, report=log.info)
            self.store.serve_appends(self.settings.store_checkpoint_mb)
            self.history = HistoryIndex.load(self.store, self.spec)
        except Exception as exc:
            # Never retried (only a restart opens the store again): the prefix is what
            # `journey serve --detach` recognises to stop waiting (journey/service_process.py).
            self.startup_error = (f"{STORE_NOT_LOADED} {self.settings.store_path}: "
                                  f"{type(exc).__name__}: {exc}")
            log.error("%s", self.startup_error)
            return
        self.holder.reload()
        self.metrics.sync_models(self.holder, self.ready)
        self.marketing.preload()  # the newest score snapshot, so the first dashboard is quick
        self.drift.preload(self.holder.current)
        self.triggers.start(self.history.attributes.of)  # no thread unless a rule is enabled
        # The loaded histories, models and libraries are long-lived: keep them out of the
        # collector's generations, or every full collection walks them (p99 spikes).
        if self.settings.freeze_heap:
            freeze_loaded()
        loaded = self.history.loaded
        log.info("loaded %s customers (%s events, %.0f MB in memory) and models %s in %.1fs",
                 self.history.n_customers, f"{len(loaded):,}", loaded.nbytes / 2**20,
                 self.versions(), time.perf_counter() - started)
        if self.settings.reload_poll_seconds > 0:
            poll = SettledPoll(self.holder, self._alias_versions, self.reload)
            self._threads.append(poll.start(self._stop, self.settings.reload_poll_seconds))
        if self.settings.drift_eval_seconds > 0:
            self._threads.append(self.drift.watch(self._stop, lambda: self.holder.current))

    def drift_status(self) -> DriftStatus:
        """The latest drift evaluation, evaluated now when stale (seconds: not on a hot path)."""
        return self.drift.current(self.holder.current)

    def reload(self) -> bool:
        failing = self.holder.last_error is not None
        changed = self.holder.reload()
        self.metrics.sync_models(self.holder, self.ready)
        if failing and self.holder.last_error is None:  # the holder logs failures and swaps
            log.info("models load again: the registry answered (serving %s)", self.versions())
        return changed

    def _in_flight(self) -> list[str]:
        """The work a stop cuts short, in words (read by the stop signal's handler)."""
        run = self.scoring.current
        return [f"a scoring run for {run.seconds():.0f}s ({run.describe()})"] if run else []

    def close(self) -> None:
        self._stop.set()
        self._signals.restore()
        self.triggers.close()  # logs the deliveries it leaves pending
        for worker in (self._drift_worker, self._score_worker):
            if worker is not None:
                worker.close()
        with self.writer.exclusive():
            if self.store is not None:
                self.store.close()
                self.store = None
                log.info("stopped: event store closed")

    def store_memory(self) -> dict[str, int]:
        store = self.store
        return store.memory() if store is not None else {}

    @property
    def ready(self) -> bool:
        return self.history is not None and self.holder.current is not None

    def versions(self) -> dict[str, str]:
        return self.holder.current.versions() if self.holder.current else {}

    def readiness(self) -> dict[str, Any]:
        """What /readyz tells anyone (no key): serving/degraded.py."""
        return self.degraded.readiness(self)

    def _models(self) -> tuple[ModelSet, HistoryIndex]:
        models, history = self.holder.current, self.history
        if models is None or history is None:
            raise NotReadyError(self.readiness()["message"] or "not ready")
        return models, history

    # -- scoring -------------------------------------------------------------------------
    def clock(self, requested: datetime | None) -> datetime:
        if requested is not None:
            return requested.astimezone(UTC)
        return self.settings.as_of or datetime.now(UTC)

    def asked(self, as_of: datetime | None) -> datetime:
        """The time to score stored histories as of (``checked_as_of``: not after the
        clock)."""
        return checked_as_of(as_of, self.clock(None), self.settings.future_tolerance_seconds,
                             self.settings.as_of is not None)

    def predict(self, customer_id: str, as_of: datetime | None,
                later: list[Callable[[], None]] | None = None) -> Scored:
        """One stored customer's prediction; its metrics and drift row are recorded now, or
        appended to ``later`` for the caller to record once it has answered."""
        models, history = self._models()
        when = self.asked(as_of)
        t = micros(when)
        arrays = history.arrays(customer_id, t)
        if arrays is None or not len(arrays):  # as /recommend: no history, no prediction
            raise UnknownCustomerError(f"no events for customer {customer_id!r} before "
                                       f"{iso_z(when)}", "customer_id")
        vectors = self.online.vectors(arrays, t, [history.attributes.of(customer_id)])
        scored = self.predictor.score(models, vectors, when)
        self._record(vectors, scored, later)
        return scored[0]

    def predict_inline(
        self,
        customer_id: str,
        events: list[dict[str, Any]],
        as_of: datetime | None,
        attributes: dict[str, str | None] | None,
        later: list[Callable[[], None]] | None = None,
    ) -> Scored:
        models, history = self._models()
        when = self.clock(as_of)
        check_events(events, self.spec.taxonomy, None)
        unknown = sorted(set(attributes or ()) - set(self.spec.attributes))
        if unknown:  # a misspelt one would silently count as missing
            known = ", ".join(self.spec.attributes)
            raise BadRequestError(f"attribute {unknown[0]!r} is not one of the feature spec's "
                                  f"({known})", f"attributes.{unknown[0]}")
        attrs = attributes if attributes is not None else history.attributes.of(customer_id)
        t = micros(when)
        arrays = self.online.enc.one_customer(customer_id, events, t)
        vectors = self.online.vectors(arrays, t, [attrs])
        scored = self.predictor.score(models, vectors, when)
        self._record(vectors, scored, later)
        return scored[0]

    def _record(self, vectors: Vectors, scored: list[Scored],
                later: list[Callable[[], None]] | None) -> None:
        """The predictions' metrics and drift-window rows; appended to ``later`` instead when
        given, for a caller that records once its answer is sent (serving/fast_predict.py)."""
        if later is not None:
            later.append(functools.partial(self._record, vectors, scored, None))
            return
        self.metrics.observe(scored)
        self.drift.window.record(vectors, scored)

    def _batch_vectors(self, customer_ids: Sequence[str], as_of: datetime | None,
                       contacts: bool = False) -> Batch:
        """``batch_vectors`` of the served models and histories, as of ``asked(as_of)``."""
        models, history = self._models()
        return batch_vectors(self.online, models, history, self.asked(as_of), customer_ids,
                             contacts)

    def predict_batch(
        self, customer_ids: Sequence[str], as_of: datetime | None
    ) -> tuple[list[Scored], list[str]]:
        b = self._batch_vectors(customer_ids, as_of)
        if b.vectors is None:
            return [], b.unknown
        scored = self.predictor.score(b.models, b.vectors, b.when)
        self.metrics.observe(scored)
        self.drift.window.record(b.vectors, scored)
        return scored, b.unknown

    def recommend(
        self, customer_ids: Sequence[str], as_of: datetime | None, top_k: int | None = None,
        explore: bool = True,
    ) -> tuple[list[Recommended], list[str]]:
        """Ranked next-best-actions for stored customers (unknown ids are listed, with those
        who had no event yet at ``as_of``: nothing to base a recommendation on)."""
        b = self._batch_vectors(customer_ids, as_of, contacts=True)
        if b.vectors is None or b.contacts is None:
            return [], b.unknown
        scored = self.predictor.score(b.models, b.vectors, b.when, explain=False)
        # The features stop strictly before t; the contact policy also counts a contact sent
        # at t, or an action reported at t could be recommended again.
        contacts = [contacts_from_arrays(h, self.spec) for h in b.contacts]
        out = self.recommender.recommend(b.models, b.vectors, scored, contacts, b.t, top_k,
                                         explore)
        self.metrics.observe_recommendations(out)
        return out, b.unknown

    def score_all(self, as_of: datetime | None, requested_by: str | None = None) -> Snapshot:
        """Score every customer into a new snapshot (segments and the dashboard read it);
        ``requested_by``: the key's name, for the log."""
        models, history = self._models()
        # The newest snapshot is what segments and the dashboard show: one of the future
        # would show every customer as long inactive.
        snap = self.marketing.score(models, history, self.asked(as_of), self._score_worker,
                                    requested_by)
        self.triggers.after_scoring(snap)  # compared with the previous snapshot off this path
        self._record_drift_sample(history, as_of)
        give_back_memory()
        return snap

    def _record_drift_sample(self, history: HistoryIndex, as_of: datetime | None) -> None:
        """A scoring run covers every customer: a seeded sample of them, a window's worth,
        joins the drift window (scored again here: the run keeps no vectors)."""
        ids = history.customer_ids()
        take = min(len(ids), self.settings.drift_window_rows)
        picked = [ids[i] for i in np.sort(np.random.default_rng(0).choice(len(ids), take,
                                                                          replace=False))]
        # ~0.5 s of Python for 5,000 customers: paced to half the interpreter, 200 at a time,
        # or requests queue behind it (a scoring run's last stall, now that it runs in a child).
        for lo in range(0, take, 200):
            began = time.perf_counter()
            b = self._batch_vectors(picked[lo:lo + 200], as_of)
            if b.vectors is not None:
                scored = self.predictor.score(b.models, b.vectors, b.when, explain=False)
                self.drift.window.record(b.vectors, scored)
            time.sleep(time.perf_counter() - began)

    # -- ingest --------------------------------------------------------------------------
    def _commit(self, table: pa.Table) -> AppendResult:
        if self.store is None:
            raise NotReadyError("the event store is closed")
        return self.store_guard.append(self.store, table)

    def _after_commit(self, result: AppendResult) -> None:
        # Trigger rules compare each touched customer before and after these events (those
        # of requests committed together at once, as one request's are); the evaluation and
        # the webhooks run on the triggers' threads, not on this request.
        history = self.history
        assert history is not None and result.rows is not None
        touched = self.triggers.before_ingest(history, result.rows, self.clock(None))
        history.add(result.rows)
        self.triggers.after_ingest(history, touched)

    def ingest(self, events: list[dict[str, Any]]) -> AppendResult:
        """Append to the store (one transaction: all or none, possibly with other requests'
        events), then to the histories; the answer is given only after the commit, so an
        acknowledged event is durable."""
        history = self.history
        if history is None:
            raise NotReadyError(self.readiness()["message"] or "not ready")
        check_events(events, self.spec.taxonomy, self.latest_event_time())
        result = self.writer.append(events_table(stored_form(events)))
        self.metrics.events.labels("inserted").inc(result.inserted)
        self.metrics.events.labels("duplicate").inc(result.duplicates)
        return result

    def latest_event_time(self) -> datetime:
        """The latest ``ts`` /events stores: now, give or take the senders' clock skew."""
        return datetime.now(UTC) + timedelta(seconds=self.settings.future_tolerance_seconds)

    def resent_conflicts(self, events: list[dict[str, Any]], ignored: list[str]
                         ) -> list[tuple[str, str]]:
        """(event_id, fields that differ) of the ignored events whose id the store holds for a
        different event: a changed event re-sent under its old id was not stored."""
        store = self.store
        if not ignored or store is None:
            return []
        wanted, rows = set(ignored), []
        for e in events:
            if e["event_id"] in wanted:
                wanted.discard(e["event_id"])
                rows.append(e)
        found = differing_ids(store.con, events_table(stored_form(rows)))
        self.metrics.events.labels("conflict").inc(len(found))
        return found
