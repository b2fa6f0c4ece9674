"""Holdout evaluation of one model: metrics and the plots logged with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.metrics import binary_metrics, multiclass_metrics
from models.targets import Target
from training import plots

Floats = npt.NDArray[np.float64]
# Of the metrics ``metrics`` gives, those where higher is better (the others are losses).
HIGHER_IS_BETTER = ("roc_auc", "pr_auc", "macro_auc", "top1_accuracy", "lift_top_decile",
                    "capture_top_decile", "c_index")
Ints = npt.NDArray[np.int64]


def metrics(target: Target, y: Ints, proba: Floats) -> dict[str, float]:
    """Binary: ROC-AUC, PR-AUC, log loss, Brier, ECE, lift/capture at the top decile.
    Multiclass: macro AUC, log loss, top-1 accuracy, Brier, ECE (worst class)."""
    if target.kind == "multiclass":
        return multiclass_metrics(y, proba, target.classes)
    return binary_metrics(y, proba[:, 1])


def primary(target: Target, values: dict[str, float]) -> float:
    return float(values[target.primary_metric])


def better(target: Target, a: float, b: float, margin: float = 0.0) -> bool:
    """Whether score ``a`` beats ``b`` by more than ``margin`` on the target's primary metric."""
    return a > b + margin if target.higher_is_better else a < b - margin


def better_on(metric: str, a: float, b: float, margin: float = 0.0) -> bool:
    """Whether score ``a`` beats ``b`` by more than ``margin`` on ``metric``."""
    return a > b + margin if metric in HIGHER_IS_BETTER else a < b - margin


def write_plots(
    target: Target, y: Ints, proba: Floats, importances: pd.Series, out: Path
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [plots.importance_plot(importances.index[:30].tolist(),
                                     importances.to_numpy()[:30].tolist(),
                                     out / "feature_importance.png")]
    predicted = np.argmax(proba, axis=1)
    if target.kind == "binary":
        p = proba[:, 1]
        written += [
            plots.roc_plot(y, p, out / "roc.png", title=f"ROC — {target.name}"),
            plots.calibration_plot(y, p, out / "calibration.png"),
            plots.lift_plot(y, p, out / "lift.png"),
            plots.confusion_plot(y, predicted, ["no", "yes"], out / "confusion_matrix.png"),
        ]
        return written
    written += [
        plots.multiclass_roc_plot(y, proba, target.classes, out / "roc.png"),
        plots.confusion_plot(y, predicted, target.classes, out / "confusion_matrix.png"),
    ]
    for k, name in enumerate(target.classes):
        hit = (y == k).astype(np.int64)
        written.append(plots.calibration_plot(hit, proba[:, k], out / f"calibration_{name}.png"))
    return written
