"""BG/NBD (``lifetimes``) as a peer for the CDNOW quality benchmark, driven from Journey's venv.

``lifetimes`` 0.11.3 needs pandas 2 / numpy 1, which clash with Journey's pins, so the model runs
in ``benchmarks/.venv-peers`` (``benchmarks/peers/bgnbd.py``); :func:`bgnbd_scores` hands it the
transactions as parquet and reads the scores back. :func:`holdout_metrics` scores them against
"any purchase in the holdout" and :func:`load_cdnow` reads the shared CDNOW log.

``benchmarks/quality.py`` runs it on CDNOW (calibration 1997-01-01..1997-09-30, holdout
1997-10-01..1998-06-30) beside Journey's own model.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
PEERS = HERE / "peers"
SETUP = PEERS / "setup.sh"
SCRIPT = PEERS / "bgnbd.py"
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"
CDNOW = HERE.parent.parent / "shared" / "data" / "cdnow"

CDNOW_CALIBRATION_END = date(1997, 10, 1)
CDNOW_HOLDOUT_END = date(1998, 7, 1)
LOG_LOSS_CLIP = 1e-6
_TAIL_CHARS = 4000


def _tail(text: str) -> str:
    return text[-_TAIL_CHARS:].strip()


def _run(cmd: list[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.CalledProcessError as exc:
        detail = _tail(exc.stderr or "") or _tail(exc.stdout or "")
        raise RuntimeError(f"{what} failed (exit {exc.returncode}):\n{detail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what} timed out after {timeout:.0f} s") from exc


def bgnbd_scores(
    transactions: pd.DataFrame,
    calibration_end: date,
    holdout_end: date,
    work: Path,
    *,
    freq: str = "W",
    timeout: float = 1800.0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit BG/NBD on ``ts < calibration_end``; score the holdout ``[calibration_end, holdout_end)``.

    ``transactions`` needs ``customer_id`` and ``ts`` (naive stamps are taken as UTC); only those
    two columns are handed over, and the peer drops every row at or after ``calibration_end``
    before fitting. Returns one row per customer with calibration history (``customer_id``,
    ``frequency``, ``recency``, ``T``, ``expected_purchases``, ``p_alive``, ``p_any_purchase``;
    time in weeks) and the peer's sidecar dict (``r``, ``alpha``, ``a``, ``b``, ``penalizer``,
    ``customers``, ``fit_seconds``, ...). Customers with no transaction before
    ``calibration_end`` are absent from the frame.
    """
    missing = {"customer_id", "ts"} - set(transactions.columns)
    if missing:
        raise ValueError(f"transactions lack columns {sorted(missing)}")
    _run(["bash", str(SETUP)], "benchmarks/peers/setup.sh", timeout)
    if not PEER_PYTHON.exists():
        raise RuntimeError(f"{PEER_PYTHON} is missing after benchmarks/peers/setup.sh")
    work.mkdir(parents=True, exist_ok=True)
    tx_path = work / "bgnbd_transactions.parquet"
    out_path = work / "bgnbd_scores.parquet"
    frame = pd.DataFrame({
        "customer_id": transactions["customer_id"].astype(str).to_numpy(),
        "ts": pd.DatetimeIndex(pd.to_datetime(transactions["ts"], utc=True)),
    })
    frame.to_parquet(tx_path, index=False)
    out_path.unlink(missing_ok=True)
    _run(
        [
            str(PEER_PYTHON), str(SCRIPT),
            "--transactions", str(tx_path),
            "--calibration-end", calibration_end.isoformat(),
            "--holdout-end", holdout_end.isoformat(),
            "--out", str(out_path),
            "--freq", freq,
        ],
        "benchmarks/peers/bgnbd.py",
        timeout,
    )
    scores = pd.read_parquet(out_path)
    meta: dict[str, Any] = json.loads(out_path.with_suffix(".json").read_text(encoding="utf-8"))
    return scores, meta


def holdout_buyers(
    transactions: pd.DataFrame, calibration_end: date, holdout_end: date
) -> set[str]:
    """Customers with a transaction in the holdout ``[calibration_end, holdout_end)`` (UTC)."""
    ts = pd.to_datetime(transactions["ts"], utc=True)
    start = pd.Timestamp(calibration_end.isoformat(), tz="UTC")
    end = pd.Timestamp(holdout_end.isoformat(), tz="UTC")
    ids = transactions["customer_id"].astype(str)
    return set(ids[(ts >= start) & (ts < end)])


def holdout_metrics(
    scores: pd.DataFrame, transactions: pd.DataFrame, calibration_end: date, holdout_end: date
) -> dict[str, float]:
    """ROC-AUC of ``expected_purchases`` and log loss of ``p_any_purchase`` (clipped to
    [1e-6, 1 - 1e-6]) for "any purchase in the holdout", over the customers in ``scores``
    (those with calibration history)."""
    from sklearn.metrics import log_loss, roc_auc_score

    buyers = holdout_buyers(transactions, calibration_end, holdout_end)
    y = scores["customer_id"].astype(str).isin(buyers).to_numpy(dtype=int)
    p_any = np.clip(scores["p_any_purchase"].to_numpy(dtype=float), LOG_LOSS_CLIP,
                    1 - LOG_LOSS_CLIP)
    return {
        "customers": len(y),
        "positives": int(y.sum()),
        "auc_expected_purchases": float(roc_auc_score(y, scores["expected_purchases"])),
        "auc_p_any_purchase": float(roc_auc_score(y, p_any)),
        "log_loss_p_any_purchase": float(log_loss(y, p_any, labels=[0, 1])),
        "log_loss_base_rate": float(log_loss(y, np.full(len(y), y.mean()), labels=[0, 1])),
    }


def load_cdnow(sample: bool = False, root: Path = CDNOW) -> pd.DataFrame:
    """The CDNOW log: ``customer_id`` (zero-padded str), ``ts`` (UTC midnight of the purchase day).

    ``sample`` reads the 1/10 sample, keyed by its master-file customer id.
    """
    path = root / ("cdnow_sample.csv.gz" if sample else "cdnow_master.csv.gz")
    id_col = "master_customer_id" if sample else "customer_id"
    raw = pd.read_csv(path, dtype={id_col: str, "date": str}, usecols=[id_col, "date"])
    ts = pd.to_datetime(raw["date"], format="%Y%m%d").dt.tz_localize("UTC")
    return pd.DataFrame({"customer_id": raw[id_col], "ts": ts})
