"""Live drift monitoring: a bounded window of the feature vectors and scores the service
produced, compared with the served models' training profiles (models.drift).

The window is a ring buffer allocated once (rows x columns), so memory does not grow with
traffic; recording a prediction copies its row in, nothing more. Evaluation (binning, PSI,
tests) runs on a timer thread or when ``/v1/drift`` asks for a stale report, never on the
prediction path. Models trained before drift profiles existed have none: drift is then
reported as unavailable, with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge

from features.online import Vectors
from models.drift import (
    PROFILE_ARTIFACT,
    SCORE_PREFIX,
    DriftProfile,
    DriftReport,
    DriftSettings,
    Window,
    compare_window,
)
from models.drift_worker import Comparer
from models.registry import RegistryError, load_run_dict
from serving.champions import ModelSet
from serving.drift_alarms import AlarmLog
from serving.predictor import Scored
from serving.utc import iso_z, utc_text

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

F64 = npt.NDArray[np.float64]
log = logging.getLogger("journey.serving")
# BentoML's workers set PROMETHEUS_MULTIPROC_DIR, so prometheus_client warns on every clear()
# (each evaluation) that clearing is not implemented for its multiprocess collector. The
# service's registry is read in-process (/v1/metrics), where clear() works: the warning is noise.
warnings.filterwarnings("ignore", message="Clearing labels has not been implemented",
                        category=UserWarning)
Layout = tuple[tuple[str, ...], tuple[str, ...]]  # numeric columns (features, scores), labels


@functools.lru_cache(maxsize=64)
def score_names(next_stages: tuple[str, ...]) -> tuple[str, ...]:
    """The served scores' names as training profiles give them (``score_columns``)."""
    return (f"{SCORE_PREFIX}churn", f"{SCORE_PREFIX}conversion",
            *(f"{SCORE_PREFIX}next_stage_{c}" for c in next_stages))


def score_matrix(scored: Sequence[Scored]) -> F64:
    """One row per prediction, in ``score_names`` order (next_stage in its classes' order)."""
    return np.array([[s.churn, s.conversion, *s.next_stage.values()] for s in scored])


@functools.lru_cache(maxsize=256)
def _lookup(values: tuple[str, ...]) -> npt.NDArray[np.object_]:
    """Codes to strings; code -1 (missing) indexes the trailing None."""
    return np.array([*values, None], dtype=object)


def _labels(vectors: Vectors, attributes: Sequence[str]
            ) -> list[tuple[str, npt.NDArray[np.object_] | list[str | None]]]:
    """Categorical features and attributes as strings (None: missing)."""
    out: list[tuple[str, npt.NDArray[np.object_] | list[str | None]]] = [
        (name, _lookup(vocab)[codes]) for name, (codes, vocab) in
        vectors.matrix.categorical.items()]
    coded = vectors.attribute_codes or {}
    for key in attributes:
        if key in coded:
            attr_codes, values = coded[key]
            out.append((f"attr_{key}", _lookup(tuple(values))[attr_codes]))
        else:
            out.append((f"attr_{key}", [a.get(key) for a in vectors.attributes]))
    return out


class DriftWindow:
    """The newest ``capacity`` scored rows (and none older than ``max_age`` seconds, 0: no
    age limit), in buffers allocated when the first row arrives."""

    def __init__(self, capacity: int, max_age: float, attributes: Sequence[str],
                 clock: Callable[[], float] = time.time) -> None:
        self.capacity, self.max_age = capacity, max_age
        self.attributes = tuple(attributes)
        self.clock = clock
        self._lock = threading.Lock()
        self._layout: Layout | None = None
        self._numbers: F64 = np.empty((0, 0))
        self._labels: npt.NDArray[np.object_] = np.empty((0, 0), dtype=object)
        self._at: F64 = np.empty(0)
        self._next = 0

    def _allocate(self, layout: Layout) -> None:
        """(Re)allocate for a column layout: a new layout (other models) starts a new window."""
        self._layout = layout
        self._numbers = np.full((self.capacity, len(layout[0])), np.nan)
        self._labels = np.full((self.capacity, len(layout[1])), None, dtype=object)
        self._at = np.full(self.capacity, np.nan)
        self._next = 0

    def record(self, vectors: Vectors, scored: Sequence[Scored]) -> None:
        """Copy the rows in (on the prediction path: a few array writes, no per-value work)."""
        n = len(vectors)
        if n == 0:
            return
        keep = slice(max(0, n - self.capacity), n)  # a batch larger than the window: its tail
        m = keep.stop - keep.start
        names = score_names(tuple(scored[0].next_stage))
        labels = _labels(vectors, self.attributes)
        features = vectors.matrix.names
        layout = ((*features, *names), tuple(name for name, _ in labels))
        scores = score_matrix(scored[keep])
        now = self.clock()
        with self._lock:
            if layout != self._layout:
                self._allocate(layout)
            first = self._next
            rows: slice | npt.NDArray[np.int64] = (
                slice(first, first + m) if first + m <= self.capacity
                else (first + np.arange(m)) % self.capacity)
            k = len(features)
            self._numbers[rows, :k] = vectors.matrix.values[keep]
            self._numbers[rows, k:] = scores
            for j, (_, values) in enumerate(labels):
                self._labels[rows, j] = values[keep]
            self._at[rows] = now
            self._next = (first + m) % self.capacity

    def snapshot(self) -> Window:
        """The window's live rows (copied), and the times of its oldest and newest row."""
        with self._lock:
            if self._layout is None:
                return Window(np.empty((0, 0)), np.empty((0, 0), dtype=object), (), ())
            live = ~np.isnan(self._at)
            if self.max_age > 0:
                live &= self._at >= self.clock() - self.max_age
            numbers, labels, at = self._numbers[live], self._labels[live], self._at[live]
            names, label_names = self._layout
        if not len(at):
            return Window(numbers, labels, names, label_names)
        return Window(numbers, labels, names, label_names, _utc(float(at.min())),
                      _utc(float(at.max())))


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class DriftStatus:
    available: bool
    reason: str | None  # why drift is unavailable
    evaluated_at: datetime
    versions: dict[str, str]  # model versions whose training profiles are the reference
    report: DriftReport | None = None
    without_profile: list[str] = field(default_factory=list)  # served models lacking one
    failed: bool = False  # the reference could not be read: no comparison was made

    def to_dict(self) -> dict[str, Any]:
        report = self.report.to_dict() if self.report else None
        if report is not None:  # the API's times are UTC with Z, as every other route's
            report.update({k: utc_text(report[k]) for k in ("start", "end") if report.get(k)})
        return {"available": self.available, "reason": self.reason,
                "evaluated_at": iso_z(self.evaluated_at), "versions": self.versions,
                "without_profile": self.without_profile, "report": report}


# A full comparison is ~0.2 s of numpy and pandas under the GIL: in one go, a stall of every
# request in flight (predict p99 323 ms against 6 ms without it, benchmarks/serving.py). Even
# with a 1 ms sleep between columns it took about half the interpreter for 0.7-1.2 s under
# the load benchmark's mix, which runs the event loop at ~60 % busy: requests queued up to
# 120 ms each minute. The pacer sleeps after each column in proportion to the column's own
# time, so an evaluation takes at most SHARE of the interpreter (and ~1/SHARE times as long).
PAUSE_SECONDS = 0.001
SHARE = 0.2


class Pacer:
    """Called between columns: sleeps (1 - share) / share times the time since the last call
    (at least PAUSE_SECONDS)."""

    def __init__(self, share: float = SHARE, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.share, self._sleep, self._clock = share, sleep, clock
        self._since = clock()

    def __call__(self) -> None:
        busy = self._clock() - self._since
        self._sleep(max(PAUSE_SECONDS, busy * (1 - self.share) / self.share))
        self._since = self._clock()


def compare_here(profile: DriftProfile, window: Window, settings: DriftSettings) -> DriftReport:
    """A comparison in this process, paced to a share of the interpreter."""
    return compare_window(profile, window, settings, pause=Pacer())


def load_profiles(client: MlflowClient, models: ModelSet) -> dict[str, DriftProfile | None]:
    """Each served model's training profile (None: its run logged none)."""
    out: dict[str, DriftProfile | None] = {}
    for name, served in models.models.items():
        data = load_run_dict(client, served.loaded.version, PROFILE_ARTIFACT)
        out[name] = DriftProfile.from_dict(data) if data is not None else None
    return out


class DriftGauges:
    """The drift figures in the service's Prometheus registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["column", "kind"]
        self.psi = Gauge("journey_drift_psi", "Population stability index of a monitored "
                         "feature or score, live window vs the training profile.", labels,
                         registry=registry)
        self.p_value = Gauge("journey_drift_p_value", "p-value of the distribution test (KS "
                             "numeric, chi-square categorical).", labels, registry=registry)
        self.alarm = Gauge("journey_drift_alarm", "1 when the column's drift alarms.", labels,
                           registry=registry)
        self.overall = Gauge("journey_drift_overall_alarm", "1 when any monitored column "
                             "alarms.", registry=registry)
        self.available = Gauge("journey_drift_available", "1 when the served models have "
                               "training profiles to compare with.", registry=registry)
        self.window = Gauge("journey_drift_window_rows", "Rows in the live drift window.",
                            registry=registry)
        self.threshold = Gauge("journey_drift_psi_threshold", "PSI thresholds.", ["level"],
                               registry=registry)
        # The gauges above keep their last values when an evaluation fails: these tell how
        # old they are, and that evaluations fail.
        self.evaluated = Gauge("journey_drift_last_evaluation_timestamp_seconds", "Unix time "
                               "of the last drift evaluation that completed (0: none yet).",
                               registry=registry)
        self.failures = Counter("journey_drift_evaluation_failures", "Drift evaluations that "
                                "failed (the comparison raised, or the training profiles "
                                "could not be read).", registry=registry)

    def sync(self, status: DriftStatus) -> None:
        if status.failed:
            self.failures.inc()
        else:
            self.evaluated.set(status.evaluated_at.timestamp())
        for gauge in (self.psi, self.p_value, self.alarm):
            gauge.clear()
        self.available.set(1 if status.available else 0)
        report = status.report
        self.overall.set(1 if report is not None and report.alarm else 0)
        self.window.set(report.window_size if report is not None else 0)
        if report is None:
            return
        self.threshold.labels("warn").set(report.settings.psi_warn)
        self.threshold.labels("alarm").set(report.settings.psi_alarm)
        for row in report.rows:
            self.alarm.labels(row.name, row.kind).set(1 if row.status == "alarm" else 0)
            if row.status == "too_few":  # a PSI from a handful of rows is noise, not a reading
                continue
            if np.isfinite(row.psi):
                self.psi.labels(row.name, row.kind).set(row.psi)
            if np.isfinite(row.p_value):
                self.p_value.labels(row.name, row.kind).set(row.p_value)


class DriftMonitor:
    """The window, the served models' reference profiles (read once per model set) and the
    latest evaluation."""

    def __init__(self, settings: DriftSettings, window: DriftWindow,
                 client: Callable[[], MlflowClient], gauges: DriftGauges,
                 every: float, compare: Comparer | None = None) -> None:
        """``compare``: how a window is compared with the reference (default: here, paced;
        the service passes a models.drift_worker.DriftWorker)."""
        self.settings, self.window, self.gauges = settings, window, gauges
        self.every = every
        self._compare = compare or compare_here
        self._client = client
        self._lock = threading.Lock()
        # (model versions, each model's profile, their merge): read and merged once per model
        # set, since merging is ~80 ms of Python that would otherwise hold the GIL each time.
        self._profiles: tuple[dict[str, str], dict[str, DriftProfile | None],
                              DriftProfile | None] | None = None
        self.latest: DriftStatus | None = None
        self.alarms = AlarmLog()
        self.failure: str | None = None  # why the last evaluation failed (None: it did not)

    def _reference(self, models: ModelSet) -> tuple[dict[str, DriftProfile | None],
                                                    DriftProfile | None]:
        """Each served model's profile, and all of them merged (None: no model has one)."""
        versions = models.versions()
        if self._profiles is None or self._profiles[0] != versions:
            profiles = load_profiles(self._client(), models)
            merged = None
            for profile in profiles.values():
                if profile is not None:
                    merged = profile if merged is None else merged.merged(profile)
            self._profiles = (versions, profiles, merged)
        return self._profiles[1], self._profiles[2]

    def preload(self, models: ModelSet | None) -> None:
        """Read the served models' training profiles now, at start-up (registry and artifact
        reads), not in the first evaluation beside live requests. An unreadable registry is
        reported by that evaluation."""
        if models is not None:
            with self._lock, contextlib.suppress(RegistryError):
                _, merged = self._reference(models)
                # Known now, not only after the first evaluation: an alert on this gauge
                # would otherwise fire after every restart.
                self.gauges.available.set(1 if merged is not None else 0)

    def evaluate(self, models: ModelSet | None) -> DriftStatus:
        with self._lock:  # one evaluation at a time, so each alarm turn is logged once
            try:
                status = self._evaluate(models)
            except Exception as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
                self.gauges.failures.inc()
                raise
            self.latest = status
            self.alarms.update(status)
            if status.failed:
                self._failed(str(status.reason))
            elif self.failure is not None:
                log.info("drift evaluation works again (it failed: %s)", self.failure)
                self.failure = None
        self.gauges.sync(status)
        return status

    def _failed(self, why: str) -> None:
        self.failure = why.splitlines()[0] if why else why

    def _evaluate(self, models: ModelSet | None) -> DriftStatus:
        now = datetime.now(UTC)
        if models is None:
            return DriftStatus(False, "no models loaded yet", now, {})
        try:
            profiles, reference = self._reference(models)
        except RegistryError as exc:
            return DriftStatus(False, f"training profiles unreadable: {exc}", now, {},
                               failed=True)
        have = {name: p for name, p in profiles.items() if p is not None}
        lacking = sorted(set(profiles) - set(have))
        if reference is None:
            return DriftStatus(False, "the served models have no training profile (trained "
                               "before drift monitoring); retrain to monitor drift", now, {},
                               without_profile=lacking)
        report = self._compare(reference, self.window.snapshot(), self.settings)
        versions = {name: models.models[name].version for name in have}
        return DriftStatus(True, None, now, versions, report, lacking)

    def watch(self, stop: threading.Event, models: Callable[[], ModelSet | None]
              ) -> threading.Thread:
        """A thread evaluating every ``every`` seconds until ``stop`` is set."""
        def run() -> None:
            while not stop.wait(self.every):
                try:
                    self.evaluate(models())
                except Exception:  # a failed evaluation must not end monitoring
                    log.exception("drift evaluation failed")

        thread = threading.Thread(target=run, name="journey-drift", daemon=True)
        thread.start()
        return thread

    def current(self, models: ModelSet | None) -> DriftStatus:
        """The latest evaluation if fresh enough (and of these models), else a new one."""
        latest = self.latest
        versions = {n: s.version for n, s in models.models.items()} if models else {}
        if (latest is None or time.time() - latest.evaluated_at.timestamp() >= self.every
                or not set(latest.versions.items()) <= set(versions.items())):
            return self.evaluate(models)
        return latest
