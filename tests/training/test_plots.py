"""training.plots writes a real PNG for every figure, including degenerate inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pytest

from training.plots import (
    calibration_plot,
    confusion_plot,
    importance_plot,
    lift_plot,
    multiclass_roc_plot,
    roc_plot,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ["browse", "cart", "buy"]
BinaryPlot = Callable[[npt.ArrayLike, npt.ArrayLike, Path], Path]


def assert_png(written: Path, expected: Path) -> None:
    assert written == expected
    data = expected.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1_000


@pytest.fixture
def binary() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 1.0, 500)
    return (rng.uniform(0.0, 1.0, 500) < p).astype(np.int64), p


@pytest.fixture
def multiclass() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), size=300)
    y = np.array([rng.choice(3, p=row) for row in proba], dtype=np.int64)
    return y, proba


@pytest.fixture(autouse=True)
def no_leaked_figures() -> Iterator[None]:
    """Every plot function must close its figure, or long training runs leak memory."""
    yield
    assert plt.get_fignums() == []


def test_binary_plots(
    tmp_path: Path, binary: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
) -> None:
    y, p = binary
    assert_png(roc_plot(y, p, tmp_path / "roc.png", title="Test ROC"), tmp_path / "roc.png")
    assert_png(calibration_plot(y, p, tmp_path / "cal.png"), tmp_path / "cal.png")
    assert_png(lift_plot(y.astype(bool), p, tmp_path / "lift.png"), tmp_path / "lift.png")


@pytest.mark.parametrize("label", [0, 1])
@pytest.mark.parametrize("plot", [roc_plot, calibration_plot, lift_plot])
def test_binary_plots_single_class(tmp_path: Path, label: int, plot: BinaryPlot) -> None:
    target = tmp_path / "single.png"
    assert_png(plot(np.full(40, label), np.linspace(0.0, 1.0, 40), target), target)


def test_binary_plots_tiny_input(tmp_path: Path) -> None:
    # Fewer rows than deciles: some deciles are empty and must simply have no bar.
    target = tmp_path / "lift.png"
    assert_png(lift_plot([1, 0, 1], [0.9, 0.2, 0.6], target), target)


def test_plot_creates_parent_directory(
    tmp_path: Path, binary: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
) -> None:
    target = tmp_path / "artifacts" / "eval" / "roc.png"
    assert_png(roc_plot(*binary, target), target)


def test_multiclass_plots(
    tmp_path: Path, multiclass: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
) -> None:
    y, proba = multiclass
    target = tmp_path / "roc_mc.png"
    assert_png(multiclass_roc_plot(y, proba, CLASSES, target), target)
    target = tmp_path / "confusion.png"
    assert_png(confusion_plot(y, proba.argmax(axis=1), CLASSES, target), target)


def test_multiclass_plots_single_class(
    tmp_path: Path, multiclass: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
) -> None:
    _, proba = multiclass
    y = np.full(len(proba), 2)
    target = tmp_path / "roc_mc.png"
    assert_png(multiclass_roc_plot(y, proba, CLASSES, target), target)
    # Rows of absent true classes have no total; they must render as zeros, not NaN.
    target = tmp_path / "confusion.png"
    assert_png(confusion_plot(y, proba.argmax(axis=1), CLASSES, target), target)


def test_importance_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    names = [f"feature_{i}" for i in range(60)]
    values = rng.exponential(1.0, 60).tolist()
    target = tmp_path / "importance.png"
    assert_png(importance_plot(names, values, target, top=30), target)
    target = tmp_path / "few.png"
    assert_png(importance_plot(["a", "b"], [0.3, 0.7], target, title="Two"), target)
    target = tmp_path / "none.png"
    assert_png(importance_plot([], [], target), target)


def test_plots_reject_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        importance_plot(["a"], [1.0, 2.0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="differ in length"):
        confusion_plot([0, 1], [0], CLASSES, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"0\.\.2"):
        confusion_plot([0, 3], [0, 1], CLASSES, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        roc_plot([0, 1], [0.5, 2.0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def _overflows(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """How far (inches) what each figure draws reaches past its edges, once laid out."""
    from matplotlib.figure import Figure

    from training import plots

    out: list[float] = []
    layout = plots._layout

    def checked(fig: Figure, fixed: bool, hspace: float) -> None:
        layout(fig, fixed, hspace)
        drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # type: ignore[attr-defined]
        w, h = fig.get_size_inches()
        out.append(round(float(max(0.0, -drawn.x0, -drawn.y0, drawn.x1 - w, drawn.y1 - h)), 3))

    monkeypatch.setattr(plots, "_layout", checked)
    return out


def test_fixed_margins_keep_every_label_inside(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The curves and lift bars keep fixed margins (no tight_layout): their labels, a count
    axis of a 2M-row holdout, and a lift of 50 must still fit the figure."""
    over = _overflows(monkeypatch)
    rng = np.random.default_rng(3)
    n = 2_000_000
    y = (rng.uniform(size=n) < 0.02).astype(np.int64)
    p = np.clip(y * 0.6 + rng.uniform(size=n) * 0.4, 0.0, 1.0)
    roc_plot(y, p, tmp_path / "roc.png", title="ROC — conversion")
    calibration_plot(y, p, tmp_path / "calibration.png")
    lift_plot(y, p, tmp_path / "lift.png")
    stages = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]
    proba = rng.dirichlet(np.ones(len(stages)), size=5000)
    multiclass_roc_plot(rng.integers(0, len(stages), 5000), proba, stages, tmp_path / "mc.png")
    assert over == [0.0, 0.0, 0.0, 0.0]
