"""Time to churn: the survival model's concordance and integrated Brier score against the
simulator's true survival curves and a Kaplan-Meier baseline.

The survival section of experiments/survival.yaml (91-day horizon, weekly intervals,
cutoffs 2025-03-01/04-01 train, 07-01 validation, 10-01 test) on a simulated store (full:
100k customers, 365 days, so that the run fits in about 5 minutes on 2 cores, most of it
ingesting 8.6M events; --quick: 10k). The hazard model and Kaplan-Meier are fitted on the
training cutoffs; the survival oracle replays the simulation to the test cutoff and draws
``replicas`` futures per customer for a sample of the holdout. Everything is scored on the
customers at risk at the cutoff (not yet churned). c_index and c_index_oracle are on the same
oracle rows (the oracle's risk: its expected days to churn within the horizon); ibs and ibs_km
on the whole at-risk holdout, and on the oracle rows beside ibs_oracle.

    python benchmarks/survival.py [--quick]
"""

from __future__ import annotations

import sys

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.survival")

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import parser, peak_rss_mb, write_result

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "survival.yaml"
SIM_DAYS, SIM_SEED = 365, 42
TARGETS = {"c_index_ratio_min": 0.95, "ibs_below_km": True}


def _fit(store: Path, work: Path, seed: int) -> tuple[dict[str, Any], Any, Any, pd.DataFrame]:
    from features.spec import load_spec
    from models.survival import KaplanMeierSurvival
    from training.dataset import SnapshotSource, load_dataset
    from training.experiment import ModelSpec, load_experiment
    from training.survival import at_risk, fit_survival

    exp = load_experiment(EXPERIMENT).model_copy(update={"seed": seed})
    assert exp.survival is not None, f"{EXPERIMENT} has no survival section"
    spec = load_spec()
    source = SnapshotSource(store, work / "snapshots", spec, log=lambda _: None)
    try:
        ds = load_dataset(exp.for_survival(), source)
    finally:
        source.close()
    lgbm = next(m for m in exp.models if m.family == "lightgbm")
    started = time.perf_counter()
    model = fit_survival(lgbm, ds, spec, exp)
    took = time.perf_counter() - started
    km = fit_survival(ModelSpec(family="baseline"), ds, spec, exp)
    assert isinstance(km, KaplanMeierSurvival)
    figures = {"fit_seconds": round(took, 1), "train_at_risk": len(at_risk(ds.train)[0]),
               "test_at_risk": len(at_risk(ds.test)[0]), "test_rows": len(ds.test),
               "best_iteration": getattr(model, "best_iteration_", None),
               "horizon": exp.survival.horizon_days,
               "interval_days": exp.survival.interval_days, "churn_gap_days": exp.churn_gap_days,
               "test_cutoff": str(exp.survival.cutoffs.test)}
    return figures, model, km, ds.test


def _scores(model: Any, km: Any, test: pd.DataFrame, truth: pd.DataFrame, horizon: int
            ) -> dict[str, Any]:
    from models.survival_metrics import concordance_index, integrated_brier_score
    from training.survival import at_risk, survival_scores

    days = np.arange(1, horizon, dtype=np.float64)
    ours, base = survival_scores(model, test, horizon), survival_scores(km, test, horizon)
    rows, d, e = at_risk(test.merge(truth, on="customer_id", how="inner"))
    oracle_curves = rows[[f"s_{int(t)}" for t in days]].to_numpy()
    on_rows = {
        "c_index": concordance_index(d, e, -model.expected_days(rows)),
        "c_index_oracle": concordance_index(d, e, -rows["expected_days"].to_numpy()),
        "ibs_oracle_rows": integrated_brier_score(d, e, model.predict_survival(rows, days), days),
        "ibs_km_oracle_rows": integrated_brier_score(d, e, km.predict_survival(rows, days), days),
        "ibs_oracle": integrated_brier_score(d, e, oracle_curves, days),
    }
    out = {k: round(float(v), 4) for k, v in on_rows.items()}
    out.update({"ibs": round(ours["ibs"], 4), "ibs_km": round(base["ibs"], 4),
                "c_index_full_holdout": round(ours["c_index"], 4),
                "oracle_rows": len(rows), "observed_share": round(float(e.mean()), 4)})
    out["c_index_ratio"] = round(out["c_index"] / out["c_index_oracle"], 4)
    out["ibs_ratio_km"] = round(out["ibs"] / out["ibs_km"], 4)
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=None, help="simulated customers")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    args = p.parse_args(argv)
    from benchmarks.lib.simstore import build_sim_store
    from features.simulator.survival_oracle import survival_oracle_for

    customers = args.customers or (10_000 if args.quick else 100_000)
    sample, replicas = (3_000, 200) if args.quick else (10_000, 300)
    started = time.perf_counter()
    root = args.work / f"survival-{customers}"
    store = build_sim_store(root, customers, SIM_DAYS, SIM_SEED)
    figures, model, km, test = _fit(store, root, args.seed)
    horizon = int(figures["horizon"])
    oracle_started = time.perf_counter()
    truth = survival_oracle_for(root / "sim", pd.Timestamp(figures["test_cutoff"]).date(),
                                horizon, int(figures["churn_gap_days"]),
                                list(range(1, horizon)), replicas, sample, args.seed)
    figures["oracle_seconds"] = round(time.perf_counter() - oracle_started, 1)
    figures.update(_scores(model, km, test, truth, horizon))
    figures.update({"data": f"simulator, {customers:,} customers x {SIM_DAYS} days "
                            f"(seed {SIM_SEED}); test cutoff {figures['test_cutoff']}",
                    "sim_customers": customers, "sim_days": SIM_DAYS, "sim_seed": SIM_SEED,
                    "oracle_replicas": replicas, "seed": args.seed, "targets": TARGETS})
    figures["pass"] = {
        "c_index": figures["c_index_ratio"] >= TARGETS["c_index_ratio_min"],
        "ibs_below_km": figures["ibs"] < figures["ibs_km"],
    }
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["seconds"] = round(time.perf_counter() - started, 1)
    write_result("survival", figures, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
