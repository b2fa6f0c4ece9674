"""Live backtest: how predictions made at T fared once their horizon [T, T+H) has closed.

Pure evaluation of one (model version, prediction time) against realized labels, and the
results file both sides share: `journey backtest` (training/backtest.py) writes it under
``<home>/backtests``, the service reads it for ``GET /v1/backtest`` and the dashboard.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from features.errors import ConfigError
from models.metrics import binary_metrics, validate_binary

RESULTS_FILE = "backtest.json"
# Models whose score snapshots keep every customer's probability (the snapshot column of the
# positive class): next-stage keeps only its argmax, so it cannot be scored here.
SCORED_COLUMNS = {"churn": "churn", "conversion": "conversion"}
# What a prediction is scored against: the model version's registry tags, copied into each
# score snapshot's meta ("definitions") when it is scored.
DEFINITION_TAGS = {"horizon_days": "journey.horizon_days", "label": "journey.label",
                   "churn_gap_days": "journey.churn_gap_days"}
METRICS = ("roc_auc", "log_loss", "brier", "ece", "base_rate", "n")


def horizon_closed(as_of: datetime, horizon_days: int, observed_until: datetime) -> bool:
    """Whether every label of a prediction made at ``as_of`` is known by ``observed_until``."""
    return as_of + timedelta(days=horizon_days) <= observed_until


def decile_table(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> list[dict[str, float]]:
    """Reliability by predicted-probability decile (equal-count bins, lowest first): each bin's
    mean prediction, realized rate and size. Equal counts keep every bin populated where
    equal-width bins would leave most of a skewed churn score's range empty."""
    y_arr, p_arr = validate_binary(y, p)
    order = np.argsort(p_arr, kind="stable")
    out = []
    for k, rows in enumerate(np.array_split(order, min(bins, len(order)))):
        out.append({"bin": float(k + 1), "mean_predicted": float(p_arr[rows].mean()),
                    "observed_rate": float(y_arr[rows].mean()), "n": float(len(rows))})
    return out


def realized(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> dict[str, Any]:
    """Realized discrimination and calibration of binary predictions: ROC-AUC, log loss,
    Brier, ECE, the base rate and mean prediction, and the decile reliability table."""
    y_arr, p_arr = validate_binary(y, p)
    scores = binary_metrics(y_arr, p_arr)
    metrics = {k: scores[k] for k in METRICS}
    metrics["mean_predicted"] = float(p_arr.mean())
    return {"metrics": metrics, "reliability": decile_table(y_arr, p_arr, bins)}


def record_key(target: str, version: str, as_of: str) -> str:
    """One result per (model, version, prediction time): what makes a re-run idempotent."""
    return f"{target}|v{version}|{as_of}"


def load_results(folder: Path) -> list[dict[str, Any]]:
    """The stored results (empty when no backtest has run yet)."""
    path = folder / RESULTS_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable backtest results file ({exc})") from exc
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ConfigError(f"{path}: expected an object with a 'results' list")
    return results


def merge_results(old: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Old and new results, one per key (a new one replaces an old one), by target then time."""
    by_key = {r["key"]: r for r in old}
    by_key.update({r["key"]: r for r in new})
    return sorted(by_key.values(), key=lambda r: (r["target"], r["as_of"], r["model_version"]))


def save_results(folder: Path, results: list[dict[str, Any]]) -> Path:
    """Write the results atomically (a reader never sees half a file); NaN becomes null."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULTS_FILE
    tmp = folder / f".{RESULTS_FILE}.tmp"
    tmp.write_text(json.dumps({"results": _finite(results)}, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def series(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Results as time series: per target, per model version, points in time order."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in sorted(results, key=lambda r: r["as_of"]):
        out.setdefault(r["target"], {}).setdefault(str(r["model_version"]), []).append(r)
    return out
