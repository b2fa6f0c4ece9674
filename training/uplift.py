"""`journey uplift`: fit uplift learners per outcome on the logged action history, track them
in MLflow with Qini / AUUC on later decision windows, register them, and name each outcome's
best learner on validation its `challenger`.

"Best" is the learner whose targeting is worth most on the validation window, estimated
off-policy where the log explored (``training.uplift_ope``): what the service does with a
model is target, across actions. Qini ranks within one action at a time, and its mean over
actions weighs a rarely logged action (60 validation contacts) like the main one; on the
journey simulator it chose the learner whose served policy was worth less.

Qini here is inverse-propensity weighted: the logging policy's choice depends on the customer
(stage, support history), so comparing treated and control rows unweighted would credit the
model with the policy's targeting.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.decisions import (
    NO_ACTION,
    DecisionWindow,
    check_outcomes_observed,
    decision_frame,
)
from features.history import HistoryIndex
from features.memory_errors import memory_errors
from features.spec import FeatureSpec
from features.store import EventStore
from models.uplift import PropensityModel
from models.uplift_metrics import qini_coefficient, uplift_by_decile
from models.uplift_model import JourneyUplift, action_codes, registered_name
from training.challengers import challengers_at_end, offer_challenger
from training.dataset import midnight
from training.model_io import example_frame, log_registered
from training.outcomes import TrainingDataError
from training.registry_lock import settled
from training.stale_runs import end_dead_runs, process_tags
from training.tracking import KIND_TAG, TRAINING_EXPERIMENT, Tracking
from training.uplift_ope import policy_value
from training.uplift_spec import LABEL_OF, LearnerSpec, UpliftExperiment

Log = Callable[[str], None]
POINT_COLUMNS = ("customer_id", "cutoff", "action", "channel", "propensity", "weight",
                 "converted", "churned_inactive")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class Decisions:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    definition_hash: str

    @property
    def feature_columns(self) -> list[str]:
        return [c for c in self.train.columns if c not in POINT_COLUMNS]


def load_decisions(exp: UpliftExperiment, store_path: Path, spec: FeatureSpec,
                   log: Log = print, memory_limit: str | None = None) -> Decisions:
    """The experiment's decision frames (one history index for all three windows);
    ``memory_limit``: what DuckDB may hold building them (JOURNEY_STORE_MEMORY)."""
    with memory_errors(f"building the decision points of {exp.name} from {store_path}",
                       memory_limit):
        return _decisions(exp, store_path, spec, log, memory_limit)


def _decisions(exp: UpliftExperiment, store_path: Path, spec: FeatureSpec, log: Log,
               memory_limit: str | None) -> Decisions:
    store = EventStore(store_path, read_only=True, memory_limit=memory_limit)
    try:
        windows = [DecisionWindow(midnight(w.start), midnight(w.end), exp.control_rate,
                                  exp.seed + i) for i, (_, w) in enumerate(exp.windows)]
        # The latest window first: refused before any earlier window's points are built.
        check_outcomes_observed(store, max(windows, key=lambda w: w.end), exp.horizon_days)
        index = HistoryIndex.load(store, spec)
        frames = {}
        for window, (split, win) in zip(windows, exp.windows, strict=True):
            log(f"decision points {split} {win.start}..{win.end} ...")
            frames[split] = decision_frame(store, index, spec, window, exp.horizon_days)
    finally:
        store.close()
    train = frames["train"]
    if exp.sample_customers is not None:
        ids = train["customer_id"].drop_duplicates().sample(
            min(exp.sample_customers, train["customer_id"].nunique()), random_state=exp.seed)
        train = train[train["customer_id"].isin(set(ids))]
    return Decisions(train.reset_index(drop=True), frames["valid"], frames["test"], spec.hash)


def qini_scores(model: JourneyUplift, frame: pd.DataFrame) -> dict[str, float]:
    """Per action: the IPW Qini coefficient of the model's uplift among rows that got that
    action or none; ``qini_mean`` over the actions the model did not skip."""
    y = frame[LABEL_OF[model.outcome]].to_numpy(np.float64)
    uplift, prop = model.predict(frame), model.propensities(frame)
    # An action the model was not trained on (added later) is neither k nor control: left out.
    codes = action_codes(frame["action"].tolist(), model.actions_, lenient=True)
    out: dict[str, float] = {}
    for k, name in enumerate(model.actions_):
        rows = (codes == k) | (codes == -1)
        treated = codes[rows] == k
        e_a, e_0 = prop[rows, k + 1], prop[rows, 0]
        weight = np.where(treated, (e_a + e_0) / e_a, (e_a + e_0) / e_0)
        if treated.sum() < 20:
            continue
        out[f"qini_{name}"] = float(qini_coefficient(uplift[rows, k], treated, y[rows], weight))
    fitted = [v for k, v in out.items() if k.removeprefix("qini_") not in model.skipped_actions]
    out["qini_mean"] = float(np.mean(fitted)) if fitted else float("nan")
    return out


def _deciles(model: JourneyUplift, frame: pd.DataFrame) -> pd.DataFrame:
    y = frame[LABEL_OF[model.outcome]].to_numpy(np.float64)
    uplift = model.predict(frame)
    codes = action_codes(frame["action"].tolist(), model.actions_, lenient=True)
    parts = []
    for k, name in enumerate(model.actions_):
        rows = (codes == k) | (codes == -1)
        table = uplift_by_decile(uplift[rows, k], codes[rows] == k, y[rows])
        parts.append(pd.DataFrame(table).assign(action=name))
    return pd.concat(parts, ignore_index=True)


def fit_one(exp: UpliftExperiment, d: Decisions, outcome: str, spec: LearnerSpec,
            propensity: PropensityModel | None) -> JourneyUplift:
    label = LABEL_OF[outcome]
    est = JourneyUplift(learner=spec.kind, outcome=outcome, columns=d.feature_columns,
                        params=dict(spec.params), seed=exp.seed,
                        control_rate=exp.control_rate)
    return est.fit(d.train, d.train["action"].tolist(), d.train[label],
                   eval_set=(d.valid, d.valid["action"].tolist(), d.valid[label]),
                   propensity=propensity)


@dataclass(frozen=True)
class UpliftResult:
    outcome: str
    learner: str
    version: str
    valid: dict[str, float]
    test: dict[str, float]
    seconds: float
    valid_lift: float = float("nan")  # its targeting vs the logged policy on validation


def _tags(exp: UpliftExperiment, d: Decisions, outcome: str, learner: str) -> dict[str, str]:
    w = exp.windows
    return {
        KIND_TAG: "model",
        "journey.experiment": exp.name,
        "journey.target": f"uplift-{outcome}",
        "journey.family": f"uplift-{learner}",
        "journey.label": LABEL_OF[outcome],
        "journey.definition_hash": d.definition_hash,
        "journey.horizon_days": str(exp.horizon_days),
        "journey.test_window": f"{w.test.start}..{w.test.end}",
        "journey.valid_window": f"{w.valid.start}..{w.valid.end}",
        "journey.control_rate": str(exp.control_rate),
        "journey.seed": str(exp.seed),
    }


def _log_model(est: JourneyUplift, d: Decisions, tags: dict[str, str]) -> str:
    from mlflow.models import infer_signature

    example = example_frame(est, d.test)
    uplift = pd.DataFrame(est.predict(example), columns=[f"uplift_{a}" for a in est.actions_])
    return log_registered(est, registered_name(est.outcome), infer_signature(example, uplift),
                          example, tags)


def train_one(exp: UpliftExperiment, d: Decisions, outcome: str, spec: LearnerSpec,
              propensity: PropensityModel | None, log: Log) -> tuple[UpliftResult, JourneyUplift]:
    import mlflow

    parent = mlflow.active_run()
    assert parent is not None, "train_one runs inside train_uplift's parent run"
    started = time.perf_counter()
    est = fit_one(exp, d, outcome, spec, propensity)
    seconds = time.perf_counter() - started
    tags = _tags(exp, d, outcome, spec.kind)
    with mlflow.start_run(run_name=f"uplift-{outcome}-{spec.kind}", nested=True,
                          experiment_id=parent.info.experiment_id, tags=process_tags()):
        mlflow.set_tags(tags)
        mlflow.log_params({"learner": spec.kind, "outcome": outcome,
                           "actions": ",".join(est.actions_),
                           "skipped": "; ".join(f"{k}: {v}" for k, v in
                                                est.skipped_actions.items()) or "none",
                           **{f"model.{k}": v for k, v in spec.params.items()}})
        mlflow.log_metrics({"train_seconds": seconds, "train_rows": float(len(d.train))})
        scores = {s: qini_scores(est, f) for s, f in (("valid", d.valid), ("test", d.test))}
        for split, values in scores.items():
            mlflow.log_metrics({f"{split}_{k}": v for k, v in values.items() if np.isfinite(v)})
        chosen_on = policy_value(est, d.valid, exp.control_rate)
        value = policy_value(est, d.test, exp.control_rate)
        for prefix, v in (("valid_", chosen_on), ("test_", value)):
            mlflow.log_metrics({k: x for k, x in v.metrics(prefix).items() if np.isfinite(x)})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "uplift_by_decile_test.csv"
            _deciles(est, d.test).to_csv(path, index=False)
            mlflow.log_artifact(str(path))
        version = _log_model(est, d, tags)
    log(f"  uplift-{outcome:<8} {spec.kind}  qini valid {scores['valid']['qini_mean']:.4f} "
        f"test {scores['test']['qini_mean']:.4f}  policy vs logged valid "
        f"{chosen_on.lift.value:+.2%} test {value.lift.value:+.2%} (first choices off the "
        f"log's support {chosen_on.unsupported:.0%})  v{version}  {seconds:.1f}s")
    return UpliftResult(outcome, spec.kind, version, scores["valid"], scores["test"],
                        seconds, chosen_on.lift.value), est


def check_decisions(exp: UpliftExperiment, d: Decisions) -> None:
    """Before anything is fitted: the training and validation windows need decisions with and
    without a logged action, and both values of each outcome (a log without `action` events
    stopped in LightGBM with a traceback)."""
    problems = []
    for split, win in exp.windows:
        if split == "test":  # its Qini is reported, not fitted on
            continue
        frame: pd.DataFrame = getattr(d, split)
        name = {"train": "training", "valid": "validation"}[split]
        where = f"the {name} window ({win.start}..{win.end}, {len(frame):,} decision points)"
        treated = int((frame["action"] != NO_ACTION).sum())
        if treated == 0 or treated == len(frame):
            problems.append(f"{where} has {'no' if treated == 0 else 'only'} decisions with a "
                            "logged action")
            continue
        for outcome in exp.outcomes:
            values = frame[LABEL_OF[outcome]].dropna().unique()
            if len(values) < 2:
                problems.append(f"{outcome}: every decision in {where} has "
                                f"{LABEL_OF[outcome]} = {values[0] if len(values) else None}")
    if problems:
        raise TrainingDataError(
            f"uplift experiment {exp.name}: cannot fit: " + "; ".join(problems) + ". Uplift "
            "is learned from the logged `action` history (events with an `action`, such as "
            "action_sent) against uncontacted customer-days; choose windows where actions were "
            "logged and outcomes vary. Nothing was trained or registered.")


def train_uplift(exp: UpliftExperiment, d: Decisions, tracking: Tracking,
                 experiment_file: Path | None = None, log: Log = print, warn: Log = _stderr
                 ) -> list[UpliftResult]:
    """Every (outcome, learner): fit, log, register; alias each outcome's best `challenger`,
    every outcome's together once all are trained (none when the run fails). ``warn``: where
    a wait for the registry's lock, or the moves a failure held back, are said."""
    import mlflow

    check_decisions(exp, d)
    client = tracking.client()
    end_dead_runs(client, log)
    if os.environ.get("MLFLOW_RUN_ID"):
        parent = mlflow.start_run()
    else:
        # The first runs on a new store may create the experiment side by side.
        exp_id = settled(lambda: tracking.experiment_id(client, TRAINING_EXPERIMENT))
        parent = mlflow.start_run(experiment_id=exp_id, run_name=f"uplift-{exp.name}",
                                  tags=process_tags())
    results: list[UpliftResult] = []
    with parent:
        mlflow.set_tags({KIND_TAG: "training", "journey.experiment": exp.name,
                         "journey.definition_hash": d.definition_hash})
        mlflow.log_params(exp.flat_params())
        mlflow.log_metrics(_counts(d))
        if experiment_file is not None:
            mlflow.log_artifact(str(experiment_file), "experiment")
        propensity: PropensityModel | None = None
        # A promotion meanwhile would judge one outcome's challenger from this run beside
        # the other's from an earlier one: they move together once every outcome is done.
        with challengers_at_end(client, "journey uplift", log, warn):
            for outcome in exp.outcomes:
                done = []
                for spec in exp.learners:
                    result, est = train_one(exp, d, outcome, spec, propensity, log)
                    propensity = est.propensity_  # one logging-policy model for every learner
                    done.append(result)
                best = max(done, key=best_on_validation)
                offer_challenger(client, registered_name(outcome), best.version, best.learner,
                                 parent.info.run_id, log, warn)
                results += done
    return results


def challenger_key(valid_lift: float, valid_qini: float) -> tuple[float, float]:
    """How learners rank for challenger: the targeting's value on validation, then Qini (an
    unknown figure ranks last)."""
    return _finite(valid_lift), _finite(valid_qini)


def best_on_validation(r: UpliftResult) -> tuple[float, float]:
    """The challenger's sort key of a trained learner (``challenger_key``)."""
    return challenger_key(r.valid_lift, r.valid["qini_mean"])


def _finite(v: float) -> float:
    return v if np.isfinite(v) else -np.inf


def _counts(d: Decisions) -> dict[str, float]:
    out: dict[str, float] = {}
    for split in ("train", "valid", "test"):
        frame: pd.DataFrame = getattr(d, split)
        out[f"{split}_rows"] = float(len(frame))
        out[f"{split}_treated"] = float((frame["action"] != NO_ACTION).sum())
    return out


def summary(results: list[UpliftResult]) -> list[dict[str, Any]]:
    return [{"outcome": r.outcome, "learner": r.learner, "version": r.version,
             "valid_qini": r.valid["qini_mean"], "test_qini": r.test["qini_mean"],
             "valid_policy_lift": r.valid_lift}
            for r in results]
