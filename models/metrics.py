"""Evaluation metrics for calibrated probability models (binary and multiclass).

Everything here is pure numpy / scikit-learn and returns plain floats so the results can be
logged to MLflow as-is. Metrics that are undefined for the data at hand (an AUC when ``y``
holds a single class, lift when there are no positives) come back as NaN rather than raising,
because small evaluation slices routinely hit those cases and a crashed training run is worse
than a missing number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Metric = Callable[[npt.NDArray[Any], npt.NDArray[Any]], float]

# Probabilities computed in float32 or summed from parts can land a hair outside [0, 1];
# rejecting those would be pedantic, anything further out is a real bug upstream.
PROB_SLACK = 1e-6
# Clip for log loss so a confident wrong prediction costs ~34.5 nats instead of infinity.
LOG_LOSS_EPS = 1e-15


def validate_binary(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    """Check binary labels and probabilities; return them as (int 0/1, float in [0, 1]) arrays.

    Raises ValueError naming the problem: shapes, emptiness, labels not in {0, 1}, or
    probabilities that are not finite or fall outside [0, 1] beyond ``PROB_SLACK``.
    """
    y_arr = np.asarray(y)
    p_arr = np.asarray(p, dtype=np.float64)
    if y_arr.ndim != 1 or p_arr.ndim != 1:
        raise ValueError(f"y and p must be 1-D, got shapes {y_arr.shape} and {p_arr.shape}")
    if len(y_arr) != len(p_arr):
        raise ValueError(f"y and p differ in length: {len(y_arr)} != {len(p_arr)}")
    if len(y_arr) == 0:
        raise ValueError("y and p are empty")
    if not np.isin(y_arr, [0, 1]).all():
        bad = np.unique(y_arr[~np.isin(y_arr, [0, 1])])[:5]
        raise ValueError(f"binary y must be bool or 0/1, found values such as {bad.tolist()}")
    _check_probabilities(p_arr, "p")
    return y_arr.astype(np.int64), np.clip(p_arr, 0.0, 1.0)


def validate_class_indices(y: npt.ArrayLike, n_classes: int) -> IntArray:
    """Check a non-empty 1-D vector of class indices in 0..n_classes-1; return it as int64.

    Integer-valued floats (2.0) are accepted since labels often round-trip through float
    columns; anything else raises ValueError.
    """
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y_arr.shape}")
    if len(y_arr) == 0:
        raise ValueError("y is empty")
    if not (np.issubdtype(y_arr.dtype, np.integer) or np.issubdtype(y_arr.dtype, np.floating)):
        raise ValueError(f"y must hold integer class indices, got dtype {y_arr.dtype}")
    if not np.all(np.isfinite(y_arr)) or not np.all(y_arr == np.round(y_arr)):
        raise ValueError("y must hold integer class indices, found non-integer values")
    y_int = y_arr.astype(np.int64)
    if y_int.min() < 0 or y_int.max() >= n_classes:
        raise ValueError(
            f"class indices must lie in 0..{n_classes - 1}, found {y_int.min()}..{y_int.max()}"
        )
    return y_int


def validate_multiclass(
    y: npt.ArrayLike, proba: npt.ArrayLike, classes: Sequence[str]
) -> tuple[IntArray, FloatArray]:
    """Check class indices and an (n, k) probability matrix; return (int, float) arrays.

    ``y`` holds integer indices 0..k-1 into ``classes`` (the column order of ``proba``).
    """
    k = len(classes)
    if k < 2:
        raise ValueError(f"need at least 2 classes, got {list(classes)}")
    if len(set(classes)) != k:
        raise ValueError(f"class names must be unique, got {list(classes)}")
    y_int = validate_class_indices(y, k)
    proba_arr = np.asarray(proba, dtype=np.float64)
    if proba_arr.shape != (len(y_int), k):
        raise ValueError(
            f"proba must have shape (n, len(classes)) = ({len(y_int)}, {k}), got {proba_arr.shape}"
        )
    _check_probabilities(proba_arr, "proba")
    return y_int, np.clip(proba_arr, 0.0, 1.0)


def _check_probabilities(p_arr: FloatArray, name: str) -> None:
    if not np.all(np.isfinite(p_arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(p_arr.min()), float(p_arr.max())
    if lo < -PROB_SLACK or hi > 1.0 + PROB_SLACK:
        raise ValueError(f"{name} must lie in [0, 1], found values in [{lo}, {hi}]")


def reliability_table(
    y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 15
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Per equal-width bin on [0, 1]: (mean predicted, observed positive rate, count).

    Empty bins have NaN means and a zero count. p = 1.0 falls into the last bin.
    """
    y_arr, p_arr = validate_binary(y, p)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    idx = np.minimum((p_arr * bins).astype(np.int64), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=p_arr, minlength=bins)
    sum_y = np.bincount(idx, weights=y_arr.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(counts > 0, sum_p / counts, np.nan)
        mean_y = np.where(counts > 0, sum_y / counts, np.nan)
    return mean_p, mean_y, counts.astype(np.int64)


def expected_calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 15) -> float:
    """Binary ECE: sum over non-empty equal-width bins of (n_bin / n) * |rate - mean p|."""
    mean_p, mean_y, counts = reliability_table(y, p, bins)
    used = counts > 0
    weights = counts[used] / counts.sum()
    return float(np.sum(weights * np.abs(mean_y[used] - mean_p[used])))


def lift_capture(y: npt.ArrayLike, p: npt.ArrayLike, fraction: float = 0.1) -> tuple[float, float]:
    """(lift, capture) of the top ``fraction`` of rows by p; (NaN, NaN) without positives.

    The top set has ceil(fraction * n) rows (at least one); ties in p keep row order, so the
    result is deterministic for a given input.
    """
    y_arr, p_arr = validate_binary(y, p)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    n = len(y_arr)
    total_pos = int(y_arr.sum())
    if total_pos == 0:
        return math.nan, math.nan
    # Rounding first stops float noise from adding a row: 0.07 * 100 == 7.000000000000001.
    k = max(1, math.ceil(round(fraction * n, 9)))
    top = np.argsort(-p_arr, kind="stable")[:k]
    pos_top = int(y_arr[top].sum())
    lift = (pos_top / k) / (total_pos / n)
    return float(lift), pos_top / total_pos


def _binary_auc(y_arr: IntArray, score: FloatArray) -> float:
    """ROC-AUC, or NaN when y lacks one of the classes."""
    if y_arr.min() == y_arr.max():
        return math.nan
    return float(roc_auc_score(y_arr, score))


def binary_metrics(y: npt.ArrayLike, p: npt.ArrayLike) -> dict[str, float]:
    """Discrimination, calibration and ranking metrics of binary probabilities.

    Keys: roc_auc, pr_auc (average precision), log_loss, brier, ece, lift_top_decile,
    capture_top_decile, base_rate, n. The AUCs are NaN when y has a single class.
    """
    y_arr, p_arr = validate_binary(y, p)
    single_class = y_arr.min() == y_arr.max()
    pr_auc = math.nan if single_class else float(average_precision_score(y_arr, p_arr))
    clipped = np.clip(p_arr, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    lift, capture = lift_capture(y_arr, p_arr, 0.1)
    return {
        "roc_auc": _binary_auc(y_arr, p_arr),
        "pr_auc": pr_auc,
        # labels=[0, 1] keeps sklearn from refusing a slice that happens to hold one class.
        "log_loss": float(log_loss(y_arr, clipped, labels=[0, 1])),
        "brier": float(np.mean((p_arr - y_arr) ** 2)),
        "ece": expected_calibration_error(y_arr, p_arr),
        "lift_top_decile": lift,
        "capture_top_decile": capture,
        "base_rate": float(y_arr.mean()),
        "n": float(len(y_arr)),
    }


def multiclass_metrics(
    y: npt.ArrayLike, proba: npt.ArrayLike, classes: Sequence[str]
) -> dict[str, float]:
    """Metrics of an (n, k) class-probability matrix against class indices y.

    Keys: macro_auc, log_loss, top1_accuracy, brier, ece, n, plus auc_<class> per class.
    macro_auc averages the one-vs-rest AUCs that are defined (NaN if none is); ece is the
    worst one-vs-rest ECE so one number bounds the miscalibration of every class.
    """
    y_arr, proba_arr = validate_multiclass(y, proba, classes)
    k = len(classes)
    onehot = np.eye(k, dtype=np.float64)[y_arr]
    per_class = {
        f"auc_{name}": _binary_auc(onehot[:, c].astype(np.int64), proba_arr[:, c])
        for c, name in enumerate(classes)
    }
    defined = [v for v in per_class.values() if not math.isnan(v)]
    clipped = np.clip(proba_arr, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    # Renormalising makes log loss well defined for rows that do not quite sum to one.
    clipped /= clipped.sum(axis=1, keepdims=True)
    ece = max(expected_calibration_error(onehot[:, c], proba_arr[:, c]) for c in range(k))
    result = {
        "macro_auc": float(np.mean(defined)) if defined else math.nan,
        "log_loss": float(log_loss(y_arr, clipped, labels=list(range(k)))),
        "top1_accuracy": float(np.mean(np.argmax(proba_arr, axis=1) == y_arr)),
        "brier": float(np.mean(np.sum((proba_arr - onehot) ** 2, axis=1))),
        "ece": float(ece),
        "n": float(len(y_arr)),
    }
    result.update(per_class)
    return result


def bootstrap_ci(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    metric: Metric,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile (1 - alpha) confidence interval of ``metric(y, p)`` over row resamples.

    Rows are drawn with replacement (p may be 2-D, e.g. class probabilities). Resamples
    whose metric is NaN, such as a single-class draw for an AUC, are dropped; ValueError if
    fewer than half of the resamples are usable, as the interval would then be biased.
    """
    y_arr = np.asarray(y)
    p_arr = np.asarray(p)
    if y_arr.ndim == 0 or p_arr.ndim == 0:
        raise ValueError("y and p must be arrays, not scalars")
    n = len(y_arr)
    if n != len(p_arr):
        raise ValueError(f"y and p differ in length: {n} != {len(p_arr)}")
    if n == 0:
        raise ValueError("y and p are empty")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        stats[b] = metric(y_arr[idx], p_arr[idx])
    usable = stats[~np.isnan(stats)]
    if 2 * usable.size < n_boot:
        raise ValueError(
            f"only {usable.size} of {n_boot} bootstrap resamples gave a defined metric"
        )
    lo, hi = np.quantile(usable, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)
