"""Evaluation figures written as PNG files, for logging as MLflow artifacts.

Each function writes one figure to ``path`` and returns that path. Degenerate inputs (a
single class in y, no positives, no features) still produce a PNG carrying a note instead of
raising, so an evaluation run on a thin slice keeps its artifact set complete.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from models.metrics import (
    expected_calibration_error,
    lift_capture,
    reliability_table,
    validate_binary,
    validate_class_indices,
    validate_multiclass,
)

# Training runs on headless machines; selecting Agg before pyplot loads avoids any GUI backend.
matplotlib.use("Agg")
import matplotlib.pyplot as plt

FIGSIZE = (5.0, 4.0)
DPI = 100
# Margins in inches of the figures whose labels are the same whatever the data (the curves and
# the lift bars; counts are written short, 12k): tight_layout measures every label by drawing
# the figure once more, and without it a model's figures take ~21 % less time.
MARGINS = {"left": 0.8, "right": 0.3, "bottom": 0.6, "top": 0.4}


def _layout(fig: Figure, fixed: bool, hspace: float) -> None:
    """The fixed margins, or margins fitted to the figure's labels."""
    if not fixed:
        fig.tight_layout()
        return
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=MARGINS["left"] / w, right=1.0 - MARGINS["right"] / w,
                        bottom=MARGINS["bottom"] / h, top=1.0 - MARGINS["top"] / h,
                        hspace=hspace)


def _save(fig: Figure, path: Path, fixed: bool = False, hspace: float = 0.2) -> Path:
    """Write the figure as PNG, laid out (``_layout``), and release it (pyplot keeps every
    open figure alive)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _layout(fig, fixed, hspace)
        fig.savefig(path, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _note(ax: Axes, text: str) -> None:
    """Explain in the figure itself why it has no curve."""
    # A white box keeps the note readable where it crosses the reference diagonal.
    ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        transform=ax.transAxes,
        wrap=True,
        bbox={"facecolor": "white", "edgecolor": "grey", "boxstyle": "round"},
    )


def _diagonal(ax: Axes, label: str = "random") -> None:
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", linewidth=1, label=label)


def roc_plot(y: npt.ArrayLike, p: npt.ArrayLike, path: Path, title: str = "ROC") -> Path:
    """Binary ROC curve with its AUC in the legend, against the chance diagonal."""
    y_arr, p_arr = validate_binary(y, p)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _diagonal(ax)
    if y_arr.min() == y_arr.max():
        _note(ax, f"ROC undefined: y has only class {int(y_arr[0])}")
    else:
        fpr, tpr, _ = roc_curve(y_arr, p_arr)
        auc = float(roc_auc_score(y_arr, p_arr))
        ax.plot(fpr, tpr, label=f"AUC = {auc:.3f}")
    _roc_axes(ax, title)
    return _save(fig, path, fixed=True)


def _roc_axes(ax: Axes, title: str) -> None:
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")


def multiclass_roc_plot(
    y: npt.ArrayLike,
    proba: npt.ArrayLike,
    classes: Sequence[str],
    path: Path,
    title: str = "ROC (one-vs-rest)",
) -> Path:
    """One-vs-rest ROC curve for every class that has both positives and negatives in y."""
    y_arr, proba_arr = validate_multiclass(y, proba, classes)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _diagonal(ax)
    drawn = 0
    for c, name in enumerate(classes):
        is_c = (y_arr == c).astype(np.int64)
        if is_c.min() == is_c.max():
            continue
        fpr, tpr, _ = roc_curve(is_c, proba_arr[:, c])
        auc = float(roc_auc_score(is_c, proba_arr[:, c]))
        ax.plot(fpr, tpr, label=f"{name} (AUC = {auc:.3f})")
        drawn += 1
    if drawn == 0:
        _note(ax, "ROC undefined: y has a single class")
    _roc_axes(ax, title)
    return _save(fig, path, fixed=True)


def calibration_plot(y: npt.ArrayLike, p: npt.ArrayLike, path: Path, bins: int = 15) -> Path:
    """Reliability diagram (observed rate vs mean prediction per bin) over a count histogram."""
    mean_p, mean_y, counts = reliability_table(y, p, bins)
    ece = expected_calibration_error(y, p, bins)
    fig, (ax, ax_n) = plt.subplots(
        2, 1, figsize=(5.0, 5.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    _diagonal(ax, "perfectly calibrated")
    used = counts > 0
    ax.plot(mean_p[used], mean_y[used], marker="o", label="model")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Observed positive rate")
    ax.set_title(f"Calibration (ECE = {ece:.4f}, {bins} bins)")
    ax.legend(loc="upper left", fontsize="small")
    edges = np.linspace(0.0, 1.0, bins + 1)
    ax_n.bar(edges[:-1], counts, width=1.0 / bins, align="edge", edgecolor="white")
    ax_n.set_xlim(0.0, 1.0)
    ax_n.set_xlabel("Mean predicted probability")
    ax_n.set_ylabel("Count")
    ax_n.yaxis.set_major_formatter(EngFormatter(sep=""))  # 12k: the margin fits any count
    return _save(fig, path, fixed=True, hspace=0.15)


def _decile_lift(y_arr: npt.NDArray[np.int64], p_arr: npt.NDArray[np.float64]) -> list[float]:
    """Positive rate of each decile by descending p, divided by the overall rate."""
    order = np.argsort(-p_arr, kind="stable")
    base = float(y_arr.mean())
    # array_split leaves some deciles empty when n < 10; those get NaN (no bar).
    return [
        float(y_arr[chunk].mean()) / base if chunk.size else math.nan
        for chunk in np.array_split(order, 10)
    ]


def lift_plot(
    y: npt.ArrayLike, p: npt.ArrayLike, path: Path, title: str = "Lift by decile"
) -> Path:
    """Bar chart of positive-rate lift per decile of predicted p, with the random baseline."""
    y_arr, p_arr = validate_binary(y, p)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    deciles = np.arange(1, 11)
    ax.axhline(1.0, linestyle="--", color="grey", linewidth=1, label="random")
    if y_arr.sum() == 0:
        _note(ax, "Lift undefined: y has no positives")
    else:
        ax.bar(deciles, _decile_lift(y_arr, p_arr), label="model")
        _, capture = lift_capture(y_arr, p_arr, 0.1)
        title = f"{title} (top decile captures {capture:.1%})"
    ax.set_xticks(deciles)
    ax.set_xlabel("Decile of predicted probability (1 = highest)")
    ax.set_ylabel("Lift over base rate")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path, fixed=True)


def importance_plot(
    names: Sequence[str],
    values: Sequence[float],
    path: Path,
    top: int = 30,
    title: str = "Feature importance",
) -> Path:
    """Horizontal bars of the ``top`` features by value, largest at the top."""
    if len(names) != len(values):
        raise ValueError(f"names and values differ in length: {len(names)} != {len(values)}")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    vals = np.asarray(values, dtype=np.float64)
    order = np.argsort(-vals, kind="stable")[:top]
    # Grow with the bar count so 30 feature names stay legible.
    height = max(FIGSIZE[1], 0.25 * len(order) + 1.0)
    fig, ax = plt.subplots(figsize=(6.0, height))
    if order.size == 0:
        _note(ax, "No features")
    else:
        # barh draws bottom-up, so reverse to put the most important feature on top.
        shown = order[::-1]
        # Numeric positions, not categorical names, so duplicate names keep separate bars.
        ax.barh(np.arange(shown.size), vals[shown])
        ax.set_yticks(np.arange(shown.size), labels=[names[i] for i in shown])
        ax.tick_params(axis="y", labelsize="small")
    ax.set_xlabel("Importance")
    ax.set_title(title)
    return _save(fig, path)


def confusion_plot(
    y: npt.ArrayLike,
    yhat: npt.ArrayLike,
    classes: Sequence[str],
    path: Path,
    title: str = "Confusion matrix",
) -> Path:
    """Row-normalised confusion matrix heatmap (true class rows) annotated with counts."""
    k = len(classes)
    if k == 0:
        raise ValueError("classes is empty")
    y_arr = validate_class_indices(y, k)
    yhat_arr = validate_class_indices(yhat, k)
    if len(y_arr) != len(yhat_arr):
        raise ValueError(f"y and yhat differ in length: {len(y_arr)} != {len(yhat_arr)}")
    counts = confusion_matrix(y_arr, yhat_arr, labels=list(range(k)))
    totals = counts.sum(axis=1, keepdims=True)
    # Classes absent from y would divide by zero; show their row as all zeros instead.
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = max(FIGSIZE[0], 0.6 * k + 2.0)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Share of true class")
    for i in range(k):
        for j in range(k):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(
                j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize="small"
            )
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    return _save(fig, path)
