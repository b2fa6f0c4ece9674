"""`train_experiment` end to end on the shared simulated world: the small experiment (3 targets x
baseline, LightGBM) is trained once into its own MLflow home (the `trained` fixture), then
the registry, the tracked runs, the models and their quality are checked."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import get_model_info

from models.estimators import JourneyClassifier
from models.lgbm import LightGBMClassifier
from models.registry import load_alias
from models.targets import TARGETS, target
from tests.training.world import CUTOFFS, SMALL, Trained, World, copy_registry, train_into
from training import evaluate
from training.model_io import example_frame
from training.tracking import KIND_TAG, TRAINING_EXPERIMENT
from training.train import CHALLENGER

pytestmark = pytest.mark.slow  # the shared training takes ~30-60 s (once per session)

REGISTERED = {"next_stage": "journey-next-stage", "churn": "journey-churn",
              "conversion": "journey-conversion"}
BINARY_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile",
                  "capture_top_decile")
MULTICLASS_METRICS = ("macro_auc", "log_loss", "top1_accuracy", "brier", "ece")
BINARY_PLOTS = {"roc.png", "calibration.png", "lift.png", "feature_importance.png",
                "confusion_matrix.png"}


def labelled(world: World, trained: Trained, name: str, frame: pd.DataFrame
             ) -> tuple[pd.DataFrame, np.ndarray]:
    t = target(name, world.spec.stages, trained.exp.churn_label)
    y, known = t.encode(frame)
    return frame[known], y[known]


def test_registers_six_versions_and_three_challengers(world: World, trained: Trained) -> None:
    client = trained.tracking.client()
    assert len(trained.results) == 6
    assert {(r.target, r.family) for r in trained.results} == {
        (t, f) for t in TARGETS for f in ("baseline", "lightgbm")}
    for name, registered in REGISTERED.items():
        versions = client.search_model_versions(f"name = '{registered}'")
        assert sorted(int(v.version) for v in versions) == [1, 2]
        challenger = client.get_model_version_by_alias(registered, CHALLENGER)
        # The challenger is the best candidate on validation (never judged on test).
        t = target(name, world.spec.stages)
        candidates = [r for r in trained.results if r.target == name]
        key = [evaluate.primary(t, r.valid) for r in candidates]
        best = candidates[int(np.argmin(key) if not t.higher_is_better else np.argmax(key))]
        assert str(challenger.version) == best.version
        assert f"{registered} v{best.version} ({best.family}) is the challenger" in " ".join(
            trained.log)
    # (search_model_versions leaves aliases empty in MLflow's SQL store: ask per version.)
    aliased = [mv for r in trained.results
               if (mv := client.get_model_version(REGISTERED[r.target], r.version)).aliases]
    assert len(aliased) == 3 and all(mv.aliases == [CHALLENGER] for mv in aliased)
    for registered in REGISTERED.values():
        assert set(client.get_registered_model(registered).aliases) == {CHALLENGER}


@pytest.mark.parametrize("name", ["churn", "conversion"])
def test_binary_quality(trained: Trained, name: str) -> None:
    lgbm, base = trained.result(name, "lightgbm"), trained.result(name, "baseline")
    assert lgbm.test["roc_auc"] > base.test["roc_auc"]
    assert lgbm.test["roc_auc"] > 0.85
    assert lgbm.test["pr_auc"] > lgbm.test["base_rate"]  # better than chance
    assert lgbm.test["lift_top_decile"] > 1.5
    for r in (lgbm, base):
        assert r.test["ece"] < 0.05  # calibrated on validation, still calibrated on test
        assert r.test["n"] > 2000


def test_next_stage_quality(world: World, trained: Trained) -> None:
    lgbm, base = trained.result("next_stage", "lightgbm"), trained.result("next_stage", "baseline")
    assert lgbm.test["log_loss"] < base.test["log_loss"]
    # Both beat predicting the training class frequencies for everyone.
    _, y_train = labelled(world, trained, "next_stage", trained.ds.train)
    _, y_test = labelled(world, trained, "next_stage", trained.ds.test)
    k = len(world.spec.stages) + 1
    freq = np.bincount(y_train, minlength=k) / len(y_train)
    prior_loss = float(-np.mean(np.log(np.clip(freq[y_test], 1e-15, 1))))
    assert base.test["log_loss"] < prior_loss - 0.2
    assert lgbm.test["macro_auc"] > 0.8
    assert lgbm.test["top1_accuracy"] > np.max(np.bincount(y_test)) / len(y_test)


def test_runs_carry_params_metrics_tags_and_artifacts(world: World, trained: Trained,
                                                      tmp_path: Path) -> None:
    client = trained.tracking.client()
    for r in trained.results:
        run = client.get_run(r.run_id)
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        assert params["features"] == ("rfm" if r.family == "baseline" else
                                      ",".join(trained.exp.models[1].feature_families))
        assert int(params["n_features"]) > 0
        assert params["calibration_method"] in ("isotonic", "sigmoid", "none")
        assert params["search_trials"] == "0"
        assert params["model.seed"] == "42"
        if r.family == "lightgbm":
            assert params["model.learning_rate"] == "0.1"
            assert params["model.max_rounds"] == "300"
            assert 1 <= metrics["best_iteration"] < 300
        else:
            assert params["model.C"] == "1.0"
        names = MULTICLASS_METRICS if r.target == "next_stage" else BINARY_METRICS
        for m in names:
            assert metrics[f"test_{m}"] == pytest.approx(r.test[m], abs=1e-12)
            assert f"valid_{m}" in metrics
        assert metrics["train_rows"] > 0 and metrics["train_seconds"] > 0
        assert tags[KIND_TAG] == "model"
        assert tags["journey.target"] == r.target and tags["journey.family"] == r.family
        assert tags["journey.definition_hash"] == world.spec.hash
        assert tags["journey.train_cutoffs"] == ",".join(CUTOFFS["train"])
        assert tags["journey.valid_cutoff"] == CUTOFFS["valid"]
        assert tags["journey.test_cutoff"] == CUTOFFS["test"]
        assert tags["journey.horizon_days"] == "30"
        assert tags["journey.experiment"] == "small"

        top = {a.path for a in client.list_artifacts(r.run_id)}
        assert "holdout_predictions.parquet" in top
        plots = {Path(a.path).name for a in client.list_artifacts(r.run_id, "plots")}
        if r.target == "next_stage":
            assert {"roc.png", "confusion_matrix.png", "feature_importance.png"} <= plots
            assert {f"calibration_{s}.png" for s in (*world.spec.stages, "inactive")} <= plots
        else:
            assert plots >= BINARY_PLOTS
        assert plots


def test_model_version_has_signature_example_and_tags(world: World, trained: Trained) -> None:
    client = trained.tracking.client()
    for r in trained.results:
        registered = REGISTERED[r.target]
        mv = client.get_model_version(registered, r.version)
        assert mv.run_id == r.run_id
        assert mv.tags["journey.definition_hash"] == world.spec.hash
        assert mv.tags["journey.horizon_days"] == "30"
        assert mv.tags["journey.test_cutoff"] == CUTOFFS["test"]
        assert mv.tags["journey.train_cutoffs"] == ",".join(CUTOFFS["train"])
        info = get_model_info(f"models:/{registered}/{r.version}")
        assert {"sklearn", "python_function"} <= set(info.flavors)
        assert info.signature is not None
        classes = target(r.target, world.spec.stages).classes
        assert info.signature.outputs.input_names() == [f"p_{c}" for c in classes]
        assert len(info.signature.inputs.input_names()) == int(
            client.get_run(r.run_id).data.params["n_features"])
        assert info.saved_input_example_info is not None


@pytest.mark.parametrize("name", list(REGISTERED))
def test_native_load_matches_pyfunc_and_holdout(world: World, trained: Trained, name: str,
                                                tmp_path: Path) -> None:
    client = trained.tracking.client()
    loaded = load_alias(client, REGISTERED[name], CHALLENGER)
    assert isinstance(loaded.model, JourneyClassifier)
    assert loaded.tags["journey.definition_hash"] == world.spec.hash
    est = loaded.model
    # The pyfunc path (what `mlflow models serve` would use) gives the same probabilities.
    example = example_frame(est, trained.ds.test, rows=200)
    native = est.predict_proba(example)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{REGISTERED[name]}@{CHALLENGER}")
    np.testing.assert_allclose(np.asarray(pyfunc.predict(example), dtype=float), native,
                               rtol=0, atol=1e-12)
    # holdout_predictions.parquet holds exactly the test rows the metrics came from.
    result = next(r for r in trained.results if r.version == str(loaded.version.version)
                  and r.target == name)
    path = client.download_artifacts(result.run_id, "holdout_predictions.parquet", str(tmp_path))
    preds = pd.read_parquet(path)
    x, y = labelled(world, trained, name, trained.ds.test)
    assert list(preds["customer_id"]) == list(x["customer_id"])
    np.testing.assert_array_equal(preds["label"].to_numpy(), y)
    p_cols = [c for c in preds.columns if c.startswith("p_")]
    np.testing.assert_allclose(preds[p_cols].to_numpy(), est.predict_proba(x), atol=1e-12)
    np.testing.assert_allclose(preds[p_cols].sum(axis=1), 1.0, atol=1e-9)
    metrics = evaluate.metrics(target(name, world.spec.stages), y, preds[p_cols].to_numpy())
    assert evaluate.primary(target(name, world.spec.stages), metrics) == pytest.approx(
        evaluate.primary(target(name, world.spec.stages), result.test), abs=1e-12)


def test_parent_run_records_the_experiment(world: World, trained: Trained) -> None:
    client = trained.tracking.client()
    exp = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    assert exp is not None
    parents = client.search_runs([exp.experiment_id],
                                 filter_string=f"tags.`{KIND_TAG}` = 'training'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name == "small"
    assert parent.data.tags["journey.definition_hash"] == world.spec.hash
    assert parent.data.params["horizon_days"] == "30"
    assert parent.data.params["cutoffs.test"] == CUTOFFS["test"]
    assert parent.data.params["seed"] == "42"
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "experiment")} == {
        "experiment/small.yaml"}
    definition = mlflow.artifacts.load_dict(
        f"{parent.info.artifact_uri}/features/definition.json")
    assert definition == world.spec.definition()
    for r in trained.results:
        assert client.get_run(r.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_model_runs_stay_in_the_home(trained: Trained) -> None:
    client = trained.tracking.client()
    exp = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    assert exp is not None
    root = trained.tracking.artifact_root
    assert root is not None
    for r in trained.results:
        run = client.get_run(r.run_id)
        assert run.info.experiment_id == exp.experiment_id
        assert run.info.artifact_uri.startswith(root)


def test_log_lines(trained: Trained) -> None:
    text = "\n".join(trained.log)
    for name in TARGETS:
        for family in ("baseline", "lightgbm"):
            assert f"  {name:<10} {family:<8} valid " in text
    assert sum(line.endswith(" is the challenger") for line in trained.log) == 3


def test_same_seed_same_metrics(world: World, trained: Trained, tmp_path: Path) -> None:
    """Training again from the same snapshots with the same seed reproduces every metric.

    LightGBM is the family with randomness (bagging, feature fraction); a multiclass and a
    binary target keep the retraining short."""
    lgbm = {**SMALL, "name": "again", "targets": ["next_stage", "churn"],
            "models": [SMALL["models"][1]]}
    again = train_into(world, tmp_path, lgbm,
                       tracking=copy_registry(trained.tracking, tmp_path / "copy"))
    assert [(r.target, r.family) for r in again.results] == [
        ("next_stage", "lightgbm"), ("churn", "lightgbm")]
    for r in again.results:
        first = trained.result(r.target, r.family)
        assert set(r.test) == set(first.test)
        for key, value in r.test.items():
            assert value == pytest.approx(first.test[key], abs=1e-9, nan_ok=True), key
        assert r.valid == pytest.approx(first.valid, abs=1e-9, nan_ok=True)
        assert r.params == first.params
        assert r.version == "3"  # appended to the copied registry
    client = again.tracking.client()
    for r in again.results:  # each target's only candidate is the new challenger
        mv = client.get_model_version_by_alias(REGISTERED[r.target], CHALLENGER)
        assert (str(mv.version), mv.run_id) == ("3", r.run_id)


def test_lightgbm_early_stops_on_the_validation_window(trained: Trained) -> None:
    client = trained.tracking.client()
    for name in TARGETS:
        loaded = load_alias(client, REGISTERED[name], CHALLENGER)
        if isinstance(loaded.model, LightGBMClassifier):
            assert loaded.model.best_iteration_ < 300
            assert loaded.model.booster_.current_iteration() < 300
