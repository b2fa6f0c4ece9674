"""The BG/NBD peer (lifetimes, in benchmarks/.venv-peers) on the real CDNOW log.

Skipped when ../shared/data/cdnow or the peers' venv is absent (this test does not create it).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks.lib.bgnbd_peer import (
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_END,
    PEER_PYTHON,
    bgnbd_scores,
    holdout_metrics,
    load_cdnow,
)

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow"

# Fader, Hardie & Lee (2005): BG/NBD on the 2,357-customer CDNOW sample, 39-week calibration,
# time in days / 7 (lifetimes' docs reproduce it).
LITERATURE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def _require() -> None:
    if not (CDNOW / "cdnow_master.csv.gz").exists():
        pytest.skip(f"CDNOW data not found at {CDNOW}")
    if not PEER_PYTHON.exists():
        pytest.skip(f"peers venv absent ({PEER_PYTHON}); run bash benchmarks/peers/setup.sh")


Run = tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]  # transactions, scores, sidecar


@pytest.fixture(scope="module")
def full_weekly(tmp_path_factory: pytest.TempPathFactory) -> Run:
    _require()
    tx = load_cdnow(root=CDNOW)
    scores, meta = bgnbd_scores(tx, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END,
                                tmp_path_factory.mktemp("bgnbd_full"))
    return tx, scores, meta


def test_weekly_fit_on_full_cdnow(full_weekly: Run) -> None:
    tx, scores, meta = full_weekly
    assert meta["penalizer"] == 0.0
    assert meta["customers"] == len(scores) == 23_570  # every customer bought first in Q1 1997
    assert meta["t"] == 39.0
    assert list(scores.columns) == ["customer_id", "frequency", "recency", "T",
                                    "expected_purchases", "p_alive", "p_any_purchase"]
    # Weekly buckets (one purchase per customer-week, whole-week recency and T) on the full
    # cohort give r=0.284, alpha=6.72, a=0.708, b=2.37: r, a, b stay near the paper's values;
    # alpha (the time scale) grows, as repeat purchases in the same week merge.
    for name in ("r", "a", "b"):
        assert meta[name] == pytest.approx(LITERATURE[name], rel=0.25), name
    assert 0.8 * LITERATURE["alpha"] < meta["alpha"] < 1.7 * LITERATURE["alpha"]
    assert scores["p_alive"].between(0, 1).all()
    assert scores["p_any_purchase"].between(0, 1).all()
    assert (scores["p_any_purchase"] <= scores["p_alive"]).all()

    metrics = holdout_metrics(scores, tx, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    assert metrics["auc_expected_purchases"] > 0.7
    assert metrics["log_loss_p_any_purchase"] < metrics["log_loss_base_rate"]


def _monte_carlo(
    params: dict[str, Any], x: float, t_x: float, age: float, t: float, n: int,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """p_alive, P(any purchase in t), E[purchases in t] for one customer, by simulation.

    Draws the posterior of (lambda, p, alive) by importance sampling (lambda from
    Gamma(r + x, alpha + t_x), p from its Beta(a, b) prior; weights: alive (1-p)^x e^{-lambda
    (T - t_x)}, dropped out after the last purchase p (1-p)^(x-1)), then simulates the holdout:
    an alive customer makes min(Poisson(lambda t), Geometric(p)) purchases.
    """
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    lam = rng.gamma(r + x, 1.0 / (alpha + t_x), n)
    p = rng.beta(a, b, n)
    w_alive = (1 - p) ** x * np.exp(-lam * (age - t_x))
    w_dead = p * (1 - p) ** (x - 1) if x > 0 else np.zeros(n)
    w = w_alive + w_dead
    alive = rng.random(n) < w_alive / w
    purchases = np.minimum(rng.poisson(lam * t), rng.geometric(p)) * alive
    total = w.sum()
    return (float((w * alive).sum() / total), float((w * (purchases > 0)).sum() / total),
            float((w * purchases).sum() / total))


def test_scores_match_monte_carlo(full_weekly: Run) -> None:
    _, scores, meta = full_weekly
    rng = np.random.default_rng(20050401)
    picks = [scores[scores["frequency"] == 0].iloc[0]]
    for freq, position in [(1, 0), (1, -1), (3, 0), (3, -1), (8, -1)]:
        picks.append(scores[scores["frequency"] == freq].sort_values("recency").iloc[position])
    for row in picks:
        p_alive, p_any, expected = _monte_carlo(meta, row["frequency"], row["recency"],
                                                row["T"], meta["t"], 400_000, rng)
        where = f"x={row['frequency']}, t_x={row['recency']}, T={row['T']}"
        assert row["p_alive"] == pytest.approx(p_alive, abs=0.01), where
        assert row["p_any_purchase"] == pytest.approx(p_any, abs=0.01), where
        assert row["expected_purchases"] == pytest.approx(expected, rel=0.03, abs=0.01), where


def test_daily_fit_on_sample_reproduces_paper_and_ignores_the_future(
    tmp_path: Path,
) -> None:
    _require()
    cal_end = CDNOW_CALIBRATION_END
    sample = load_cdnow(sample=True, root=CDNOW)
    known = str(sample["customer_id"].iloc[0])
    # A purchase at the first instant of the holdout, one after it and a customer first seen
    # in the holdout: none may change the fit or the scores.
    extra = pd.DataFrame({
        "customer_id": [known, known, "newcomer", "newcomer"],
        "ts": pd.to_datetime(["1997-10-01T00:00:00", "1999-01-01T00:00:00",
                              "1997-12-01T12:00:00", "1998-02-01T00:00:00"], utc=True),
    })
    everything = pd.concat([sample, extra], ignore_index=True)
    calibration_only = everything[everything["ts"] < pd.Timestamp(cal_end.isoformat(), tz="UTC")]

    scores, meta = bgnbd_scores(everything, cal_end, CDNOW_HOLDOUT_END, tmp_path / "all", freq="D")
    for name, value in LITERATURE.items():
        assert meta[name] == pytest.approx(value, rel=0.005), name
    assert meta["customers"] == 2357
    assert "newcomer" not in set(scores["customer_id"])  # no calibration history, no row

    scores_cal, meta_cal = bgnbd_scores(calibration_only, cal_end, CDNOW_HOLDOUT_END,
                                        tmp_path / "cal", freq="D")
    pd.testing.assert_frame_equal(scores, scores_cal)
    assert {k: meta[k] for k in LITERATURE} == {k: meta_cal[k] for k in LITERATURE}
    assert meta["transactions_used"] == meta_cal["transactions_used"] == len(calibration_only)


def test_holdout_window_is_half_open() -> None:
    tx = pd.DataFrame({"customer_id": ["a", "b", "c"],
                       "ts": pd.to_datetime(["1997-09-30T23:59:59", "1997-10-01T00:00:00",
                                             "1998-07-01T00:00:00"], utc=True)})
    scores = pd.DataFrame({"customer_id": ["a", "b", "c"], "expected_purchases": [0.1, 0.9, 0.2],
                           "p_any_purchase": [0.1, 0.8, 0.2]})
    metrics = holdout_metrics(scores, tx, date(1997, 10, 1), date(1998, 7, 1))
    assert metrics["positives"] == 1
    assert metrics["auc_expected_purchases"] == 1.0
