"""Peer: the BG/NBD model from ``lifetimes`` 0.11.3 (run in benchmarks/.venv-peers).

Fits ``BetaGeoFitter`` on the calibration period and scores every customer for the holdout:

    python bgnbd.py --transactions IN.parquet --calibration-end YYYY-MM-DD \
        --holdout-end YYYY-MM-DD --out OUT.parquet [--freq W]

IN.parquet has ``customer_id`` (string) and ``ts`` (timestamp, UTC). The calibration period is
``ts < calibration_end`` (UTC midnight starting that day); transactions at or after it are dropped
before anything else, so nothing later can influence the fit. The holdout is
``calibration_end <= ts < holdout_end`` and is never read here; its length gives the horizon
``t = (holdout_end - calibration_end).days / 7`` weeks.

The RFM summary comes from ``lifetimes.utils.summary_data_from_transaction_data`` with
``observation_period_end`` = the last day of the calibration period. With ``freq="W"`` lifetimes
buckets timestamps into Monday-to-Sunday weeks (pandas' ``W-SUN`` periods, stamped with their
Monday), keeps one transaction per customer-week, and measures ``recency`` and ``T`` in whole
weeks up to the Monday of the week holding the observation end. So ``frequency`` counts repeat
*purchase weeks*, not purchases. ``--freq D`` keeps one transaction per customer-day and measures
time in days / 7 (still weeks), the convention of Fader, Hardie & Lee (2005).

OUT.parquet has one row per customer with at least one transaction before ``calibration_end``:
``customer_id, frequency, recency, T, expected_purchases, p_alive, p_any_purchase``. Customers
with no transaction in the calibration period have no history for the model and do NOT appear;
callers must score them themselves (e.g. the population-level expectation) or drop them.

- ``expected_purchases``: ``conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)``,
  repeat purchase(-week)s expected in the holdout.
- ``p_alive``: ``conditional_probability_alive(x, t_x, T)`` at the end of calibration.
- ``p_any_purchase``: P(at least one purchase in the holdout | history), see ``p_any_purchase``.

The fitted parameters go to a sidecar ``OUT.json`` (``r, alpha, a, b, penalizer, customers,
fit_seconds`` and a few more) and, as the same JSON, into the parquet schema metadata under the
key ``bgnbd``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import lifetimes
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from lifetimes import BetaGeoFitter
from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

# lifetimes period -> freq_multiplier that keeps recency, T (and so alpha and t) in weeks.
# W: Monday-Sunday purchase weeks (the default). D: purchase days, time = days / 7, as in
# Fader, Hardie & Lee (2005), which reproduces their CDNOW-sample parameters exactly.
WEEKS_PER_PERIOD = {"W": 1, "D": 7}

# Tried in order until the fit converges; the one used is recorded in the sidecar.
PENALIZERS = (0.0, 0.001, 0.01, 0.1)


def p_any_purchase(
    r: float, alpha: float, p_alive: np.ndarray, frequency: np.ndarray, age: np.ndarray, t: float
) -> np.ndarray:
    """P(at least one purchase in (T, T + t] | x, t_x, T) under BG/NBD; ``age`` is T.

    A BG/NBD customer can only drop out right after a purchase, so one alive at T stays alive at
    least until the next purchase: P(no purchase in t | alive) = E[exp(-lambda t)] with the
    posterior lambda | alive, history ~ Gamma(shape r + x, rate alpha + T), i.e.
    ((alpha + T) / (alpha + T + t)) ** (r + x). A dead customer never buys. Hence
    p_any = p_alive * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)); a and b enter via p_alive.

    Checked against a Monte Carlo simulation from the fitted parameters (importance-sampled
    posterior of lambda, p and the alive state, then the holdout simulated forward as
    min(Poisson(lambda t), Geometric(p)) purchases) in tests/benchmarks/test_bgnbd_peer.py:
    p_alive, p_any_purchase and expected_purchases all agree to Monte Carlo error.
    """
    no_purchase_if_alive = ((alpha + age) / (alpha + age + t)) ** (r + frequency)
    return np.asarray(p_alive * (1.0 - no_purchase_if_alive), dtype=float)


def _utc_midnight(day: date) -> pd.Timestamp:
    return pd.Timestamp(day.isoformat(), tz="UTC")


def _fit(summary: pd.DataFrame) -> tuple[BetaGeoFitter, float, list[str]]:
    """Fit with penalizer 0 first, then with the small ones in PENALIZERS until it converges."""
    failures: list[str] = []
    for penalizer in PENALIZERS:
        model = BetaGeoFitter(penalizer_coef=penalizer)
        try:
            model.fit(summary["frequency"], summary["recency"], summary["T"])
        except (ConvergenceError, FloatingPointError, ValueError) as exc:
            failures.append(f"penalizer={penalizer}: {type(exc).__name__}: {str(exc).strip()}")
            continue
        params = model.params_
        if np.all(np.isfinite(params.to_numpy())) and np.all(params.to_numpy() > 0):
            return model, penalizer, failures
        failures.append(f"penalizer={penalizer}: bad params {params.to_dict()}")
    raise RuntimeError("BG/NBD did not converge with any penalizer:\n" + "\n".join(failures))


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=Path, required=True, help="parquet: customer_id, ts")
    ap.add_argument("--calibration-end", type=date.fromisoformat, required=True,
                    help="first day after calibration (calibration is ts < this, UTC)")
    ap.add_argument("--holdout-end", type=date.fromisoformat, required=True,
                    help="first day after the holdout (holdout is calibration-end <= ts < this)")
    ap.add_argument("--out", type=Path, required=True, help="output parquet; OUT.json beside it")
    ap.add_argument("--freq", default="W", choices=sorted(WEEKS_PER_PERIOD),
                    help="lifetimes period: W (default) purchase weeks; D purchase days, in weeks")
    args = ap.parse_args(argv)
    if args.holdout_end <= args.calibration_end:
        ap.error("--holdout-end must be after --calibration-end")
    return args


def _calibration(path: Path, cal_end: date) -> tuple[pd.DataFrame, int]:
    """The transactions before ``cal_end`` (naive UTC times) and how many rows were read."""
    tx = pd.read_parquet(path, columns=["customer_id", "ts"])
    tx["customer_id"] = tx["customer_id"].astype(str)
    ts = pd.to_datetime(tx["ts"], utc=True)
    # Calibration only, before anything else touches the data.
    keep = ts < _utc_midnight(cal_end)
    # lifetimes calls DataFrame.to_period, which warns and drops the zone on tz-aware stamps:
    # hand it naive UTC wall-clock times instead.
    cal = pd.DataFrame({"customer_id": tx["customer_id"][keep],
                        "ts": ts[keep].dt.tz_convert("UTC").dt.tz_localize(None)})
    if cal.empty:
        raise SystemExit(f"no transactions before {cal_end}")
    return cal, len(tx)


def _score(model: BetaGeoFitter, summary: pd.DataFrame, t_weeks: float) -> pd.DataFrame:
    x = summary["frequency"].to_numpy(dtype=float)
    t_x = summary["recency"].to_numpy(dtype=float)
    age = summary["T"].to_numpy(dtype=float)  # lifetimes' T
    r, alpha = float(model.params_["r"]), float(model.params_["alpha"])
    expected = np.asarray(
        model.conditional_expected_number_of_purchases_up_to_time(t_weeks, x, t_x, age), dtype=float
    )
    alive = np.asarray(model.conditional_probability_alive(x, t_x, age), dtype=float)
    out = pd.DataFrame({
        "customer_id": summary.index.astype(str),
        "frequency": x,
        "recency": t_x,
        "T": age,
        "expected_purchases": expected,
        "p_alive": alive,
        "p_any_purchase": p_any_purchase(r, alpha, alive, x, age, t_weeks),
    })
    bad = ~np.isfinite(out[["expected_purchases", "p_alive", "p_any_purchase"]].to_numpy())
    if bad.any():
        raise RuntimeError(f"{int(bad.any(axis=1).sum())} customers got non-finite scores")
    return out


def _write(out: pd.DataFrame, meta: dict[str, Any], path: Path) -> None:
    table = pa.Table.from_pandas(out, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"bgnbd": json.dumps(meta).encode()}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    cal_end: date = args.calibration_end
    hold_end: date = args.holdout_end
    cal, n_rows = _calibration(args.transactions, cal_end)
    obs_end = pd.Timestamp((cal_end - timedelta(days=1)).isoformat())  # last calibration day
    t_weeks = (hold_end - cal_end).days / 7.0

    started = time.perf_counter()
    summary = summary_data_from_transaction_data(
        cal, "customer_id", "ts", observation_period_end=obs_end, freq=args.freq,
        freq_multiplier=WEEKS_PER_PERIOD[args.freq],
    )
    summary_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model, penalizer, failures = _fit(summary)
    fit_seconds = time.perf_counter() - started
    out = _score(model, summary, t_weeks)
    meta = {
        **{k: float(model.params_[k]) for k in ("r", "alpha", "a", "b")},
        "penalizer": penalizer,
        "customers": len(out),
        "fit_seconds": round(fit_seconds, 3),
        "summary_seconds": round(summary_seconds, 3),
        "failed_fits": failures,
        "transactions_in": n_rows,
        "transactions_used": len(cal),
        "calibration_end": cal_end.isoformat(),
        "holdout_end": hold_end.isoformat(),
        "observation_period_end": obs_end.date().isoformat(),
        "t": t_weeks,
        "time_unit": "week",
        "freq": args.freq,
        "lifetimes": lifetimes.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }
    _write(out, meta, args.out)
    print(json.dumps({k: meta[k] for k in ("r", "alpha", "a", "b", "penalizer", "customers",
                                           "fit_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
