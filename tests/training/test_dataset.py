"""Training frames from snapshots: missing snapshots are computed from the store once and then
reused; the split is by time; customer sampling touches training rows only; a label window
the store does not cover, or a missing store, is a ConfigError."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from features.errors import ConfigError
from features.layout import CATEGORICAL
from features.schema import events_table
from features.snapshot import write_snapshot
from features.store import EventStore
from tests.training.world import CUTOFFS, SMALL, World, experiment
from training.dataset import LABEL_COLUMNS, Dataset, SnapshotSource, load_dataset, sample_ids

pytestmark = pytest.mark.slow  # the shared world takes a while to build (once per session)


def test_missing_snapshots_are_computed_once(world: World, tmp_path: Path) -> None:
    """Building the world computed every features/labels snapshot; loading again reuses them."""
    computed = [line for line in world.log if line.startswith("computing")]
    for day in [*CUTOFFS["train"], CUTOFFS["valid"], CUTOFFS["test"]]:
        assert f"computing features as of {day} ..." in computed
        assert f"computing labels for [{day}, +30d) ..." in computed
    assert len(computed) == 8
    lines: list[str] = []
    source = SnapshotSource(world.store, world.snapshots, world.spec, log=lines.append)
    try:
        ds = load_dataset(experiment(tmp_path, SMALL), source)
    finally:
        source.close()
    assert lines == []  # the store was only read to check the snapshots' data
    assert ds.definition_hash == world.spec.hash
    for kind in ("features", "labels"):
        assert (world.snapshots / kind / world.spec.hash).is_dir()


def test_frames_are_split_by_time(world: World, tmp_path: Path) -> None:
    source = SnapshotSource(world.store, world.snapshots, world.spec, log=lambda _: None)
    try:
        ds = load_dataset(experiment(tmp_path, SMALL), source)
    finally:
        source.close()
    train_days = sorted(ds.train["cutoff"].dt.strftime("%Y-%m-%d").unique())
    assert train_days == CUTOFFS["train"]
    assert set(ds.valid["cutoff"].dt.strftime("%Y-%m-%d")) == {CUTOFFS["valid"]}
    assert set(ds.test["cutoff"].dt.strftime("%Y-%m-%d")) == {CUTOFFS["test"]}
    for frame in (ds.train, ds.valid, ds.test):
        assert set(LABEL_COLUMNS) <= set(frame.columns)
        assert not frame.duplicated(["customer_id", "cutoff"]).any()
    # Customers are only there once they have been seen: the population grows over time.
    assert 0 < ds.train["cutoff"].value_counts().min() <= len(ds.valid) <= len(ds.test) <= 3000
    assert set(CATEGORICAL) <= set(ds.feature_columns)
    assert not {"customer_id", "cutoff", *LABEL_COLUMNS} & set(ds.feature_columns)
    # Every label has both outcomes in every window (otherwise calibration could not work).
    for frame in (ds.train, ds.valid, ds.test):
        assert frame["converted"].nunique() == 2 and frame["churned_inactive"].nunique() == 2
        assert frame["next_stage"].nunique() >= 5


def test_sampling_touches_training_rows_only(world: World, tmp_path: Path) -> None:
    full = load(world, tmp_path, SMALL)
    sampled = load(world, tmp_path, {**SMALL, "name": "sampled", "sample_customers": 500})
    per_cutoff = sampled.train.groupby("cutoff")["customer_id"].apply(set)
    assert all(len(ids) == 500 for ids in per_cutoff)
    pd.testing.assert_frame_equal(sampled.valid, full.valid)
    pd.testing.assert_frame_equal(sampled.test, full.test)
    # Stable by customer: whoever is sampled later and existed earlier was sampled earlier.
    first, second = per_cutoff.iloc[0], per_cutoff.iloc[1]
    earlier = set(full.train.loc[full.train["cutoff"] == per_cutoff.index[0], "customer_id"])
    assert second & earlier <= first
    assert len(first & second) > 400
    again = load(world, tmp_path, {**SMALL, "name": "sampled2", "sample_customers": 500})
    pd.testing.assert_frame_equal(again.train, sampled.train)


def test_sample_ids_is_deterministic_per_seed() -> None:
    ids = pd.Series([f"c{i}" for i in range(1000)])
    a, b = sample_ids(ids, 100, seed=1), sample_ids(ids, 100, seed=1)
    c = sample_ids(ids, 100, seed=2)
    assert a.sum() == 100
    assert a.equals(b)
    assert not a.equals(c)
    assert sample_ids(ids, 5000, seed=1).all()


def test_unobserved_label_window_raises(world: World, tmp_path: Path) -> None:
    """The simulated calendar ends on 2025-12-31: a test window to 2026-01-14 is not observed."""
    spec = {**SMALL, "name": "late",
            "cutoffs": {**CUTOFFS, "test": "2025-12-15"}}
    with pytest.raises(ConfigError, match="would not be fully observed"):
        load(world, tmp_path, spec)


def test_a_training_cutoff_before_the_first_event_is_refused(world: World,
                                                             tmp_path: Path) -> None:
    """It would add no rows without a word (nobody is seen before it)."""
    spec = {**SMALL, "name": "early",
            "cutoffs": {**CUTOFFS, "train": ["2020-01-01", *CUTOFFS["train"]]}}
    with pytest.raises(ConfigError, match=r"experiment early: cutoffs.train: 2020-01-01 is not "
                       r"after the store's first event \(2025-"):
        load(world, tmp_path, spec)


def test_an_unobserved_window_is_refused_before_any_snapshot_is_computed(
        world: World, tmp_path: Path) -> None:
    """Refused at once: the earlier cutoffs' snapshots (new ones here) are not computed first."""
    spec = {**SMALL, "name": "late-fresh",
            "cutoffs": {"train": ["2025-06-15"], "valid": "2025-08-15", "test": "2025-12-15"}}
    logged: list[str] = []
    source = SnapshotSource(world.store, tmp_path / "fresh", world.spec, log=logged.append)
    try:
        with pytest.raises(ConfigError, match="would not be fully observed"):
            load_dataset(experiment(tmp_path / "late-fresh", spec), source)
    finally:
        source.close()
    assert logged == []


def test_snapshots_of_other_data_are_computed_again(world: World, tmp_path: Path) -> None:
    """The same --out for another store (or after late events arrived) must not hand training
    the other data's snapshots: one late event before the second training cutoff makes every
    snapshot whose events reach past it be computed again, and only those."""
    store, snapshots = tmp_path / "events.duckdb", tmp_path / "snapshots"
    shutil.copy(world.store, store)
    shutil.copytree(world.snapshots, snapshots)
    late = datetime.fromisoformat(CUTOFFS["train"][1]).replace(tzinfo=UTC) - timedelta(days=3)
    with EventStore(store) as es:
        es.append(events_table([{"event_id": "late-1", "customer_id": "late", "ts": late,
                                 "event_type": "page_view", "channel": "web"}]))
    lines: list[str] = []
    source = SnapshotSource(store, snapshots, world.spec, log=lines.append)
    try:
        load_dataset(experiment(tmp_path, SMALL), source)
    finally:
        source.close()
    computed = [line for line in lines if line.startswith("computing")]
    first = CUTOFFS["train"][0]
    assert f"computing features as of {first} ..." not in computed  # its events are unchanged
    assert f"computing labels for [{first}, +30d) ..." in computed  # its window holds the event
    assert len(computed) == 7
    assert any("was made from" in line and "computing it again" in line for line in lines)


def test_a_reused_labels_snapshot_must_be_observed(world: World, tmp_path: Path) -> None:
    """`journey labels` writes a snapshot for a window past the data (with a warning); training
    refuses it as it refuses to compute one."""
    cutoff = datetime(2025, 12, 15, tzinfo=UTC)
    write_snapshot(tmp_path / "late-snaps", "labels",
                   pa.table({"customer_id": ["x"]}), world.spec, cutoff, 30, churn_gap_days=30)
    source = SnapshotSource(world.store, tmp_path / "late-snaps", world.spec,
                            log=lambda _: None)
    try:
        with pytest.raises(ConfigError, match="would not be fully observed"):
            source.labels(cutoff, 30, 30)
    finally:
        source.close()


def test_missing_store_raises(world: World, tmp_path: Path) -> None:
    source = SnapshotSource(tmp_path / "nowhere.duckdb", tmp_path / "snaps", world.spec,
                            log=lambda _: None)
    with pytest.raises(ConfigError, match="event store not found"):
        load_dataset(experiment(tmp_path, SMALL), source)


def load(world: World, tmp_path: Path, spec: dict[str, object]) -> Dataset:
    source = SnapshotSource(world.store, world.snapshots, world.spec, log=lambda _: None)
    try:
        return load_dataset(experiment(tmp_path / str(spec["name"]), spec), source)
    finally:
        source.close()
