"""Drift between two periods of an event store: the check a retraining trigger runs.

Live traffic is the customers who act: the service scores a customer when their events
arrive. The offline counterpart of a window [start, end) is therefore the customers with
customer-initiated activity in it (``recency_days`` below the window's length at ``end``),
with their features as of ``end``; the reference is the same rule applied to the window of
equal length that ends at the reference cutoff, so both sides are drawn the same way and
only a change in behaviour separates them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.batch import BatchEngine
from features.errors import ConfigError
from features.memory_errors import memory_errors
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from models.drift import (
    PROFILE_ARTIFACT,
    DriftProfile,
    DriftReport,
    DriftSettings,
    compare,
    fit_profile,
    load_drift_settings,
    reference_rows,
)
from models.registry import alias_version, load_run_dict
from models.targets import target

if TYPE_CHECKING:
    from mlflow import MlflowClient

ACTIVITY = "recency_days"  # days since the customer's last customer-initiated event


def active_features(store: EventStore, spec: FeatureSpec, end: datetime, days: float
                    ) -> pd.DataFrame:
    """Features as of ``end`` of the customers active in the ``days`` before it."""
    frame: pd.DataFrame = BatchEngine(store, spec).features(end).to_pandas()
    return frame[frame[ACTIVITY] < days].drop(columns="customer_id").reset_index(drop=True)


def drift_between(store: str | Path | EventStore, reference_cutoff: datetime,
                  live_start: datetime, live_end: datetime, *,
                  spec: FeatureSpec | None = None, settings: DriftSettings | None = None,
                  reference: DriftProfile | None = None, memory_limit: str | None = None
                  ) -> DriftReport:
    """Drift of the customers active in [live_start, live_end) against those active in the
    window of the same length ending at ``reference_cutoff`` (or against ``reference``, say
    the champion's training profile, when given). ``report.alarm`` is the trigger;
    ``report.reason()`` says what moved."""
    if live_end <= live_start:
        raise ConfigError(f"drift window: live_end {live_end} is not after live_start "
                          f"{live_start}")
    spec = spec or load_spec()
    settings = settings or load_drift_settings()
    days = (live_end - live_start).total_seconds() / 86_400
    es = (store if isinstance(store, EventStore)
          else EventStore(store, read_only=True, memory_limit=memory_limit))
    try:
        if reference is None:
            ref = active_features(es, spec, reference_cutoff, days)
            if ref.empty:
                raise ConfigError(f"drift reference: no customer active in the {days:g} days "
                                  f"before {reference_cutoff}")
            reference = fit_profile(reference_rows(ref, settings), settings)
        live = active_features(es, spec, live_end, days)
    finally:
        if es is not store:
            es.close()
    return compare(reference, live, settings, live_start, live_end)


def champion_profile(client: MlflowClient, alias: str = "champion") -> DriftProfile | None:
    """The training profile the churn champion was logged with (None: no champion, or one
    trained before profiles were logged)."""
    version = alias_version(client, target("churn", ()).registered_name, alias)
    data = load_run_dict(client, version, PROFILE_ARTIFACT) if version is not None else None
    return DriftProfile.from_dict(data) if data is not None else None


def drift_check(store: str | Path, until: datetime, days: float, spec: FeatureSpec,
                settings: DriftSettings | None = None, memory_limit: str | None = None
                ) -> Callable[[], str | None]:
    """A retraining trigger: the customers active in the ``days`` before ``until`` against those
    active in the ``days`` before that, on the same store; the reason when something alarms,
    else None.

    Not against the champion's training profile: that covers every customer seen before each
    training cutoff, while the live window holds only the active ones, and that difference
    alarms on any world, shifted or not (docs/drift.md). Both sides drawn by one rule, only a
    change in behaviour between the two windows separates them."""
    def check() -> str | None:
        start = until - timedelta(days=days)
        with memory_errors(f"comparing the {days:g} days before {until.isoformat()} of "
                           f"{store} with those before", memory_limit):
            report = drift_between(store, start, start, until, spec=spec, settings=settings,
                                   memory_limit=memory_limit)
        return report.reason() if report.alarm else None
    return check
