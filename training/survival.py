"""The time_to_churn target: fit, evaluate, track and register survival models.

Each model spec of the experiment gives one survival model: ``baseline`` is the Kaplan-Meier
curve (the same for everyone), ``lightgbm`` the discrete-time hazard model with the spec's
LightGBM params. Both train on the survival section's cutoffs and horizon
(``Experiment.for_survival``), early-stop on its validation cutoff and are scored on its test
cutoff: Harrell's concordance index (risk: minus the expected days to churn) and the
integrated Brier score over days 1..H-1, on the customers at risk at the cutoff (those
already churned have nothing left to predict).
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.spec import FeatureSpec
from models.registry import load_native
from models.survival import KaplanMeierSurvival, LightGBMSurvival, SurvivalCurves
from models.survival_metrics import concordance_index, integrated_brier_score
from models.targets import SURVIVAL, Target, target
from training.dataset import Dataset, SnapshotSource, midnight
from training.experiment import Experiment, ModelSpec
from training.model_io import example_frame, register_model
from training.stale_runs import process_tags
from training.train import Context, ModelResult, feature_columns, model_tags

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

SurvivalModel = KaplanMeierSurvival | LightGBMSurvival
SURVIVAL_DAYS = (7, 30, 90)  # the days the service reports, logged with the example output


def at_risk(frame: pd.DataFrame) -> tuple[pd.DataFrame, npt.NDArray[np.float64],
                                          npt.NDArray[np.bool_]]:
    """The rows of customers not yet churned at the cutoff, their durations and flags."""
    for col in ("churn_days", "churn_observed"):
        if col not in frame.columns:
            raise ValueError(f"the frame has no {col!r} column (labels from features.labels)")
    keep = frame["churn_days"].to_numpy(np.float64) > 0
    rows = frame[keep]
    return (rows, rows["churn_days"].to_numpy(np.float64),
            rows["churn_observed"].to_numpy(bool))


def survival_scores(est: SurvivalCurves, frame: pd.DataFrame, horizon_days: int
                    ) -> dict[str, float]:
    """c_index and ibs on the frame's customers at risk, with what they rest on."""
    rows, d, e = at_risk(frame)
    days = np.arange(1, horizon_days, dtype=np.float64)
    expected = est.expected_days(rows)
    return {
        "c_index": concordance_index(d, e, -expected),
        "ibs": integrated_brier_score(d, e, est.predict_survival(rows, days), days),
        "at_risk_rows": float(len(rows)),
        "observed_share": float(e.mean()) if len(e) else float("nan"),
        "expected_days_mean": float(expected.mean()) if len(rows) else float("nan"),
    }


def survival_estimator(model: ModelSpec, columns: list[str], exp: Experiment) -> SurvivalModel:
    assert exp.survival is not None, "checked when the experiment loaded"
    s = exp.survival
    if model.family == "baseline":
        return KaplanMeierSurvival(s.horizon_days, s.interval_days)
    allowed = set(LightGBMSurvival().get_params())
    params = {k: v for k, v in model.params.items() if k in allowed}
    return LightGBMSurvival(columns=columns, horizon_days=s.horizon_days,
                            interval_days=s.interval_days, churn_gap_days=exp.churn_gap_days,
                            seed=exp.seed, **params)


def fit_survival(model: ModelSpec, ds: Dataset, spec: FeatureSpec, exp: Experiment
                 ) -> SurvivalModel:
    """Fit on ``ds.train``; the hazard model early-stops on ``ds.valid``."""
    est = survival_estimator(model, feature_columns(model, spec, ds.feature_columns), exp)
    x, d, e = at_risk(ds.train)
    if isinstance(est, KaplanMeierSurvival):
        return est.fit(x, d, e)
    return est.fit(x, d, e, eval_set=at_risk(ds.valid))


def _log_survival(est: SurvivalModel, t: Target, ds: Dataset, exp: Experiment,
                  tags: dict[str, str]) -> tuple[dict[str, dict[str, float]], str]:
    import mlflow

    assert exp.survival is not None
    scores = {}
    for split, frame in (("valid", ds.valid), ("test", ds.test)):
        scores[split] = survival_scores(est, frame, exp.survival.horizon_days)
        mlflow.log_metrics({f"{split}_{k}": v for k, v in scores[split].items()
                            if np.isfinite(v)})
    rows, d, e = at_risk(ds.test)
    curves = est.predict_survival(rows, SURVIVAL_DAYS)
    with tempfile.TemporaryDirectory() as tmp:
        preds = pd.DataFrame(curves, columns=[f"s_{k}" for k in SURVIVAL_DAYS])
        preds.insert(0, "expected_days", est.expected_days(rows))
        preds.insert(0, "churn_observed", e)
        preds.insert(0, "churn_days", d)
        preds.insert(0, "customer_id", rows["customer_id"].to_numpy())
        preds.to_parquet(Path(tmp) / "holdout_predictions.parquet")
        mlflow.log_artifact(str(Path(tmp) / "holdout_predictions.parquet"))
    example = (example_frame(est, ds.test) if isinstance(est, LightGBMSurvival)
               else ds.test.head(5)[["customer_id"]])
    output = pd.DataFrame({"expected_days": est.predict(example)})
    return scores, register_model(est, t.registered_name, example, output, "predict", tags)


def train_one_survival(model: ModelSpec, ds: Dataset, exp: Experiment, ctx: Context
                       ) -> ModelResult:
    import mlflow

    parent = mlflow.active_run()
    assert parent is not None, "runs inside train_experiment's parent run"
    assert exp.survival is not None
    t = target(SURVIVAL, ctx.spec.stages)
    started = time.perf_counter()
    est = fit_survival(model, ds, ctx.spec, exp)
    seconds = time.perf_counter() - started
    params: dict[str, Any] = {k: v for k, v in est.get_params().items() if k != "columns"}
    tags = model_tags(t, model, exp.for_survival(), ds, "model")
    with mlflow.start_run(run_name=f"{t.name}-{model.family}", nested=True,
                          experiment_id=parent.info.experiment_id, tags=process_tags()) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({**{f"model.{k}": v for k, v in params.items()},
                           "features": ",".join(model.feature_families),
                           "survival_horizon_days": exp.survival.horizon_days,
                           "survival_interval_days": exp.survival.interval_days})
        mlflow.log_metric("train_seconds", seconds)
        mlflow.log_metric("train_rows", float(len(at_risk(ds.train)[0])))
        if isinstance(est, LightGBMSurvival):
            mlflow.log_metric("best_iteration", est.best_iteration_)
        scores, version = _log_survival(est, t, ds, exp, tags)
    ctx.log(f"  {t.name:<10} {model.family:<8} valid c_index {scores['valid']['c_index']:.4f}"
            f"  test {scores['test']['c_index']:.4f} (ibs {scores['test']['ibs']:.4f})"
            f"  v{version}  {seconds:.1f}s")
    return ModelResult(t.name, model.family, run.info.run_id, version, scores["valid"],
                       scores["test"], seconds, params)


def holdout_score(version: ModelVersion, source: SnapshotSource, tags: dict[str, str],
                  metric: str) -> float:
    """A registered survival model's ``metric`` (c_index or ibs) on the holdout ``tags`` name
    (test cutoff, horizon, churn gap): what the promotion gate compares."""
    model = load_native(version, SurvivalCurves)
    assert isinstance(model, SurvivalCurves)
    horizon = int(tags["journey.horizon_days"])
    frame = source.frame(midnight(date.fromisoformat(tags["journey.test_cutoff"])), horizon,
                         int(tags["journey.churn_gap_days"]))
    return survival_scores(model, frame, horizon)[metric]
