"""CDNOW, real: will a customer buy between 1997-10-01 and 1998-06-30?

Strict protocol: only the calibration period (purchases before 1997-10-01) is ever ingested
into the event store the model sees, so no feature, training label or fit can touch the
holdout; the holdout labels are read from the raw file for scoring alone.

The pipeline is Journey's general one: feature snapshots, conversion labels, the LightGBM
model with early stopping and calibration on a later window. A 273-day horizon cannot fit
three disjoint windows into a 9-month calibration period, so the model learns the 91-day
purchase probability (cutoffs twice a month from 1997-02-01 to 05-01, validation 07-01,
whose window ends on 1997-09-29) and the 273-day answer chains three quarters: with no
purchase in a quarter, the customer's vector a quarter later is the same history seen from
a later cutoff, so P(no purchase in 273 d) = prod_k (1 - p91(history before T, as of T + 91k)),
a discrete-time hazard, still from calibration data only.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.lib.bgnbd_peer import CDNOW, bgnbd_scores, holdout_buyers
from features.mapping import load_preset
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from features.taxonomy import load_taxonomy
from models.metrics import binary_metrics
from models.targets import target
from training.dataset import Dataset, SnapshotSource, feature_columns
from training.experiment import ModelSpec
from training.train import fit_model

CALIBRATION_END = date(1997, 10, 1)
HOLDOUT_END = date(1998, 7, 1)
QUARTER = 91
STEPS = 3  # 3 x 91 = 273 days = the holdout
# Twice a month from February (the cohort arrived in Q1) while the window ends by 07-31.
TRAIN = [date(1997, m, d) for m in (2, 3, 4) for d in (1, 15)] + [date(1997, 5, 1)]
VALID = date(1997, 7, 1)
SPEC = Path(__file__).with_name("cdnow_features.yaml")


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def calibration_store(work: Path) -> Path:
    """Ingest the purchases before CALIBRATION_END (and nothing later) into a fresh store."""
    raw = pd.read_csv(CDNOW / "cdnow_master.csv.gz", dtype={"customer_id": str, "date": str})
    calib = raw[raw["date"] < CALIBRATION_END.strftime("%Y%m%d")]
    work.mkdir(parents=True, exist_ok=True)
    src, store = work / "cdnow_calibration.csv", work / "cdnow_calibration.duckdb"
    calib.to_csv(src, index=False)
    store.unlink(missing_ok=True)
    with EventStore(store) as es:
        es.ingest(src, load_preset("purchases"), load_taxonomy())
    return store


def _dataset(source: SnapshotSource) -> Dataset:
    def frame(day: date) -> pd.DataFrame:
        return source.frame(_at(day), QUARTER, 30)

    train = pd.concat([frame(d) for d in TRAIN], ignore_index=True)
    valid = frame(VALID)
    return Dataset(train, valid, valid, source.spec.hash, feature_columns(valid))


def _chained(model: Any, source: SnapshotSource) -> pd.DataFrame:
    """P(any purchase in the 273 days after CALIBRATION_END) per customer."""
    survive: pd.Series | None = None
    for k in range(STEPS):
        feats = source.features(_at(CALIBRATION_END + timedelta(days=QUARTER * k)))
        frame = feats.read().to_pandas()
        p = pd.Series(model.predict_proba(frame)[:, 1], index=frame["customer_id"])
        survive = (1 - p) if survive is None else survive * (1 - p.reindex(survive.index))
    assert survive is not None
    return pd.DataFrame({"customer_id": survive.index, "p_any": 1 - survive.to_numpy()})


def cdnow_quality(work: Path, seed: int = 0) -> dict[str, Any]:
    """Journey vs BG/NBD on CDNOW's 1997-10-01..1998-06-30 holdout, all 23,570 customers."""
    if not (CDNOW / "cdnow_master.csv.gz").is_file():
        raise FileNotFoundError(f"CDNOW data not found under {CDNOW}")
    started = time.perf_counter()
    spec: FeatureSpec = load_spec(SPEC)
    snapshots = work / "snapshots"
    shutil.rmtree(snapshots, ignore_errors=True)  # the store is rebuilt, so are its snapshots
    source = SnapshotSource(calibration_store(work), snapshots, spec, log=lambda _: None)
    t = target("conversion", spec.stages)
    results: dict[str, Any] = {}
    try:
        ds = _dataset(source)
        lgbm = {"num_leaves": 7, "min_data_in_leaf": 200, "learning_rate": 0.03}
        for spec_ in (ModelSpec(family="lightgbm", params=lgbm), ModelSpec(family="baseline")):
            model, _ = fit_model(t, spec_, ds, spec, seed=seed)
            results[spec_.family] = _chained(model, source)
    finally:
        source.close()
    raw = pd.read_csv(CDNOW / "cdnow_master.csv.gz", dtype={"customer_id": str, "date": str})
    tx = pd.DataFrame({"customer_id": raw["customer_id"],
                       "ts": pd.to_datetime(raw["date"], format="%Y%m%d").dt.tz_localize("UTC")})
    buyers = holdout_buyers(tx, CALIBRATION_END, HOLDOUT_END)
    peer, meta = bgnbd_scores(tx, CALIBRATION_END, HOLDOUT_END, work / "bgnbd")
    return _report(results, peer, meta, buyers, time.perf_counter() - started, seed)


def _report(results: dict[str, pd.DataFrame], peer: pd.DataFrame, meta: dict[str, Any],
            buyers: set[str], seconds: float, seed: int) -> dict[str, Any]:
    ours = results["lightgbm"].set_index("customer_id")["p_any"]
    base = results["baseline"].set_index("customer_id")["p_any"].reindex(ours.index)
    peer = peer.set_index("customer_id").reindex(ours.index)
    y = ours.index.isin(buyers).astype(np.int64)
    m_ours, m_base = binary_metrics(y, ours.to_numpy()), binary_metrics(y, base.to_numpy())
    m_peer = binary_metrics(y, np.clip(peer["p_any_purchase"].to_numpy(), 1e-6, 1 - 1e-6))
    from sklearn.metrics import roc_auc_score

    return {
        "cdnow_auc": round(m_ours["roc_auc"], 4),
        "cdnow_auc_bgnbd": round(float(roc_auc_score(y, peer["expected_purchases"])), 4),
        "cdnow_logloss": round(m_ours["log_loss"], 4),
        "cdnow_logloss_bgnbd": round(m_peer["log_loss"], 4),
        "cdnow_auc_baseline": round(m_base["roc_auc"], 4),
        "cdnow_logloss_baseline": round(m_base["log_loss"], 4),
        "cdnow_brier": round(m_ours["brier"], 4),
        "cdnow_brier_bgnbd": round(m_peer["brier"], 4),
        "cdnow_customers": len(y),
        "cdnow_buyers": int(y.sum()),
        "cdnow_bgnbd_params": {k: round(meta[k], 4) for k in ("r", "alpha", "a", "b")},
        "cdnow_protocol": "store holds purchases before 1997-10-01 only; 91-day model "
                          "(train twice a month 1997-02-01..05-01; valid 07-01) chained over "
                          "3 quarters",
        "cdnow_seed": seed,
        "cdnow_seconds": round(seconds, 1),
    }
