"""Training frames from feature and label snapshots: one row per (customer, cutoff).

Snapshots are read by (feature definition hash, cutoff; labels also by horizon and churn gap);
a missing one is computed from the event store and written first, so `journey train` works on
a fresh store and reuses whatever `journey features` / `journey labels` already produced, as
long as the store still holds the events and attributes they were made from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from features.errors import ConfigError
from features.memory_errors import memory_errors
from features.snapshot import Snapshot, data_fingerprint, find_snapshot, write_snapshot
from features.spec import FeatureSpec
from features.store import EventStore
from models.targets import SURVIVAL
from training.experiment import Experiment

Log = Callable[[str], None]
LABEL_COLUMNS = (
    "next_stage",
    "converted",
    "churned_inactive",
    "churned_no_purchase",
    "churn_days",
    "churn_observed",
)


def midnight(day: date) -> datetime:
    """A cutoff given as a date: its midnight, UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class SnapshotSource:
    """Reads snapshots under ``root``, computing missing ones from the store at ``store``."""

    store: Path
    root: Path
    spec: FeatureSpec
    log: Log = print
    # What DuckDB may hold computing snapshots (a command passes JOURNEY_STORE_MEMORY; None:
    # DuckDB's default, 80 % of RAM).
    memory_limit: str | None = None
    _es: EventStore | None = field(default=None, repr=False)

    def _store(self) -> EventStore:
        if self._es is None:
            if not self.store.exists():
                raise ConfigError(f"event store not found: {self.store}; run `journey ingest`")
            self._es = EventStore(self.store, read_only=True, memory_limit=self.memory_limit)
        return self._es

    def _time_range(self) -> tuple[datetime | None, datetime | None]:
        """The store's first and newest event times (naive UTC)."""
        with memory_errors(f"reading the event store {self.store}", self.memory_limit):
            return self._store().time_range()

    def close(self) -> None:
        if self._es is not None:
            self._es.close()
            self._es = None

    def features(self, cutoff: datetime) -> Snapshot:
        """The features snapshot as of ``cutoff``; computed when missing or stale, and
        running out of memory doing it ends the command with one line (``memory_errors``)."""
        doing = f"computing the features of {self.store} as of {cutoff.isoformat()}"
        with memory_errors(doing, self.memory_limit):
            return self._features(cutoff)

    def _features(self, cutoff: datetime) -> Snapshot:
        data = data_fingerprint(self._store(), cutoff)
        try:
            snap = find_snapshot(self.root, "features", self.spec, cutoff)
            if self._same_data(snap, data):
                return snap
        except ConfigError:
            pass
        from features.batch import BatchEngine

        self.log(f"computing features as of {cutoff.date()} ...")
        table = BatchEngine(self._store(), self.spec).features(cutoff)
        return write_snapshot(self.root, "features", table, self.spec, cutoff,
                              engine="duckdb", store=str(self.store), data=data)

    def labels(self, cutoff: datetime, horizon: int, churn_gap: int) -> Snapshot:
        """The labels snapshot of [cutoff, +horizon), as ``features`` gives features."""
        doing = (f"computing the labels of {self.store} for [{cutoff.isoformat()}, "
                 f"+{horizon}d)")
        with memory_errors(doing, self.memory_limit):
            return self._labels(cutoff, horizon, churn_gap)

    def _labels(self, cutoff: datetime, horizon: int, churn_gap: int) -> Snapshot:
        # Checked before a snapshot is reused too: `journey labels` writes one for a window
        # that has not fully happened yet (with a warning), and training must not judge on it
        # without a word, or at all when more than the day's slack is missing.
        end = cutoff + timedelta(days=horizon)
        warning = unobserved_warning(cutoff, horizon, self.check_observed(end))
        if warning is not None:  # within the day's slack: said, as `journey labels` says it
            self.log(warning)
        data = data_fingerprint(self._store(), end)
        try:
            snap = find_snapshot(self.root, "labels", self.spec, cutoff, horizon, churn_gap)
            if snap.manifest.get("churn_gap_days") == churn_gap and self._same_data(snap, data):
                return snap
        except ConfigError:
            pass
        from features.labels import labels

        self.log(f"computing labels for [{cutoff.date()}, +{horizon}d) ...")
        table = labels(self._store(), self.spec, cutoff, horizon, churn_gap)
        return write_snapshot(self.root, "labels", table, self.spec, cutoff, horizon,
                              churn_gap_days=churn_gap, store=str(self.store), data=data)

    def _same_data(self, snap: Snapshot, data: dict[str, object]) -> bool:
        """A snapshot is reused only when made from the same events and attributes (another
        store's snapshot under the same --out, one made before late events arrived, before the
        store was loaded again with other contents or before an attribute load changed a
        value, is computed again; so is one whose manifest predates the contents hash)."""
        made = snap.manifest.get("data")
        if made == data:
            return True
        what = ("an unrecorded event set" if made is None else
                f"{made.get('events', 0):,} events up to {made.get('newest')}")
        now = f"{data['events']:,} up to {data['newest']}"
        if made is not None and made.get("content") != data.get("content"):
            what += (f", contents {made['content']}" if made.get("content") else
                     ", contents not recorded (made by an older Journey: computed again once)")
            now += f", contents {data.get('content')}"
        if made is not None and made.get("attributes") != data.get("attributes"):
            what += f", {_attributes(made.get('attributes'))}"
            now += f", {_attributes(data.get('attributes'))}"
        self.log(f"{snap.path.parent.name}/{snap.path.name} was made from {what}; "
                 f"{self.store} has {now}: computing it again")
        return False

    def latest_event(self) -> datetime:
        """The time of the store's newest event (UTC)."""
        latest = self._time_range()[1]
        if latest is None:
            raise ConfigError(f"the event store {self.store} has no events")
        return latest.replace(tzinfo=UTC)

    def check_started(self, cutoffs: list[date], what: str) -> None:
        """Refuse cutoffs at or before the store's first event: nobody is seen before them, so
        they would add no rows without a word."""
        first = self._time_range()[0]
        early = [d for d in sorted(cutoffs)
                 if first is None or midnight(d) <= first.replace(tzinfo=UTC)]
        if early:
            raise ConfigError(
                f"{what}: {', '.join(map(str, early))} is not after the store's first event "
                f"({first}): no customer is seen before it; choose later cutoffs")

    def check_observed(self, end: datetime) -> datetime:
        """Refuse a label window that ends after the store's events; return the newest event.

        A day's slack: a small store's last day may be quiet, and a daily batch feed holds
        the day before the run, so refusing would stop a daily retrain. The labels then miss
        that last stretch's outcomes, which ``labels`` says (``unobserved_warning``)."""
        latest = self._time_range()[1]
        if latest is None or latest.replace(tzinfo=UTC) < end - timedelta(days=1):
            raise ConfigError(
                f"the store's events end at {latest}, before {end.date()}: a label window "
                "would not be fully observed; choose earlier cutoffs or a shorter horizon"
            )
        return latest.replace(tzinfo=UTC)

    def frame(self, cutoff: datetime, horizon: int, churn_gap: int) -> pd.DataFrame:
        """Features joined to labels for customers seen before ``cutoff``."""
        feats = self.features(cutoff).read()
        labs = self.labels(cutoff, horizon, churn_gap).read()
        return _join(feats, labs).assign(cutoff=pd.Timestamp(cutoff))


def unobserved_warning(cutoff: datetime, horizon: int, newest: datetime | None) -> str | None:
    """The warning for labels of [T, T+H) when the store's newest event (UTC; naive as the
    store gives it, or aware) is before T+H, else None: an outcome after it is read as none
    (no churn seen, no conversion), so those labels may be wrong. `journey labels` and the
    snapshots training reads say the same."""
    end = cutoff + timedelta(days=horizon)
    if newest is not None and newest.replace(tzinfo=UTC) >= end:
        return None
    seen = f"end at {newest:%Y-%m-%d %H:%M:%S} UTC" if newest is not None else "are none"
    return (f"warning: the store's events {seen}, before T+H = {end:%Y-%m-%d %H:%M} UTC "
            f"(T = {cutoff:%Y-%m-%d %H:%M}, H = {horizon}d): the horizon is not fully "
            "observed, so late outcomes are missing from these labels")


def _attributes(fingerprint: object) -> str:
    """The attributes part of a data fingerprint, for the log."""
    if not isinstance(fingerprint, dict):
        return "no attributes"
    return f"attributes {fingerprint.get('rows', 0):,} values (hash {fingerprint.get('hash')})"


def _join(feats: pa.Table, labs: pa.Table) -> pd.DataFrame:
    joined = feats.join(labs.select(["customer_id", *LABEL_COLUMNS]), "customer_id",
                        join_type="inner")
    frame: pd.DataFrame = joined.sort_by("customer_id").to_pandas()
    return frame


def sample_ids(ids: pd.Series, n: int, seed: int) -> pd.Series:
    """A stable customer sample: the same customers at every cutoff for a given seed."""
    key = pd.util.hash_pandas_object(ids.astype(str) + f"#{seed}", index=False)
    return ids.isin(set(ids[key.rank(method="first") <= n]))


def feature_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """The feature columns of a joined frame (everything but ids, cutoff and labels)."""
    return tuple(c for c in frame.columns if c not in ("customer_id", "cutoff", *LABEL_COLUMNS))


@dataclass(frozen=True)
class Dataset:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    definition_hash: str
    feature_columns: tuple[str, ...]
    # The time_to_churn target's frames (its own horizon and cutoffs), when it is trained.
    survival: Dataset | None = None


def load_dataset(exp: Experiment, source: SnapshotSource) -> Dataset:
    """The experiment's train / valid / test frames (validation and test never sampled)."""
    if exp.targets == [SURVIVAL] and exp.survival is not None:  # only its own frames
        ds = load_dataset(exp.for_survival(), source)
        return replace(ds, survival=ds)
    h, gap = exp.horizon_days, exp.churn_gap_days
    # The latest window first: when the store cannot label it, say so before any snapshot of
    # the earlier cutoffs is computed (minutes on real data).
    source.check_observed(midnight(max(exp.cutoffs.test, exp.cutoffs.valid, *exp.cutoffs.train))
                          + timedelta(days=h))
    source.check_started(exp.cutoffs.train, f"experiment {exp.name}: cutoffs.train")
    parts = []
    for day in sorted(exp.cutoffs.train):
        part = source.frame(midnight(day), h, gap)
        if exp.sample_customers is not None:
            part = part[sample_ids(part["customer_id"], exp.sample_customers, exp.seed)]
        parts.append(part)
    train = pd.concat(parts, ignore_index=True)
    valid = source.frame(midnight(exp.cutoffs.valid), h, gap)
    test = source.frame(midnight(exp.cutoffs.test), h, gap)
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        if part.empty:
            raise ConfigError(f"experiment {exp.name}: the {name} cutoffs have no customers")
    survival = (load_dataset(exp.for_survival(), source)
                if SURVIVAL in exp.targets and exp.survival is not None else None)
    return Dataset(train, valid, test, source.spec.hash, feature_columns(test), survival)
