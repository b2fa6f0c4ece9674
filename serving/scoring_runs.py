"""Scoring runs (POST /v1/admin/score) in the log and the metrics: a line when one starts
(who asked, as of when), one when it ends (how long, how many customers, the snapshot
written, the one it is compared with, those pruned) or fails (why), and one when the
service's stop abandons it. A 26.7 s run used to leave nothing of its own in serve.log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from serving.errors import NotReadyError
from serving.ops_metrics import ScoringMetrics
from serving.snapshots import Snapshot
from serving.utc import iso_z

log = logging.getLogger("journey.serving")
IN_SERVICE = "the service"
IN_WORKER = "the score worker"


class ScoringAbandonedError(NotReadyError):
    """The service's stop ended the run before it published anything (a 503)."""


@dataclass
class Run:
    """One run under way; the caller fills in what it did."""

    as_of: datetime
    requested_by: str | None
    started: float = field(default_factory=time.monotonic)
    where: str = IN_SERVICE
    snapshot: Snapshot | None = None

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        who = f", asked by key {self.requested_by!r}" if self.requested_by else ""
        return f"as of {iso_z(self.as_of)}{who}"


def _snapshots(root: Path) -> set[str]:
    """The snapshot folders (not those being written, which start with a dot)."""
    try:
        return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    except FileNotFoundError:
        return set()


def _done(run: Run, pruned: list[str]) -> str:
    snap = run.snapshot
    if snap is None:
        return f"scoring run done in {run.seconds():.1f}s, {run.describe()}"
    meta = snap.meta
    previous = meta.get("previous")
    compared = f"compared with {previous}" if previous else "no previous snapshot to compare"
    published = "" if meta.get("published", True) else "; not published (an earlier as-of)"
    gone = f"; pruned {', '.join(pruned)}" if pruned else ""
    return (f"scoring run done in {run.seconds():.1f}s, {run.describe()}: "
            f"{int(meta.get('customers', 0)):,} customers scored in {run.where} into snapshot "
            f"{snap.id} ({compared}{published}{gone})")


class ScoringRuns:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.metrics = ScoringMetrics(registry)
        self.current: Run | None = None  # the run under way (one at a time: Marketing's lock)

    @contextmanager
    def run(self, as_of: datetime, requested_by: str | None, root: Path) -> Iterator[Run]:
        """Around one run (its caller holds the run lock): logs and counts its outcome."""
        run = Run(as_of.astimezone(UTC), requested_by)
        before = _snapshots(root)
        log.info("scoring run started, %s", run.describe())
        self.current = run
        m = self.metrics
        m.in_progress.set(1)
        try:
            yield run
        except ScoringAbandonedError:
            m.runs.labels("abandoned").inc()
            log.warning("scoring run abandoned after %.1fs, %s: the service is stopping; "
                        "nothing was published", run.seconds(), run.describe())
            raise
        except Exception as exc:
            m.runs.labels("failed").inc()
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.error("scoring run failed after %.1fs, %s: %s: %s", run.seconds(),
                      run.describe(), type(exc).__name__, why)
            raise
        else:
            m.runs.labels("success").inc()
            m.duration.observe(run.seconds())
            m.last_success.set(time.time())
            new = {run.snapshot.id} if run.snapshot is not None else set()
            log.info("%s", _done(run, sorted(before - _snapshots(root) - new)))
        finally:
            m.in_progress.set(0)
            self.current = None

    def fallback(self, reason: str) -> None:
        """A run meant for the score worker scored in the service (``FALLBACK_REASONS``)."""
        self.metrics.fallbacks.labels(reason).inc()
