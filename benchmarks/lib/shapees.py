"""Trafilea / Shapees, real and small: conversion within 14 days, rolling-origin evaluation.

The data (``../shared/data/trafilea-shapees-hackathon-events``, see its PROVENANCE.md) is a
Segment clickstream of 250 user ids from 2022-10-03 to 2024-04-11. The catch-all id
``d2876433-…`` (57 % of the events, not a person) is dropped before ingest, leaving 249 users.
Events go through Journey's own pipeline: the ``segment`` preset and the default taxonomy
(``Order Completed`` -> ``purchase``, the conversion event; the two pop-up event types are not
in the taxonomy and land in the rejects file), the event store, feature and label snapshots
(:class:`training.dataset.SnapshotSource`), :class:`training.experiment.Experiment` +
:func:`training.dataset.load_dataset`, and :func:`training.train.fit_model` for the logistic
baseline and a small LightGBM.

The split. The span is long (18 months) but thin: only 4-90 users have any history at a
given cutoff (160 of the 249 first appear in April 2024) and a 14-day window holds 0-6 buyers
among them. One train/valid/test split would be judged on a handful of positives, so this is a
rolling-origin evaluation over a fixed grid of midnight cutoffs 14 days apart. For each test
cutoff T: validation cutoff T - 14 d (early stopping and calibration), training cutoffs every
grid point up to T - 28 d, so every label a model learns from or is tuned on ends by T
(Experiment's own validation enforces it). The test predictions of all folds are pooled
(customer, cutoff) rows; each fold's model saw only earlier data. A fold is used when its
training cutoffs hold at least ``MIN_TRAIN_POSITIVES`` buyers and its validation window at
least one (calibration needs both outcomes) — both known at T, so no fold is chosen by its
test outcome. Skipped folds are reported.

Selection caveat. Every one of the 249 users has an event on 2024-04-11, the extract's last
day (the organisers apparently picked users active that day; 13 of the 36 buyers buy on it). A label
window containing that day is therefore not a normal future: every customer is known to come
back in it. The grid ends the last label window at 2024-04-11 00:00, so no window contains
the selection day, and the last day's events are never used (features are strictly before
their cutoff, and no cutoff is later than 2024-03-28). The population at each cutoff is still
"users who will be active on 2024-04-11", which no live deployment would know; figures from
this data are a pipeline check on real events, not an accuracy claim (PROVENANCE.md says so).

Calibration is Platt scaling (``sigmoid``) rather than the default ``auto``: validation windows
hold 1-6 buyers, on which isotonic regression makes a few flat steps that tie most rows.
Platt scaling is monotone within a fold, so a fold's ranking is the model's own unless the fit
on its validation window reverses it, which then counts against the model, as it should. It
does happen: in several folds LightGBM early-stops after 1-2 rounds (its scores take a few
values) and the unregularised Platt fit on one or two buyers gets a slope of about +-100, some
negative. ``calibration=`` lets a caller rerun with another method as a sensitivity check.

``fit_model``'s signature is changing in the working tree ((target, model, dataset,
experiment, spec) -> (target, model, dataset, spec, calibration, seed)); ``_fit`` calls
whichever is installed.

Uncertainty. ``*_auc_ci`` is :func:`models.metrics.bootstrap_ci` over the pooled rows (1000
resamples, percentile 95 %). The same customer appears at many cutoffs, so rows are not
independent; ``*_auc_ci_by_customer`` resamples customers (all of a customer's rows together)
and is the more honest interval. No revenue is used: ``events.csv`` has no revenue column (the
order amounts sit in ``order_completed.csv`` for 43 of the 98 orders only), so the revenue
features are empty.
"""

from __future__ import annotations

import csv
import gzip
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import rankdata

from features.mapping import load_preset
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from models.calibration import Method
from models.metrics import binary_metrics, bootstrap_ci
from models.targets import Target, target
from training.dataset import SnapshotSource, load_dataset, midnight
from training.experiment import Cutoffs, Experiment, ModelSpec
from training.train import fit_model

# benchmarks/lib/shapees.py: parents[2] is the repository; shared/ is its sibling.
REPO = Path(__file__).resolve().parents[2]
SHAPEES = REPO.parent / "shared" / "data" / "trafilea-shapees-hackathon-events"
EVENTS_FILE = "events.csv.gz"
CATCH_ALL_USER = "d2876433-8da4-4e4a-9ea6-a5a72e6a96bf"
USER_COLUMN = "user_id"

HORIZON_DAYS = 14
GRID_END = date(2024, 4, 11)  # the selection day: every label window ends by its midnight
FIRST_CUTOFF = date(2022, 10, 13)  # the first grid point with any history (data from 10-03)
MIN_TRAIN_POSITIVES = 5
N_BOOT = 1000
ALPHA = 0.05
CALIBRATION: Method = "sigmoid"
MODELS = {
    "lightgbm": ModelSpec(family="lightgbm", params={
        "num_leaves": 7, "min_data_in_leaf": 5, "learning_rate": 0.05,
        "early_stopping_rounds": 30, "num_threads": 1}),
    "baseline": ModelSpec(family="baseline"),
}
PREFIX = {"lightgbm": "shapees_conversion", "baseline": "shapees_baseline_conversion"}


class CachedSource(SnapshotSource):
    """A SnapshotSource that keeps each (cutoff, horizon, gap) frame: folds share cutoffs."""

    def __init__(self, store: Path, root: Path, spec: FeatureSpec) -> None:
        super().__init__(store, root, spec, log=lambda _: None)
        self._frames: dict[tuple[datetime, int, int], pd.DataFrame] = {}

    def frame(self, cutoff: datetime, horizon: int, churn_gap: int) -> pd.DataFrame:
        key = (cutoff, horizon, churn_gap)
        if key not in self._frames:
            self._frames[key] = super().frame(cutoff, horizon, churn_gap)
        return self._frames[key].copy()


@dataclass
class Fold:
    test: date
    valid: date
    train: list[date]


def grid(horizon_days: int = HORIZON_DAYS) -> list[date]:
    """Cutoffs ``horizon_days`` apart, the last one's window ending at GRID_END's midnight."""
    step = timedelta(days=horizon_days)
    days, day = [], GRID_END - step
    while day >= FIRST_CUTOFF:
        days.append(day)
        day -= step
    return sorted(days)


def write_events(source: Path, out: Path) -> tuple[int, int]:
    """Copy the events file without the catch-all user's rows; (rows kept, rows dropped)."""
    kept = dropped = 0
    with gzip.open(source, "rt", newline="", encoding="utf-8") as fin, \
            gzip.open(out, "wt", newline="", encoding="utf-8") as fout:
        reader = csv.reader(fin)
        header = next(reader)
        user = header.index(USER_COLUMN)
        writer = csv.writer(fout)
        writer.writerow(header)
        for row in reader:
            if row[user] == CATCH_ALL_USER:
                dropped += 1
                continue
            writer.writerow(row)
            kept += 1
    return kept, dropped


def ingest(data: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """A fresh event store of the Segment events minus the catch-all user."""
    work.mkdir(parents=True, exist_ok=True)
    filtered, store_path = work / "shapees_events.csv.gz", work / "shapees.duckdb"
    kept, dropped = write_events(data / EVENTS_FILE, filtered)
    store_path.unlink(missing_ok=True)
    with EventStore(store_path) as store:
        report = store.ingest(filtered, load_preset("segment"), load_taxonomy(),
                              work / "shapees_rejects.csv")
        row = store.con.execute("SELECT count(DISTINCT customer_id) FROM events").fetchone()
        customers = int(row[0]) if row else 0
        stored = store.count()
    return store_path, {
        "rows_kept": kept, "rows_dropped_catch_all": dropped,
        "rejected": dict(report.load.rejected), "stored": stored, "customers": customers,
    }


def _positives(source: SnapshotSource, t: Target, day: date, horizon: int) -> int:
    frame = source.frame(midnight(day), horizon, 30)
    y, known = t.encode(frame)
    return int(y[known].sum())


def folds(source: SnapshotSource, t: Target, horizon: int = HORIZON_DAYS
          ) -> tuple[list[Fold], list[dict[str, Any]]]:
    """Usable rolling folds and the skipped ones, judged on data known at each test cutoff."""
    days = grid(horizon)
    pos = {d: _positives(source, t, d, horizon) for d in days}
    used, skipped = [], []
    for i in range(2, len(days)):
        train, valid, test = days[: i - 1], days[i - 1], days[i]
        train_pos = sum(pos[d] for d in train)
        if train_pos < MIN_TRAIN_POSITIVES or pos[valid] < 1:
            if train_pos >= MIN_TRAIN_POSITIVES:  # before that, folds are simply too early
                skipped.append({"test": test.isoformat(), "reason": "no buyer in validation"})
            continue
        used.append(Fold(test, valid, train))
    return used, skipped


def _fit(t: Target, model: ModelSpec, ds: Any, exp: Experiment, spec: FeatureSpec) -> Any:
    return fit_model(t, model, ds, spec, calibration=exp.calibration, seed=exp.seed)[0]


def _customer_auc_ci(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64],
                     customers: npt.NDArray[Any], seed: int) -> tuple[float, float]:
    """AUC interval resampling customers (each with all of its rows) via bootstrap_ci."""
    codes, uniques = pd.factorize(pd.Series(customers))
    rows_of = [np.flatnonzero(codes == k) for k in range(len(uniques))]

    def metric(ids: npt.NDArray[Any], _: npt.NDArray[Any]) -> float:
        idx = np.concatenate([rows_of[int(k)] for k in ids])
        return _auc(y[idx], p[idx])

    ids = np.arange(len(uniques))
    return bootstrap_ci(ids, ids, metric, N_BOOT, ALPHA, seed)


def _auc(y: npt.NDArray[Any], p: npt.NDArray[Any]) -> float:
    """ROC-AUC as the Mann-Whitney statistic (ties count half), NaN with one class.

    Equal to sklearn's roc_auc_score; about 100x faster, which matters for 2 x 1000 resamples.
    """
    pos = np.asarray(y) == 1
    n1 = int(pos.sum())
    n0 = len(pos) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _figures(prefix: str, y: npt.NDArray[np.int64], p: npt.NDArray[np.float64],
             customers: npt.NDArray[Any], seed: int) -> dict[str, Any]:
    m = binary_metrics(y, p)
    lo, hi = bootstrap_ci(y, p, _auc, N_BOOT, ALPHA, seed)
    clo, chi = _customer_auc_ci(y, p, customers, seed)
    return {
        f"{prefix}_auc": round(m["roc_auc"], 4),
        f"{prefix}_auc_ci": [round(lo, 4), round(hi, 4)],
        f"{prefix}_auc_ci_by_customer": [round(clo, 4), round(chi, 4)],
        f"{prefix}_pr_auc": round(m["pr_auc"], 4),
        f"{prefix}_log_loss": round(m["log_loss"], 4),
        f"{prefix}_brier": round(m["brier"], 4),
        f"{prefix}_ece": round(m["ece"], 4),
    }


@dataclass(frozen=True)
class FoldRun:
    y: npt.NDArray[np.int64]
    ids: npt.NDArray[Any]
    preds: dict[str, npt.NDArray[np.float64]]
    summary: dict[str, Any]


def _run_fold(fold: Fold, source: SnapshotSource, t: Target, spec: FeatureSpec,
              calibration: Method, seed: int) -> FoldRun:
    """Fit every model on the fold's training cutoffs; predict its test cutoff."""
    exp = Experiment(
        name=f"shapees-{fold.test.isoformat()}", horizon_days=HORIZON_DAYS,
        targets=["conversion"], models=list(MODELS.values()), calibration=calibration,
        cutoffs=Cutoffs(train=fold.train, valid=fold.valid, test=fold.test), seed=seed,
    )
    ds = load_dataset(exp, source)
    y_test, known = t.encode(ds.test)
    x_test = ds.test[known]
    preds = {name: np.asarray(_fit(t, model, ds, exp, spec).predict_proba(x_test)[:, 1],
                              np.float64) for name, model in MODELS.items()}
    y_tr, _ = t.encode(ds.train)
    y_va, _ = t.encode(ds.valid)
    summary = {
        "test": fold.test.isoformat(), "valid": fold.valid.isoformat(),
        "train_first": fold.train[0].isoformat(), "train_cutoffs": len(fold.train),
        "train_rows": len(ds.train), "train_positives": int(y_tr.sum()),
        "valid_rows": len(ds.valid), "valid_positives": int(y_va.sum()),
        "test_rows": int(known.sum()), "test_positives": int(y_test[known].sum()),
    }
    return FoldRun(y_test[known], x_test["customer_id"].to_numpy(), preds, summary)


def shapees_quality(work: Path, seed: int = 0, calibration: Method = CALIBRATION
                    ) -> dict[str, Any]:
    """Conversion within 14 days on the Shapees events: pooled rolling-origin test figures.

    ``work`` receives the filtered events, the event store and the snapshots; ``seed`` drives
    the models and the bootstrap; ``calibration`` is there for sensitivity runs only.
    """
    events = SHAPEES / EVENTS_FILE
    if not events.is_file():
        raise FileNotFoundError(f"Trafilea/Shapees data not found: {events}")
    started = time.perf_counter()
    store, ingested = ingest(SHAPEES, work)
    spec = load_spec()
    t = target("conversion", spec.stages)
    source = CachedSource(store, work / "shapees_snapshots", spec)
    try:
        used, skipped = folds(source, t)
        runs = [_run_fold(fold, source, t, spec, calibration, seed) for fold in used]
    finally:
        source.close()
    if not runs:
        raise RuntimeError("no usable rolling fold: too few buyers before every test cutoff")
    y = np.concatenate([r.y for r in runs]).astype(np.int64)
    customers = np.concatenate([r.ids for r in runs])
    per_fold = [r.summary for r in runs]
    out: dict[str, Any] = {}
    for name in MODELS:
        p = np.concatenate([r.preds[name] for r in runs])
        out.update(_figures(PREFIX[name], y, p, customers, seed))
    out.update({
        "shapees_n": len(y),
        "shapees_positives": int(y.sum()),
        "shapees_base_rate": round(float(y.mean()), 4),
        "shapees_customers": ingested["customers"],
        "shapees_customers_evaluated": len(set(customers.tolist())),
        "shapees_events_stored": ingested["stored"],
        "shapees_rows_dropped_catch_all": ingested["rows_dropped_catch_all"],
        "shapees_rejected": ingested["rejected"],
        "shapees_excluded_user": CATCH_ALL_USER,
        "shapees_horizon_days": HORIZON_DAYS,
        "shapees_cutoffs": [f["test"] for f in per_fold],
        "shapees_folds": per_fold,
        "shapees_skipped_folds": skipped,
        "shapees_protocol": (
            f"rolling origin: grid of midnight cutoffs {HORIZON_DAYS} d apart from "
            f"{grid()[0]} to {grid()[-1]} (last window ends {GRID_END}, the selection day, "
            f"excluded); per test cutoff T: valid T-{HORIZON_DAYS}d, train every grid cutoff "
            f"<= T-{2 * HORIZON_DAYS}d; fold used if train has >= {MIN_TRAIN_POSITIVES} buyers "
            "and valid >= 1; test predictions pooled"
        ),
        "shapees_calibration": calibration,
        "shapees_bootstrap": {"n_boot": N_BOOT, "alpha": ALPHA, "ci": "percentile"},
        "shapees_seed": seed,
        "shapees_data": str(SHAPEES),
        "shapees_seconds": round(time.perf_counter() - started, 1),
    })
    return out
