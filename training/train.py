"""`journey train`: fit every (target, model family) of an experiment, track it in MLflow,
register the model, and give the target's best candidate on validation the `challenger` alias.

One parent run per invocation (or the run `mlflow run` started) holds the experiment spec
as trained; each model is a nested run with its params, metrics on the validation and test
windows, plots, holdout predictions and the model itself (sklearn flavor: estimator +
preprocessing + calibration in one object, loaded natively by serving). Every run is tagged
with the code (Journey version, git commit) and the data (event store, frames) it came from.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from features.errors import ConfigError
from features.layout import families
from features.spec import FeatureSpec
from models.calibration import Method
from models.drift import load_drift_settings
from models.estimators import JourneyClassifier, LogisticBaseline
from models.lgbm import LightGBMClassifier
from models.targets import SURVIVAL, Target, target
from training import evaluate
from training.dataset import Dataset
from training.experiment import Experiment, ModelSpec
from training.model_io import log_drift_reference, log_model
from training.outcomes import check_outcomes
from training.provenance import (
    CODE_ROOT,
    code_version,
    data_end,
    frames_fingerprint,
    holdout_end,
    store_tags,
)
from training.registry_lock import settled
from training.search import SearchResult, Trial, random_search
from training.stale_runs import end_dead_runs, process_tags
from training.tracking import KIND_TAG, TRAINING_EXPERIMENT, Tracking

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

Log = Callable[[str], None]
CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class ModelResult:
    target: str
    family: str
    run_id: str
    version: str
    valid: dict[str, float]
    test: dict[str, float]
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    # Why every customer gets the same score ('' when not): registered, never the challenger.
    degenerate: str = ""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class Context:
    tracking: Tracking
    spec: FeatureSpec
    # The spec as written, logged when it is what is trained (None: the experiment as given,
    # e.g. a retraining cycle's moved cutoffs, is logged as YAML instead).
    experiment_file: Path | None = None
    log: Log = print
    store: Path | None = None  # the event store, for the runs' data fingerprint
    warn: Log = _stderr


def feature_columns(model: ModelSpec, spec: FeatureSpec, available: tuple[str, ...]) -> list[str]:
    by_family = families(spec)
    wanted = [c for f in model.feature_families for c in by_family[f]]
    return [c for c in wanted if c in available]


def _estimator(t: Target, model: ModelSpec, columns: list[str], calibration: Method, seed: int,
               params: dict[str, Any]) -> JourneyClassifier:
    common: dict[str, Any] = {"classes": t.classes, "columns": columns,
                              "calibration": calibration, "seed": seed}
    if model.family == "baseline":
        return LogisticBaseline(**common, **params)
    return LightGBMClassifier(**common, **params)


def _rows(t: Target, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    y, known = t.encode(frame)
    return frame[known], y[known]


def fit_model(t: Target, model: ModelSpec, ds: Dataset, spec: FeatureSpec,
              calibration: Method = "auto", seed: int = 0
              ) -> tuple[JourneyClassifier, SearchResult | None]:
    """Fit on ``ds.train``, early-stop and calibrate on ``ds.valid`` (searching if asked:
    the search's outcome, else None)."""
    columns = feature_columns(model, spec, ds.feature_columns)
    (x_tr, y_tr), (x_va, y_va) = _rows(t, ds.train), _rows(t, ds.valid)

    def fit(params: dict[str, Any]) -> Any:
        est = _estimator(t, model, columns, calibration, seed, params)
        return est.fit(x_tr, y_tr, eval_set=(x_va, y_va))

    if model.search is None:
        return fit(model.params), None
    found = random_search(fit, model.search, model.params, seed)
    return found.best, found


def _log_run(t: Target, model: ModelSpec, est: JourneyClassifier, trials: list[Trial],
             ds: Dataset, exp: Experiment) -> dict[str, dict[str, float]]:
    import mlflow

    scores = {}
    for split, frame in (("valid", ds.valid), ("test", ds.test)):
        x, y = _rows(t, frame)
        proba = est.predict_proba(x)  # the test split's stay in x, y, proba for what follows
        scores[split] = evaluate.metrics(t, y, proba)
        mlflow.log_metrics({f"{split}_{k}": v for k, v in scores[split].items()
                            if np.isfinite(v)})
    for i, trial in enumerate(trials):
        mlflow.log_metric("search_valid_log_loss", trial.valid_log_loss, step=i)
    with tempfile.TemporaryDirectory() as tmp:
        evaluate.write_plots(t, y, proba, est.importances(), Path(tmp) / "plots")
        mlflow.log_artifacts(str(Path(tmp) / "plots"), "plots")
        preds = pd.DataFrame(proba, columns=[f"p_{c}" for c in t.classes])
        preds.insert(0, "label", y)
        preds.insert(0, "customer_id", x["customer_id"].to_numpy())
        preds.to_parquet(Path(tmp) / "holdout_predictions.parquet")
        mlflow.log_artifact(str(Path(tmp) / "holdout_predictions.parquet"))
    return scores


def train_one(t: Target, model: ModelSpec, ds: Dataset, exp: Experiment, ctx: Context
              ) -> ModelResult:
    import mlflow

    parent = mlflow.active_run()
    assert parent is not None, "train_one runs inside train_experiment's parent run"
    started = time.perf_counter()
    est, search = fit_model(t, model, ds, ctx.spec, exp.calibration, exp.seed)
    seconds = time.perf_counter() - started
    params = {k: v for k, v in est.get_params().items() if k not in ("classes", "columns")}
    degenerate = (est.no_split() if isinstance(est, LightGBMClassifier) else None) or ""
    # Version tags too: the gate reads the prior from the version, the registry shows the flag.
    tags = {**model_tags(t, model, exp, ds, "model"), **train_rates_tag(t, ds.train),
            **({"journey.degenerate": "true"} if degenerate else {})}
    # Explicit experiment: a nested run otherwise lands in MLflow's Default experiment.
    with mlflow.start_run(run_name=f"{t.name}-{model.family}", nested=True,
                          experiment_id=parent.info.experiment_id, tags=process_tags()) as run:
        mlflow.set_tags({**tags, **(search.tags() if search else {}),
                         **({"journey.degenerate_reason": degenerate} if degenerate else {})})
        mlflow.log_params({**{f"model.{k}": v for k, v in params.items()},
                           "features": ",".join(model.feature_families),
                           "n_features": len(est.feature_names_in_),
                           "calibration_method": est.calibrator_.method_,
                           **(search.params() if search else {"search_trials": "0"})})
        mlflow.log_metric("train_seconds", seconds)
        mlflow.log_metric("train_rows", float(len(_rows(t, ds.train)[0])))
        if isinstance(est, LightGBMClassifier):
            mlflow.log_metric("best_iteration", est.best_iteration_)
        scores = _log_run(t, model, est, search.trials if search else [], ds, exp)
        version = log_model(est, t, ds.test, tags)
        log_drift_reference(est, t, _rows(t, ds.train)[0], load_drift_settings(), exp.seed)
    ctx.log(f"  {t.name:<10} {model.family:<8} valid {t.primary_metric} "
            f"{evaluate.primary(t, scores['valid']):.4f}  test "
            f"{evaluate.primary(t, scores['test']):.4f}  v{version}  {seconds:.1f}s"
            + (f"  ({search.summary()})" if search else ""))
    warning = search.warning() if search else None
    if warning is not None:
        ctx.warn(f"warning: {t.name} {model.family}: {warning}")
    if degenerate:
        ctx.warn(f"warning: {t.registered_name} {model.family}: {degenerate}; registered as "
                 f"v{version} (tagged journey.degenerate) but not made the challenger")
    return ModelResult(t.name, model.family, run.info.run_id, version, scores["valid"],
                       scores["test"], seconds, params, degenerate)


TRAIN_RATES_TAG = "journey.train_class_rates"


def train_rates_tag(t: Target, train: pd.DataFrame) -> dict[str, str]:
    """Each class's share of the training rows, as JSON: the promotion gate's trivial
    predictor (everyone gets the training base rate) is judged on the holdout with it."""
    y = _rows(t, train)[1]
    rates = np.bincount(y, minlength=len(t.classes)) / max(len(y), 1)
    return {TRAIN_RATES_TAG: json.dumps(dict(zip(t.classes, rates.round(6).tolist(),
                                                 strict=True)))}


def model_tags(t: Target, model: ModelSpec, exp: Experiment, ds: Dataset, kind: str
          ) -> dict[str, str]:
    return {
        KIND_TAG: kind,
        "journey.experiment": exp.name,
        "journey.target": t.name,
        "journey.family": model.family,
        "journey.label": t.label,
        "journey.definition_hash": ds.definition_hash,
        "journey.horizon_days": str(exp.horizon_days),
        "journey.churn_gap_days": str(exp.churn_gap_days),
        "journey.train_cutoffs": ",".join(str(d) for d in sorted(exp.cutoffs.train)),
        "journey.valid_cutoff": str(exp.cutoffs.valid),
        "journey.test_cutoff": str(exp.cutoffs.test),
        "journey.seed": str(exp.seed),
    }


def _train_survival(exp: Experiment, ds: Dataset, ctx: Context) -> list[ModelResult]:
    """Every model spec as a survival model (its challenger is picked as the others')."""
    from training.survival import train_one_survival  # it builds on this module

    if ds.survival is None:
        raise ConfigError(f"experiment {exp.name}: {SURVIVAL} needs the survival frames "
                          "(load the dataset with training.dataset.load_dataset)")
    return [train_one_survival(m, ds.survival, exp, ctx) for m in exp.models]


def train_experiment(exp: Experiment, ds: Dataset, ctx: Context) -> list[ModelResult]:
    """Train, log and register every model; alias each target's best as `challenger`, every
    target's together once all are trained (none when the run fails)."""
    import mlflow

    from training.challengers import challengers_at_end, choose_challenger  # built on this

    check_outcomes(exp, ds, ctx.spec.stages)  # before anything is fitted or registered
    redundant = redundant_labels(exp, ds, ctx.spec.stages)
    for said in redundant:
        ctx.warn(f"warning: {said}")
    client = ctx.tracking.client()
    end_dead_runs(client, ctx.log)
    # `mlflow run`'s own run is not tagged with this process: that process ends it.
    if os.environ.get("MLFLOW_RUN_ID"):  # inside `mlflow run`: nest under its run
        parent = mlflow.start_run()
    else:
        # The first runs on a new store may create the experiment side by side.
        exp_id = settled(lambda: ctx.tracking.experiment_id(client, TRAINING_EXPERIMENT))
        parent = mlflow.start_run(experiment_id=exp_id, run_name=exp.name,
                                  tags=process_tags())
    results: list[ModelResult] = []
    # The store's tags per data end, read once each: the parent's end is usually a model's.
    store_at = functools.cache(functools.partial(store_tags, ctx.store))
    with parent:
        origin = {**code_version(CODE_ROOT), **frames_fingerprint(ds)}
        mlflow.set_tags({KIND_TAG: "training", "journey.experiment": exp.name,
                         "journey.definition_hash": ds.definition_hash, **origin,
                         **store_at(data_end(exp))})
        mlflow.log_params(exp.flat_params())
        log_experiment(exp, ctx.experiment_file)
        if redundant:
            mlflow.set_tag("journey.warning.labels", " ".join(redundant))
        mlflow.log_dict(ctx.spec.definition(), "features/definition.json")
        # A promotion meanwhile would judge some targets' challengers from this run and the
        # others' from an earlier one: they move together once every target is trained.
        with challengers_at_end(client, "journey train", ctx.log, ctx.warn):
            for name in exp.targets:
                t = target(name, ctx.spec.stages, exp.churn_label)
                done = (_train_survival(exp, ds, ctx) if name == SURVIVAL
                        else [train_one(t, m, ds, exp, ctx) for m in exp.models])
                choose_challenger(client, t, done, ctx)
                results += done
            _tag_model_runs(client, results, exp, origin, store_at)
    return results


def pick_challenger(client: MlflowClient, t: Target, done: list[ModelResult], ctx: Context
                    ) -> str | None:
    """Alias the best on validation as the target's challenger now, leaving out models that
    score everyone alike; with none left, the target has no challenger from this run. The
    challenger's version (None: none)."""
    best = say_challenger(client, t, done, ctx)
    version = None if best is None else best.version
    set_challenger(client, t.registered_name, version)
    return version


def say_challenger(client: MlflowClient, t: Target, done: list[ModelResult], ctx: Context
                   ) -> ModelResult | None:
    """The target's challenger from this run, said: the best on validation of the models
    that do not score everyone alike (None: none). Moving the alias is the caller's."""
    best = best_model(t, done)
    if best is None:
        # The registered model exists: this run has just registered its versions.
        stale = CHALLENGER in client.get_registered_model(t.registered_name).aliases
        ctx.warn(f"warning: {t.registered_name}: no challenger from this run, every model "
                 "scores everyone alike" + ("; the earlier challenger alias is removed"
                                            if stale else ""))
        return None
    ctx.log(f"  {t.registered_name} v{best.version} ({best.family}) is the challenger")
    return best


def set_challenger(client: MlflowClient, registered: str, version: str | None) -> None:
    """Point ``registered``'s challenger at ``version``; None removes it: a challenger from an
    earlier run would be taken for this run's by `journey promote`."""
    if version is not None:
        settled(lambda: client.set_registered_model_alias(registered, CHALLENGER, version))
    elif CHALLENGER in client.get_registered_model(registered).aliases:
        client.delete_registered_model_alias(registered, CHALLENGER)


def best_model(t: Target, done: list[ModelResult]) -> ModelResult | None:
    """The best on validation of the models that do not score everyone alike (None: none)."""
    usable = [r for r in done if not r.degenerate]
    if not usable:
        return None
    best = usable[0]
    for r in usable[1:]:
        if evaluate.better(t, evaluate.primary(t, r.valid), evaluate.primary(t, best.valid)):
            best = r
    return best


def redundant_labels(exp: Experiment, ds: Dataset, stages: Sequence[str]) -> list[str]:
    """Pairs of binary targets whose labels are identical or exact complements on every row
    both label (training, validation and test): one model trained and served twice, e.g.
    churn and conversion on a purchase-only log, where no purchase is inactivity."""
    binary = [t for t in (target(n, stages, exp.churn_label) for n in exp.targets
                          if n != SURVIVAL) if t.kind == "binary"]
    frames = (ds.train, ds.valid, ds.test)
    encoded = {t.name: [t.encode(f) for f in frames] for t in binary}
    found = []
    for i, a in enumerate(binary):
        for b in binary[i + 1:]:
            both = [ka & kb for (_, ka), (_, kb) in zip(encoded[a.name], encoded[b.name],
                                                         strict=True)]
            n = sum(int(m.sum()) for m in both)
            agree = sum(int((ya[m] == yb[m]).sum()) for (ya, _), (yb, _), m in zip(
                encoded[a.name], encoded[b.name], both, strict=True))
            if n == 0 or 0 < agree < n:
                continue
            # Not "train one of them": scoring and serving need a champion of every target.
            found.append(
                f"{a.name} ({a.label}) and {b.name} ({b.label}) labels are "
                f"{'identical' if agree == n else 'exact complements'} on all {n:,} rows "
                "that have both: the two models learn the same thing on this data (on a "
                "purchase-only log, no purchase in the window is inactivity), so read their "
                "scores as one; both are still trained, as scoring needs each")
    return found


def _tag_model_runs(client: MlflowClient, results: list[ModelResult], exp: Experiment,
                    origin: dict[str, str], store_at: Callable[[datetime], dict[str, str]]
                    ) -> None:
    """The provenance on each model run too, survival's included (compare and promote read a
    run alone), with the store's events up to the end of that run's own holdout: the data
    `journey compare` groups runs of one holdout by."""
    from mlflow.entities import RunTag

    for r in results:
        tags = {**origin, **store_at(holdout_end(exp, r.target))}
        client.log_batch(r.run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def log_experiment(exp: Experiment, source: Path | None) -> None:
    """The experiment run as ``experiment/<file>`` in the parent run: the file as written
    when it is what is trained, else the experiment itself as YAML (loadable as a spec)."""
    import mlflow

    if source is not None:
        mlflow.log_artifact(str(source), "experiment")
        return
    text = yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    mlflow.log_text(text, f"experiment/{exp.name}.yaml")
