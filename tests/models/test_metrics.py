"""models.metrics against scikit-learn, synthetic calibration cases and hand-worked examples."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from models.metrics import (
    binary_metrics,
    bootstrap_ci,
    expected_calibration_error,
    lift_capture,
    multiclass_metrics,
    reliability_table,
)

BINARY_KEYS = {
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "lift_top_decile",
    "capture_top_decile",
    "base_rate",
    "n",
}
CLASSES = ["browse", "cart", "buy"]


def noisy_binary(n: int, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Labels drawn from p, then p blurred so the scores are informative but imperfect."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, n)
    y = (rng.uniform(0.0, 1.0, n) < p).astype(np.int64)
    return y, np.clip(p + rng.normal(0.0, 0.2, n), 0.0, 1.0)


def random_multiclass(
    n: int, k: int, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    y = np.array([rng.choice(k, p=row) for row in proba], dtype=np.int64)
    return y, proba


def auc(y: npt.NDArray[Any], p: npt.NDArray[Any]) -> float:
    """ROC-AUC with NaN for a single-class resample (cheaper than the full binary_metrics)."""
    return math.nan if y.min() == y.max() else float(roc_auc_score(y, p))


# --- binary ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_matches_sklearn(seed: int) -> None:
    y, p = noisy_binary(2_000, seed)
    m = binary_metrics(y, p)
    assert set(m) == BINARY_KEYS
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)), rel=1e-9)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["base_rate"] == pytest.approx(y.mean())
    assert m["n"] == 2_000.0
    assert all(isinstance(v, float) for v in m.values())


def test_binary_accepts_bool_labels() -> None:
    y, p = noisy_binary(500, 3)
    assert binary_metrics(y.astype(bool), p) == binary_metrics(y, p)


def test_ece_of_calibrated_and_shifted_predictions() -> None:
    rng = np.random.default_rng(42)
    p = rng.uniform(0.0, 1.0, 200_000)
    y = (rng.uniform(0.0, 1.0, p.size) < p).astype(np.int64)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.clip(p + 0.2, 0.0, 1.0)) > 0.15


def test_ece_hand_worked() -> None:
    # bins=2: [0, 0.5) holds p=0.2, 0.4 with y=0, 1; [0.5, 1] holds p=0.6, 1.0 with y=1, 1.
    # ECE = 2/4 * |0.5 - 0.3| + 2/4 * |1.0 - 0.8| = 0.2
    y = np.array([0, 1, 1, 1])
    p = np.array([0.2, 0.4, 0.6, 1.0])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.2)
    mean_p, mean_y, counts = reliability_table(y, p, bins=2)
    assert counts.tolist() == [2, 2]  # p = 1.0 lands in the last bin
    assert mean_p.tolist() == pytest.approx([0.3, 0.8])
    assert mean_y.tolist() == pytest.approx([0.5, 1.0])


def test_ece_skips_empty_bins() -> None:
    mean_p, _, counts = reliability_table([1, 0], [0.95, 0.05], bins=10)
    assert counts.sum() == 2 and np.isnan(mean_p[4])
    assert expected_calibration_error([1, 0], [0.95, 0.05], bins=10) == pytest.approx(0.05)


def test_lift_capture_hand_worked() -> None:
    # 20 rows, 4 positives (base rate 0.2). Top 10% = 2 rows: p=0.9 (y=1), p=0.8 (y=0).
    # lift = 0.5 / 0.2 = 2.5, capture = 1 / 4.
    p = np.arange(20) / 100.0
    p[19], p[18] = 0.9, 0.8
    y = np.zeros(20, dtype=np.int64)
    y[[19, 0, 1, 2]] = 1
    lift, capture = lift_capture(y, p, 0.1)
    assert lift == pytest.approx(2.5)
    assert capture == pytest.approx(0.25)
    # Top 25% = 5 rows: the two above plus p=0.17, 0.16, 0.15, all negatives.
    lift, capture = lift_capture(y, p, 0.25)
    assert (lift, capture) == pytest.approx((1.0, 0.25))


def test_lift_capture_ceil_and_stable_ties() -> None:
    y = np.zeros(100, dtype=np.int64)
    y[7] = 1
    p = np.full(100, 0.5)
    # ceil(0.07 * 100) must be 7 although 0.07 * 100 == 7.000000000000001 in floating point;
    # with every p tied the stable order takes rows 0..6, which miss the positive at row 7.
    assert lift_capture(y, p, 0.07) == (0.0, 0.0)
    # ceil(0.075 * 100) = 8 rows, which now include row 7.
    lift, capture = lift_capture(y, p, 0.075)
    assert capture == 1.0 and lift == pytest.approx(12.5)


def test_lift_capture_without_positives_is_nan() -> None:
    lift, capture = lift_capture([0, 0, 0], [0.1, 0.5, 0.9])
    assert math.isnan(lift) and math.isnan(capture)


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_gives_nan_auc_and_finite_log_loss(label: int) -> None:
    y = np.full(50, label)
    p = np.linspace(0.0, 1.0, 50)  # includes exact 0 and 1: log loss must still be finite
    m = binary_metrics(y, p)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 0
    assert math.isfinite(m["brier"]) and math.isfinite(m["ece"])
    assert m["base_rate"] == float(label)


# --- multiclass -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_matches_sklearn(seed: int) -> None:
    y, proba = random_multiclass(1_500, 3, seed)
    m = multiclass_metrics(y, proba, CLASSES)
    expected_auc = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert m["macro_auc"] == pytest.approx(expected_auc, abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, proba, labels=[0, 1, 2]), rel=1e-9)
    assert m["top1_accuracy"] == pytest.approx(np.mean(proba.argmax(axis=1) == y))
    onehot = np.eye(3)[y]
    assert m["brier"] == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    for c, name in enumerate(CLASSES):
        assert m[f"auc_{name}"] == pytest.approx(roc_auc_score(y == c, proba[:, c]))
    worst = max(expected_calibration_error(y == c, proba[:, c]) for c in range(3))
    assert m["ece"] == pytest.approx(worst)
    assert m["n"] == 1_500.0
    assert set(m) == {"macro_auc", "log_loss", "top1_accuracy", "brier", "ece", "n"} | {
        f"auc_{c}" for c in CLASSES
    }


def test_multiclass_missing_class_and_single_class() -> None:
    _, proba = random_multiclass(40, 3, 5)
    y = np.array([0, 1] * 20)  # class "buy" never occurs
    m = multiclass_metrics(y, proba, CLASSES)
    assert math.isnan(m["auc_buy"])
    assert m["macro_auc"] == pytest.approx((m["auc_browse"] + m["auc_cart"]) / 2)
    assert math.isfinite(m["log_loss"])

    only = multiclass_metrics(np.zeros(40, dtype=np.int64), proba, CLASSES)
    assert math.isnan(only["macro_auc"])
    assert all(math.isnan(only[f"auc_{c}"]) for c in CLASSES)
    assert math.isfinite(only["log_loss"])


def test_multiclass_log_loss_renormalises_and_clips() -> None:
    y = np.array([0, 1])
    proba = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) / 2.0  # row 1 sums to 0.5
    m = multiclass_metrics(y, proba, CLASSES)
    # Row 0 is ~[1, 0, 0] (loss ~0); row 1 clips to [1e-15, 1e-15, 0.5] and renormalises.
    assert m["log_loss"] == pytest.approx(-math.log(1e-15 / (0.5 + 2e-15)) / 2, rel=1e-6)


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_ci_contains_estimate_and_narrows() -> None:
    widths = []
    for n in (300, 5_000):
        y, p = noisy_binary(n, 7)
        lo, hi = bootstrap_ci(y, p, auc, n_boot=200, seed=1)
        assert lo <= auc(y, p) <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_bootstrap_ci_is_reproducible_and_works_on_matrices() -> None:
    y, proba = random_multiclass(300, 3, 2)

    def top1(yy: npt.NDArray[Any], pp: npt.NDArray[Any]) -> float:
        return float(np.mean(pp.argmax(axis=1) == yy))

    first = bootstrap_ci(y, proba, top1, n_boot=100, seed=3)
    assert first == bootstrap_ci(y, proba, top1, n_boot=100, seed=3)
    assert first != bootstrap_ci(y, proba, top1, n_boot=100, seed=4)
    assert first[0] <= multiclass_metrics(y, proba, CLASSES)["top1_accuracy"] <= first[1]


def test_bootstrap_ci_drops_nan_resamples() -> None:
    # 1 positive in 20 rows: ~36% of resamples miss it and give NaN AUC, the rest are usable.
    y = np.zeros(20, dtype=np.int64)
    y[0] = 1
    p = np.linspace(1.0, 0.0, 20)
    lo, hi = bootstrap_ci(y, p, auc, n_boot=200)
    assert lo == hi == 1.0


def test_bootstrap_ci_raises_when_mostly_undefined() -> None:
    # A single-class y makes every resample's AUC NaN.
    with pytest.raises(ValueError, match="bootstrap resamples"):
        bootstrap_ci(np.zeros(20), np.linspace(0, 1, 20), auc, n_boot=50)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], "differ in length"),
        ([], [], "empty"),
        ([0, 1], [0.5, 1.2], r"\[0, 1\]"),
        ([0, 1], [-0.1, 0.5], r"\[0, 1\]"),
        ([0, 1], [0.5, float("nan")], "NaN"),
        ([0, 2], [0.5, 0.5], "0/1"),
        ([[0, 1]], [[0.5, 0.5]], "1-D"),
    ],
)
def test_binary_bad_input_raises(y: Any, p: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        binary_metrics(y, p)


def test_probability_slack_is_tolerated() -> None:
    m = binary_metrics([0, 1], [-1e-9, 1.0 + 1e-9])
    assert m["roc_auc"] == 1.0


@pytest.mark.parametrize(
    ("y", "proba", "classes", "match"),
    [
        ([0, 1], np.full((2, 2), 0.5), CLASSES, "shape"),
        ([0, 1, 2], np.full((2, 3), 1 / 3), CLASSES, "shape"),
        ([0, 3], np.full((2, 3), 1 / 3), CLASSES, r"0\.\.2"),
        ([0, 0.5], np.full((2, 3), 1 / 3), CLASSES, "integer"),
        ([0, 1], np.full((2, 3), 1 / 3), ["a", "a", "b"], "unique"),
        ([0, 0], np.full((2, 1), 1.0), ["a"], "at least 2"),
        ([0, 1], np.array([[0.5, 0.5, 1.5], [0.2, 0.2, 0.6]]), CLASSES, r"\[0, 1\]"),
    ],
)
def test_multiclass_bad_input_raises(y: Any, proba: Any, classes: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        multiclass_metrics(y, proba, classes)


def test_other_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="fraction"):
        lift_capture([0, 1], [0.2, 0.8], fraction=0.0)
    with pytest.raises(ValueError, match="bins"):
        expected_calibration_error([0, 1], [0.2, 0.8], bins=0)
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_ci([0, 1], [0.5], auc)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci([0, 1], [0.2, 0.8], auc, alpha=1.0)
