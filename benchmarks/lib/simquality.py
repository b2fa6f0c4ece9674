"""Simulator quality: Journey's models against the oracle's true probabilities.

The default experiment (experiments/default.yaml: cutoffs 2025-07-01 and 08-01 for training,
09-01 for validation, 10-01 for the test holdout, 30-day horizon) is trained end to end on a
simulated store: snapshots, fit, calibration, MLflow logging and registration, timed as one
(`train_seconds`). The oracle replays the simulation to the test cutoff and draws
``replicas`` futures per customer for a sample of the holdout; the model and the oracle are
scored on exactly those rows. Monte Carlo noise makes the oracle slightly worse than the
truth (its AUC a little lower, its log loss a little higher), so the replica count is
reported with the figures. The simulator's true probabilities also use state no event log
shows (whether the customer has silently churned, their latent type and engagement): the
next-stage model refitted with that state added (`next_stage_logloss_with_*`) shows how much
of its gap to the oracle is missing information rather than modelling, and the posterior
oracle (`next_stage_logloss_bound`: the log plus type and starting engagement, uncertain only
about silent churn) gives a log loss no model of the log can expect to beat.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.lib.simstore import build_sim_store
from features.simulator.oracle import hidden_state_for, oracle_for
from features.simulator.posterior import posterior_for
from features.spec import load_spec
from models.metrics import binary_metrics, multiclass_metrics
from models.registry import load_alias
from models.targets import target
from training.dataset import Dataset, SnapshotSource, load_dataset
from training.experiment import load_experiment
from training.tracking import Tracking
from training.train import CHALLENGER, Context, train_experiment

EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "default.yaml"
SIM_DAYS, SIM_SEED = 365, 42
TEST_CUTOFF = datetime(2025, 10, 1, tzinfo=UTC)  # the experiment's test cutoff
SMOOTH = 0.5  # additive smoothing of the oracle's Monte Carlo class frequencies (log loss)


def hidden_state_ablation(sim: Path, ds: Dataset, rows: pd.DataFrame, y: np.ndarray, seed: int
                          ) -> dict[str, float]:
    """How much of the gap to the oracle is information no event log holds. The next-stage
    model is refitted exactly as the experiment fits it (same rows, cutoffs, parameters,
    early stopping and calibration) with the simulator's hidden state at each cutoff added as
    features: their latent type and starting engagement (what the posterior oracle knows
    beyond the log, so this fit is comparable with it); whether the customer is still alive
    (churn is silent); then alive, type and current engagement, everything the oracle
    conditions on. Scored on the oracle rows, like the model itself."""
    from features.layout import families
    from models.lgbm import LightGBMClassifier

    spec = load_spec()
    t = target("next_stage", spec.stages)
    frames = (ds.train, ds.valid, rows)
    hidden = hidden_state_for(sim, sorted({c for f in frames for c in f["cutoff"].unique()}))
    hidden = hidden.rename(columns={"alive": "hidden_alive", "latent_type": "hidden_type",
                                    "engagement": "hidden_engagement",
                                    "start_engagement": "hidden_start_engagement"})
    hidden["hidden_alive"] = hidden["hidden_alive"].astype(float)
    tr, va, te = (f.merge(hidden, on=["customer_id", "cutoff"], how="left", validate="1:1")
                  for f in frames)
    (ytr, ktr), (yva, kva) = t.encode(tr), t.encode(va)
    exp = load_experiment(EXPERIMENT)
    params = next(m.params for m in exp.models if m.family == "lightgbm")
    observable = [c for cols in families(spec).values() for c in cols if c in ds.feature_columns]
    out = {}
    ablations = {"with_type": ["hidden_type", "hidden_start_engagement"],
                 "with_alive": ["hidden_alive"],
                 "with_hidden_state": ["hidden_alive", "hidden_type", "hidden_engagement"]}
    for name, extra in ablations.items():
        model = LightGBMClassifier(classes=t.classes, columns=observable + extra,
                                   calibration=exp.calibration, seed=seed, **params)
        model.fit(tr[ktr], ytr[ktr], eval_set=(va[kva], yva[kva]))
        proba = model.predict_proba(te)
        loss = -np.log(np.clip(proba[np.arange(len(te)), y], 1e-15, 1)).mean()
        out[f"next_stage_logloss_{name}"] = round(float(loss), 4)
    return out


def _train(store: Path, work: Path, seed: int) -> tuple[dict[str, Any], Tracking, Dataset]:
    exp = load_experiment(EXPERIMENT).model_copy(update={"seed": seed})
    spec = load_spec()
    snapshots = work / f"snapshots-{int(time.time())}"  # fresh: the timing includes features
    tracking = Tracking.local(work)
    started = time.perf_counter()
    source = SnapshotSource(store, snapshots, spec, log=lambda _: None)
    try:
        ds = load_dataset(exp, source)
    finally:
        source.close()
    results = train_experiment(exp, ds, Context(tracking, spec, EXPERIMENT, log=print))
    took = time.perf_counter() - started
    by = {(r.target, r.family): r for r in results}
    figures = {"train_seconds": round(took, 1), "train_rows": len(ds.train),
               "test_rows": len(ds.test)}
    for name in ("churn", "conversion", "next_stage"):
        m = "roc_auc" if name != "next_stage" else "log_loss"
        for fam in ("lightgbm", "baseline"):
            figures[f"{name}_{m}_{fam}_full_holdout"] = round(by[(name, fam)].test[m], 4)
    eces = [by[(n, "lightgbm")].test["ece"] for n in ("churn", "conversion", "next_stage")]
    figures["ece_max"] = round(max(eces), 4)
    return figures, tracking, ds


def _oracle_rows(sim: Path, test: pd.DataFrame, sample: int, replicas: int, seed: int
                 ) -> pd.DataFrame:
    truth = oracle_for(sim, TEST_CUTOFF, 30, replicas=replicas, sample=sample, sample_seed=seed)
    return test.merge(truth, on="customer_id", how="inner")


def _smoothed(frame: pd.DataFrame, classes: tuple[str, ...], replicas: int) -> np.ndarray:
    """Next-stage probabilities from Monte Carlo frequencies, additively smoothed so that a
    class no future reached does not score an infinite loss."""
    freq = frame[[f"p_next_{c}" for c in classes]].to_numpy() * replicas
    smoothed: np.ndarray = (freq + SMOOTH) / (replicas + SMOOTH * len(classes))
    return smoothed


def _posterior_rows(sim: Path, rows: pd.DataFrame, sample: int, replicas: int, seed: int
                    ) -> pd.DataFrame:
    """The posterior oracle (``features.simulator.posterior``) for the oracle rows, in their
    order. It knows the log plus each customer's latent type and starting engagement, but
    not who has silently churned, so no model of the log can expect to beat it."""
    post = posterior_for(sim, TEST_CUTOFF, 30, replicas=replicas, sample=sample,
                         sample_seed=seed)  # the oracle's customers
    return rows[["customer_id"]].merge(post, on="customer_id", how="left", validate="1:1")


def _binary_figures(rows: pd.DataFrame, post: pd.DataFrame, client: Any) -> dict[str, float]:
    """Churn and conversion ROC-AUC: the challenger's, the oracle's and the posterior
    oracle's (the best ranking a model of the log can expect)."""
    spec, out = load_spec(), {}
    for name, truth_col in (("churn", "p_inactive"), ("conversion", "p_convert")):
        t = target(name, spec.stages)
        y, known = t.encode(rows)
        model = load_alias(client, t.registered_name, CHALLENGER).model
        ours = binary_metrics(y[known], model.predict_proba(rows[known])[:, 1])["roc_auc"]
        oracle, bound = (binary_metrics(y[known], np.clip(f.loc[known, truth_col].to_numpy(), 0, 1)
                                        )["roc_auc"] for f in (rows, post))
        out[f"{name}_auc"], out[f"{name}_auc_oracle"] = round(ours, 4), round(oracle, 4)
        out[f"{name}_auc_ratio"] = round(ours / oracle, 4)
        out[f"{name}_auc_bound"] = round(bound, 4)
        out[f"{name}_auc_vs_bound"] = round(ours / bound, 4)
    return out


def _next_stage_figures(rows: pd.DataFrame, post: pd.DataFrame, client: Any, replicas: int
                        ) -> dict[str, float]:
    t = target("next_stage", load_spec().stages)
    y, known = t.encode(rows)
    model = load_alias(client, t.registered_name, CHALLENGER).model
    ours = multiclass_metrics(y[known], model.predict_proba(rows[known]), t.classes)["log_loss"]
    oracle, bound = (multiclass_metrics(y[known], _smoothed(f[known], t.classes, replicas),
                                        t.classes)["log_loss"] for f in (rows, post))
    return {"next_stage_logloss": round(ours, 4), "next_stage_logloss_oracle": round(oracle, 4),
            "next_stage_logloss_ratio": round(ours / oracle, 4),
            "next_stage_logloss_bound": round(bound, 4),
            "next_stage_logloss_ratio_bound": round(bound / oracle, 4),
            "next_stage_logloss_vs_bound": round(ours / bound, 4)}


def sim_quality(work: Path, customers: int, sample: int, replicas: int, seed: int = 0
                ) -> dict[str, Any]:
    root = work / f"quality-{customers}"
    store = build_sim_store(root, customers, SIM_DAYS, SIM_SEED)
    figures, tracking, ds = _train(store, root, seed)
    rows = _oracle_rows(root / "sim", ds.test, sample, replicas, seed)
    post = _posterior_rows(root / "sim", rows, sample, replicas, seed)
    client = tracking.client()
    out: dict[str, Any] = {**_binary_figures(rows, post, client),
                           **_next_stage_figures(rows, post, client, replicas)}
    t = target("next_stage", load_spec().stages)
    y, known = t.encode(rows)
    oracle = out["next_stage_logloss_oracle"]
    for name, loss in hidden_state_ablation(root / "sim", ds, rows[known], y[known], seed).items():
        out[name] = loss
        out[name.replace("logloss", "logloss_ratio")] = round(loss / oracle, 4)
    out.update(figures)
    out.update({"sim_customers": customers, "sim_days": SIM_DAYS, "sim_seed": SIM_SEED,
                "oracle_rows": int(known.sum()), "oracle_replicas": replicas, "seed": seed})
    return out
