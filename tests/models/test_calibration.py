"""models.calibration recovers calibration from synthetic, deliberately miscalibrated scores.

Binary: labels drawn from a true probability p, scores p**3 (monotone, much too low), so every
fitted map must bring the expected calibration error on fresh rows far below the raw one.
Multiclass: scores are softmax(3 * logits) of the true softmax(logits) (overconfident), so
temperature scaling must find a temperature near 3.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.calibration import METHODS, Method, ProbabilityCalibrator
from models.metrics import expected_calibration_error

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def binary_sample(n: int, seed: int) -> tuple[Floats, Ints]:
    """(miscalibrated scores p**3, labels drawn from p)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    y = (rng.uniform(0.0, 1.0, n) < p).astype(np.int64)
    return p**3, y


def softmax(z: Floats) -> Floats:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: Floats = e / e.sum(axis=1, keepdims=True)
    return out


def multiclass_sample(n: int, k: int, seed: int, sharpen: float = 3.0) -> tuple[Floats, Ints]:
    """(overconfident scores softmax(sharpen * z), labels drawn from softmax(z))."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, (n, k))
    truth = softmax(z)
    cum = truth.cumsum(axis=1)
    y = (rng.uniform(0.0, 1.0, (n, 1)) > cum).sum(axis=1).astype(np.int64)
    return softmax(sharpen * z), np.minimum(y, k - 1)


def worst_class_ece(y: Ints, proba: Floats) -> float:
    return max(
        expected_calibration_error((y == c).astype(np.int64), proba[:, c])
        for c in range(proba.shape[1])
    )


def log_loss(y: Ints, proba: Floats) -> float:
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))))


@pytest.fixture(scope="module")
def binary() -> tuple[tuple[Floats, Ints], tuple[Floats, Ints]]:
    """A fitting sample and a fresh sample to judge on."""
    return binary_sample(4000, seed=1), binary_sample(4000, seed=2)


@pytest.fixture(scope="module")
def multiclass() -> tuple[tuple[Floats, Ints], tuple[Floats, Ints]]:
    return multiclass_sample(4000, 4, seed=3), multiclass_sample(4000, 4, seed=4)


# -- binary ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "auto"])
def test_binary_calibration_recovers(
    method: Method, binary: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]
) -> None:
    (s_fit, y_fit), (s_new, y_new) = binary
    raw_ece = expected_calibration_error(y_new, s_new)
    assert raw_ece > 0.2  # the synthetic scores really are miscalibrated
    cal = ProbabilityCalibrator(method, seed=0).fit(s_fit, y_fit)
    out = cal.transform(s_new)
    assert out.shape == s_new.shape
    assert np.all((out > 0) & (out < 1))  # clipped away from 0 and 1: log loss stays finite
    assert expected_calibration_error(y_new, out) < min(0.06, raw_ece / 4)
    assert log_loss(y_new, out) < log_loss(y_new, s_new) - 0.1


def test_binary_calibration_keeps_the_ranking(
    binary: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]
) -> None:
    """Platt scaling is strictly monotone; isotonic is monotone (ties allowed)."""
    (s_fit, y_fit), (s_new, _) = binary
    order = np.argsort(s_new)
    platt = ProbabilityCalibrator("sigmoid").fit(s_fit, y_fit).transform(s_new)[order]
    iso = ProbabilityCalibrator("isotonic").fit(s_fit, y_fit).transform(s_new)[order]
    assert np.all(np.diff(platt) > 0)
    assert np.all(np.diff(iso) >= 0)


def test_platt_recovers_a_logistic_distortion() -> None:
    """Scores sigmoid(a * logit(p) + b) are exactly in Platt's family: near-perfect recovery."""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.98, 6000)
    y = (rng.uniform(0.0, 1.0, 6000) < p).astype(np.int64)
    scores = 1 / (1 + np.exp(-(2.5 * np.log(p / (1 - p)) - 1.0)))
    out = ProbabilityCalibrator("sigmoid").fit(scores[:3000], y[:3000]).transform(scores[3000:])
    assert np.max(np.abs(out - p[3000:])) < 0.08
    assert expected_calibration_error(y[3000:], out) < 0.03


def test_none_is_the_identity(binary: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]) -> None:
    (s_fit, y_fit), (s_new, _) = binary
    cal = ProbabilityCalibrator("none").fit(s_fit, y_fit)
    assert cal.method_ == "none"
    np.testing.assert_array_equal(cal.transform(s_new), s_new)


def test_auto_picks_by_cross_validated_log_loss(
    binary: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]
) -> None:
    (s_fit, y_fit), _ = binary
    cal = ProbabilityCalibrator("auto", seed=0).fit(s_fit, y_fit)
    assert set(cal.cv_log_loss_) == set(METHODS)
    assert all(np.isfinite(v) for v in cal.cv_log_loss_.values())
    assert cal.method_ == min(cal.cv_log_loss_, key=lambda m: cal.cv_log_loss_[m])
    assert cal.method_ != "none"  # p**3 is far from calibrated
    assert cal.cv_log_loss_["none"] > cal.cv_log_loss_[cal.method_] + 0.1
    # Same seed, same folds, same choice and numbers.
    again = ProbabilityCalibrator("auto", seed=0).fit(s_fit, y_fit)
    assert again.cv_log_loss_ == cal.cv_log_loss_


def test_auto_keeps_calibrated_scores_close() -> None:
    """On already calibrated scores whatever auto picks changes them little."""
    rng = np.random.default_rng(6)
    p = rng.uniform(0.02, 0.98, 4000)
    y = (rng.uniform(0.0, 1.0, 4000) < p).astype(np.int64)
    cal = ProbabilityCalibrator("auto").fit(p, y)
    assert cal.method_ in METHODS
    assert np.mean(np.abs(cal.transform(p) - p)) < 0.05


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "none"])
def test_explicit_method_skips_cross_validation(
    method: Method, binary: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]
) -> None:
    (s_fit, y_fit), _ = binary
    cal = ProbabilityCalibrator(method).fit(s_fit, y_fit)
    assert cal.method_ == method
    assert cal.cv_log_loss_ == {}


# -- multiclass --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "auto"])
def test_multiclass_calibration_recovers(
    method: Method, multiclass: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]
) -> None:
    (s_fit, y_fit), (s_new, y_new) = multiclass
    raw_ece = worst_class_ece(y_new, s_new)
    assert raw_ece > 0.1
    cal = ProbabilityCalibrator(method, seed=0).fit(s_fit, y_fit)
    out = cal.transform(s_new)
    assert out.shape == s_new.shape
    assert np.all(out > 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)
    assert worst_class_ece(y_new, out) < raw_ece / 3
    assert log_loss(y_new, out) < log_loss(y_new, s_new) - 0.1


def test_temperature_scaling_finds_the_sharpening(
    multiclass: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]
) -> None:
    """Scores sharpened by 3 need temperature ~3 to undo (log softmax(3z) / 3 = z + const)."""
    (s_fit, y_fit), _ = multiclass
    cal = ProbabilityCalibrator("sigmoid").fit(s_fit, y_fit)
    assert cal.map_.temperature == pytest.approx(3.0, rel=0.15)


def test_auto_multiclass_records_every_method(
    multiclass: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]
) -> None:
    (s_fit, y_fit), _ = multiclass
    cal = ProbabilityCalibrator("auto").fit(s_fit, y_fit)
    assert set(cal.cv_log_loss_) == set(METHODS)
    assert cal.method_ in ("sigmoid", "isotonic")
    assert cal.k_ == 4


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "auto"])
def test_multiclass_with_a_class_missing_from_validation(method: Method) -> None:
    """A class that never occurs in the calibration rows still gets a (small) probability."""
    scores, y = multiclass_sample(2000, 4, seed=7)
    keep = y != 3
    cal = ProbabilityCalibrator(method).fit(scores[keep], y[keep])
    out = cal.transform(scores)
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "sigmoid", "isotonic", "none"])
def test_single_class_raises(method: Method) -> None:
    scores = np.linspace(0.1, 0.9, 50)
    with pytest.raises(ValueError, match="more than one outcome"):
        ProbabilityCalibrator(method).fit(scores, np.ones(50, np.int64))
    with pytest.raises(ValueError, match="more than one outcome"):
        ProbabilityCalibrator(method).fit(np.full((50, 3), 1 / 3), np.zeros(50, np.int64))


def test_unknown_method_raises(binary: tuple[tuple[Floats, Ints], tuple[Floats, Ints]]) -> None:
    (s_fit, y_fit), _ = binary
    with pytest.raises(ValueError, match="calibration method must be"):
        ProbabilityCalibrator("platt").fit(s_fit, y_fit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scores", "y"),
    [(np.array([]), np.array([], np.int64)), (np.array([0.2, 0.8]), np.array([0, 1, 1]))],
    ids=["empty", "length-mismatch"],
)
def test_bad_shapes_raise(scores: Floats, y: Ints) -> None:
    with pytest.raises(ValueError, match="as many non-empty scores as labels"):
        ProbabilityCalibrator("sigmoid").fit(scores, y)


def test_fast_isotonic_is_sklearns_predict() -> None:
    """The request path interpolates the fitted thresholds itself; same numbers as sklearn,
    including outside the fitted range (clipped)."""
    from sklearn.isotonic import IsotonicRegression

    from models.calibration import _isotonic

    rng = np.random.default_rng(0)
    s = rng.uniform(0.1, 0.9, 2000)
    y = (rng.uniform(size=2000) < s**2).astype(float)
    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(s, y)
    x = np.concatenate([rng.uniform(0, 1, 500), [0.0, 1.0, s.min(), s.max()]])
    np.testing.assert_allclose(_isotonic(fitted, x), fitted.predict(x), rtol=0, atol=1e-12)


def end_blocks_sample() -> tuple[Floats, Ints]:
    """1,000 low scores without a positive, 1,000 middle ones half positive, 1,000 high ones
    all positive: base rate 0.5."""
    scores = np.concatenate([np.linspace(0.0, 0.1, 1000), np.full(1000, 0.5),
                             np.linspace(0.9, 1.0, 1000)])
    y = np.concatenate([np.zeros(1000), np.arange(1000) % 2, np.ones(1000)]).astype(np.int64)
    return scores, y


def test_isotonic_end_blocks_shrink_towards_the_base_rate() -> None:
    """A plain isotonic fit answers 0 (1e-6 after the floor) for the lowest block and anyone
    scored beyond it, and 1 for the highest. One pseudo-row at the base rate at each end makes
    them rate/1001 and (1000 + rate)/1001."""
    scores, y = end_blocks_sample()
    cal = ProbabilityCalibrator("isotonic").fit(scores, y)
    out = cal.transform(np.array([-1.0, 0.0, 0.05, 0.5, 1.0, 2.0]))
    np.testing.assert_allclose(out[:3], 0.5 / 1001, rtol=1e-9)
    assert out[3] == pytest.approx(0.5)
    np.testing.assert_allclose(out[4:], 1000.5 / 1001, rtol=1e-9)
    iso = cal.map_.maps[0]
    np.testing.assert_allclose(iso.predict([0.0, 1.0]), out[[1, 4]], rtol=1e-12)
    # Only the end blocks move: the middle keeps the plain fit's value.
    assert ProbabilityCalibrator("isotonic").fit(scores[1000:2000], y[1000:2000]).transform(
        np.array([0.5]))[0] == pytest.approx(0.5)


def test_multiclass_isotonic_keeps_unseen_classes_possible() -> None:
    """The same for each class of a multiclass map: the lowest rows never saw class 2, yet it
    keeps a small probability instead of the 1e-6 floor."""
    s, y = end_blocks_sample()
    scores = np.column_stack([1 - s, np.full_like(s, 0.01), s])
    scores /= scores.sum(axis=1, keepdims=True)
    proba = ProbabilityCalibrator("isotonic").fit(scores, np.where(y == 1, 2, 0)).transform(
        scores[[0, 2999]])
    assert 1e-4 < proba[0, 2] < 1e-3 and 1e-4 < proba[1, 0] < 1e-3
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
