"""Model quality against ground truth and peers, and training time.

- Simulator (full: 200k customers, 365 days; --quick: 10k): churn and conversion ROC-AUC vs
  the oracle's AUC on the same holdout rows, next-stage log loss vs the oracle's, ECE after
  calibration, LightGBM vs the baseline, and the wall time of `journey train`'s whole job
  (snapshots from the store, six fits, evaluation, MLflow logging, registration).
- CDNOW (real): any purchase 1997-10-01..1998-06-30 for all 23,570 customers, strict
  calibration-period-only protocol, beside BG/NBD (lifetimes, in benchmarks/.venv-peers).
- Trafilea/Shapees (real, small): the whole pipeline, conversion AUC with a bootstrap CI.

Real-data parts are skipped (and say so) when ../shared/data is absent.

    python benchmarks/quality.py [--quick]
"""

from __future__ import annotations

import sys

from benchmarks.common import run_as_module

run_as_module(__name__, __package__, "benchmarks.quality")

import time
from pathlib import Path
from typing import Any

from benchmarks.common import parser, peak_rss_mb, write_result

TARGETS = {"auc_ratio_min": 0.97, "logloss_ratio_max": 1.05, "ece_max": 0.02,
           "train_seconds_200k_max": 300}


def _real_data(work: Path, quick: bool) -> dict[str, Any]:
    from benchmarks.lib.bgnbd_peer import CDNOW
    from benchmarks.lib.shapees import SHAPEES

    out: dict[str, Any] = {}
    if (CDNOW / "cdnow_master.csv.gz").is_file():
        from benchmarks.lib.cdnow import cdnow_quality

        out.update(cdnow_quality(work / "quality-cdnow"))
        out["cdnow_beats_bgnbd"] = bool(out["cdnow_auc"] > out["cdnow_auc_bgnbd"]
                                        and out["cdnow_logloss"] < out["cdnow_logloss_bgnbd"])
    else:
        out["cdnow_skipped"] = f"no data at {CDNOW}"
    if SHAPEES.is_dir():
        from benchmarks.lib.shapees import shapees_quality

        out.update(shapees_quality(work / "quality-shapees"))
    else:
        out["shapees_skipped"] = f"no data at {SHAPEES}"
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=None, help="simulated customers")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    args = p.parse_args(argv)
    from benchmarks.lib.simquality import sim_quality

    customers = args.customers or (10_000 if args.quick else 200_000)
    sample, replicas = (3_000, 200) if args.quick else (20_000, 400)
    started = time.perf_counter()
    figures = sim_quality(args.work, customers, sample, replicas, args.seed)
    if customers == 200_000:
        figures["train_seconds_200k"] = figures["train_seconds"]
    figures.update(_real_data(args.work, args.quick))
    figures["targets"] = TARGETS
    figures["pass"] = {
        "churn_auc": figures["churn_auc_ratio"] >= TARGETS["auc_ratio_min"],
        "conversion_auc": figures["conversion_auc_ratio"] >= TARGETS["auc_ratio_min"],
        "next_stage_logloss": figures["next_stage_logloss_ratio"] <= TARGETS["logloss_ratio_max"],
        "ece": figures["ece_max"] <= TARGETS["ece_max"],
    }
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["seconds"] = round(time.perf_counter() - started, 1)
    write_result("quality", figures, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
