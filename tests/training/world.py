"""A small simulated world shared by the training and modelling-CLI tests, built once per test
process: 3000 customers over 365 days (seed 7), ingested into a DuckDB store, with the feature
and label snapshots of the small experiment below computed from it.

Also: helpers to write experiment specs, train into an MLflow home, and copy a trained
registry so a test can change aliases without touching the shared one.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from threadpoolctl import threadpool_limits

from features.mapping import identity_mapping
from features.simulator.run import SimSpec, simulate
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from training.dataset import Dataset, SnapshotSource, load_dataset
from training.experiment import Experiment, load_experiment
from training.promote import Decision
from training.tracking import Tracking
from training.train import Context, ModelResult, train_experiment
from training.uplift import Decisions, UpliftResult, load_decisions, train_uplift
from training.uplift_gate import UPLIFT_TARGETS, promote_uplift
from training.uplift_spec import UpliftExperiment, load_uplift_experiment

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before anything imports mlflow

CUSTOMERS, DAYS, SEED = 3000, 365, 7
CUTOFFS = {"train": ["2025-07-01", "2025-08-01"], "valid": "2025-09-01", "test": "2025-10-01"}
FAST_LGBM = {"learning_rate": 0.1, "max_rounds": 300, "min_data_in_leaf": 200}
# The small experiment: default.yaml's cutoffs and horizon, both families, every target.
SMALL: dict[str, Any] = {
    "name": "small",
    "horizon_days": 30,
    "cutoffs": CUTOFFS,
    "models": [
        {"family": "baseline", "features": ["rfm"], "params": {"C": 1.0}},
        {"family": "lightgbm", "params": FAST_LGBM},
    ],
    "seed": 42,
}
# The small time-to-churn experiment: default.yaml's survival section (91 days, weekly
# intervals), Kaplan-Meier and the hazard model.
SMALL_SURVIVAL: dict[str, Any] = {
    **SMALL,
    "name": "small-survival",
    "targets": ["time_to_churn"],
    "survival": {"horizon_days": 91, "interval_days": 7,
                 "cutoffs": {"train": ["2025-03-01", "2025-04-01"], "valid": "2025-07-01",
                             "test": "2025-10-01"}},
}
# The small uplift experiment: decision windows on the same calendar, both learners.
SMALL_UPLIFT: dict[str, Any] = {
    "name": "small-uplift",
    "horizon_days": 30,
    "control_rate": 0.05,
    "windows": {"train": {"start": "2025-03-01", "end": "2025-06-01"},
                "valid": {"start": "2025-07-01", "end": "2025-08-01"},
                "test": {"start": "2025-09-01", "end": "2025-09-22"}},
    "learners": [{"kind": "t", "params": FAST_LGBM}, {"kind": "x", "params": FAST_LGBM}],
    "seed": 42,
}
# MLflow and the CLI read these; a test must never see the developer's settings.
LEAKY_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID",
             "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@dataclass(frozen=True)
class World:
    root: Path
    store: Path
    snapshots: Path
    spec: FeatureSpec
    log: tuple[str, ...]  # what building the snapshots printed


_WORLD: dict[str, World] = {}


def build_world(factory: pytest.TempPathFactory) -> World:
    """The shared world (built on first use in this process, then reused)."""
    if "world" not in _WORLD:
        root = factory.mktemp("journey-world")
        simulate(SimSpec(CUSTOMERS, DAYS, seed=SEED), root / "sim", workers=1)
        store = root / "events.duckdb"
        with EventStore(store) as es:
            es.ingest(root / "sim" / "events", identity_mapping(), load_taxonomy())
            es.load_attributes(pq.read_table(root / "sim" / "customers"))
        spec = load_spec()
        lines: list[str] = []
        exp = experiment(root, SMALL)
        source = SnapshotSource(store, root / "snapshots", spec, log=lines.append)
        try:
            load_dataset(exp, source)  # computes every snapshot the tests read
        finally:
            source.close()
        _WORLD["world"] = World(root, store, root / "snapshots", spec, tuple(lines))
    return _WORLD["world"]


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.get('name', 'experiment')}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def experiment(folder: Path, spec: dict[str, Any]) -> Experiment:
    return load_experiment(write_spec(folder, spec))


def dataset(world: World, exp: Experiment) -> Dataset:
    """The experiment's frames, read from the world's snapshots (the store opens only if a
    snapshot is missing)."""
    source = SnapshotSource(world.store, world.snapshots, world.spec, log=lambda _: None)
    try:
        return load_dataset(exp, source)
    finally:
        source.close()


def source(world: World) -> SnapshotSource:
    return SnapshotSource(world.store, world.snapshots, world.spec, log=lambda _: None)


def copy_registry(tracking: Tracking, home: Path) -> Tracking:
    """A copy of ``tracking``'s SQLite database under ``home`` (runs, models, aliases).

    Artifacts stay where they are (the database refers to them by absolute URI), so models
    load from the copy; whatever a test changes in the copy leaves the original untouched.
    """
    copy = Tracking.local(home)
    src = Path(tracking.tracking_uri.removeprefix("sqlite:///"))
    dst = Path(copy.tracking_uri.removeprefix("sqlite:///"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    return copy


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS and OpenMP on one thread while the block runs.

    The two cores are shared with other work, and spinning worker threads on a busy core make
    a logistic fit or a boosting round tens of times slower. Applied again right before
    training, because numba's parallel feature kernels (run while the world is built) reset
    the OpenMP thread count that LightGBM then uses. LightGBM is handed an explicit count,
    which follows ``OMP_NUM_THREADS`` (models.threads), so that is set too.
    """
    import lightgbm  # noqa: F401 -- load the OpenMP and BLAS libraries before limiting them
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    with threadpool_limits(1), pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        yield


@contextmanager
def clean_env() -> Iterator[None]:
    """No JOURNEY_* or MLflow run settings from the outside for the duration."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("JOURNEY_") or name in LEAKY_ENV:
                mp.delenv(name)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield


@dataclass(frozen=True)
class Trained:
    home: Path
    tracking: Tracking
    exp: Experiment
    spec_file: Path
    ds: Dataset
    results: tuple[ModelResult, ...]
    log: tuple[str, ...]

    def result(self, target: str, family: str) -> ModelResult:
        return next(r for r in self.results if (r.target, r.family) == (target, family))


def train_into(world: World, home: Path, spec: dict[str, object],
               tracking: Tracking | None = None) -> Trained:
    exp = experiment(home / "spec", spec)
    ds = dataset(world, exp)
    tracking = tracking or Tracking.local(home)
    lines: list[str] = []
    spec_file = home / "spec" / f"{exp.name}.yaml"
    # From inside the home: MLflow resolves its Default experiment's ./mlruns against the
    # working directory, and model runs currently land there (see test_train_e2e).
    with clean_env(), pytest.MonkeyPatch.context() as mp, one_thread():
        mp.chdir(home)
        results = train_experiment(exp, ds, Context(tracking, world.spec, spec_file,
                                                    lines.append))
    return Trained(home, tracking, exp, spec_file, ds, tuple(results), tuple(lines))


@dataclass(frozen=True)
class UpliftTrained:
    home: Path
    tracking: Tracking
    exp: UpliftExperiment
    decisions: Decisions
    results: tuple[UpliftResult, ...]
    promotions: tuple[Decision, ...]
    log: tuple[str, ...]


def train_uplift_into(world: World, home: Path, spec: dict[str, Any],
                      tracking: Tracking) -> UpliftTrained:
    """Train the uplift experiment into ``tracking`` and promote each outcome's challenger."""
    path = write_spec(home / "spec", spec)
    exp = load_uplift_experiment(path)
    lines: list[str] = []
    with clean_env(), pytest.MonkeyPatch.context() as mp, one_thread():
        mp.chdir(home)
        d = load_decisions(exp, world.store, world.spec, log=lines.append)
        results = train_uplift(exp, d, tracking, path, lines.append)
        promotions = promote_uplift(list(UPLIFT_TARGETS), tracking, world.store, world.spec, 0.0)
    return UpliftTrained(home, tracking, exp, d, tuple(results), tuple(promotions),
                         tuple(lines))
