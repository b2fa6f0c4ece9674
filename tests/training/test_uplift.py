"""`journey uplift`: uplift learners fitted on the world's action log, tracked and registered in
MLflow with Qini on later windows, each outcome's best named challenger, and the gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.decisions import NO_ACTION
from features.errors import ConfigError
from models.registry import alias_version, load_native
from models.uplift_model import JourneyUplift, SharedPropensities, registered_name
from tests.training.world import SMALL_UPLIFT, UpliftTrained, World, clean_env, write_spec
from training.outcomes import TrainingDataError
from training.uplift import (
    UpliftResult,
    best_on_validation,
    check_decisions,
    load_decisions,
    qini_scores,
    train_uplift,
)
from training.uplift_gate import decide_uplift
from training.uplift_spec import load_uplift_experiment


def test_every_learner_and_outcome_is_registered_with_its_qini(
        uplift_trained: UpliftTrained) -> None:
    got = {(r.outcome, r.learner) for r in uplift_trained.results}
    assert got == {("convert", "t"), ("convert", "x"), ("churn", "t"), ("churn", "x")}
    client = uplift_trained.tracking.client()
    for r in uplift_trained.results:
        version = client.get_model_version(registered_name(r.outcome), r.version)
        tags = dict(version.tags)
        assert tags["journey.family"] == f"uplift-{r.learner}"
        assert tags["journey.test_window"] == "2025-09-01..2025-09-22"
        assert version.run_id is not None
        run = client.get_run(version.run_id)
        assert "valid_qini_mean" in run.data.metrics and "test_qini_mean" in run.data.metrics
        assert {"test_dr_policy_value", "test_logged_policy_value", "test_dr_lift_vs_logged",
                "valid_dr_lift_vs_logged", "valid_dr_unsupported_share"} <= set(run.data.metrics)
        assert run.data.metrics["valid_dr_lift_vs_logged"] == pytest.approx(r.valid_lift)
        assert np.isfinite(r.valid["qini_mean"]) and np.isfinite(r.test["qini_mean"])
        assert np.isfinite(r.valid_lift)
    for outcome in ("convert", "churn"):
        best = max((r for r in uplift_trained.results if r.outcome == outcome),
                   key=lambda r: r.valid_lift)
        ch = alias_version(client, registered_name(outcome), "challenger")
        assert ch is not None and str(ch.version) == best.version


def _result(learner: str, lift: float, qini: float) -> UpliftResult:
    return UpliftResult("convert", learner, learner, {"qini_mean": qini}, {}, 1.0, lift)


def test_the_challenger_is_the_learner_whose_targeting_is_worth_most_on_validation() -> None:
    """Not the better Qini: the service targets across actions, which Qini does not judge."""
    runs = [_result("t", 0.001, 0.12), _result("x", 0.003, -0.10)]
    assert max(runs, key=best_on_validation).learner == "x"
    tied = [_result("t", 0.002, 0.12), _result("x", 0.002, -0.10)]
    assert max(tied, key=best_on_validation).learner == "t"
    unknown = [_result("t", float("nan"), 0.5), _result("x", -0.01, 0.0)]
    assert max(unknown, key=best_on_validation).learner == "x"


def test_the_first_gate_promotes_and_a_second_finds_the_champion(
        uplift_trained: UpliftTrained, world: World) -> None:
    first = {d.target: d for d in uplift_trained.promotions}
    assert all(d.promoted and "no champion yet" in d.reason for d in first.values())
    for d in first.values():  # the policy's off-policy value is measured and recorded
        assert "off-policy (doubly robust)" in d.reason
        assert np.isfinite(d.figures["challenger_dr_policy_value"])
        assert 0 < d.figures["challenger_logged_policy_value"] < 1
    client = uplift_trained.tracking.client()
    with clean_env():
        again = decide_uplift("uplift-convert", client, world.store, world.spec, 0.0)
    assert not again.promoted and "already the champion" in again.reason


def test_the_registered_model_scores_what_training_measured(
        uplift_trained: UpliftTrained) -> None:
    client = uplift_trained.tracking.client()
    for r in uplift_trained.results:
        with clean_env():
            model = load_native(client.get_model_version(registered_name(r.outcome), r.version),
                                JourneyUplift)
        assert isinstance(model, JourneyUplift)
        scores = qini_scores(model, uplift_trained.decisions.test)
        assert scores["qini_mean"] == pytest.approx(r.test["qini_mean"], abs=1e-9)
        uplift = model.predict(uplift_trained.decisions.test.head(50))
        assert uplift.shape == (50, len(model.actions_)) and np.all(np.abs(uplift) < 1)
        # What serving needs to leave out actions the log never explored for a customer.
        assert model.control_rate == SMALL_UPLIFT["control_rate"]
        assert model.support_floor_.shape == (len(model.actions_),)
        support = model.supported(model.matrix(uplift_trained.decisions.test.head(50)))
        assert support is not None and support.shape == (50, len(model.actions_))


def test_the_training_log_names_the_challengers(uplift_trained: UpliftTrained) -> None:
    text = "\n".join(uplift_trained.log)
    assert "journey-uplift-convert v" in text and "is the challenger" in text


def test_windows_that_overlap_in_time_are_refused(tmp_path: Path) -> None:
    spec = {**SMALL_UPLIFT, "windows": {**SMALL_UPLIFT["windows"],
                                        "valid": {"start": "2025-06-10", "end": "2025-07-01"}}}
    with pytest.raises(ConfigError, match=r"must be observed by valid\.start"):
        load_uplift_experiment(write_spec(tmp_path, spec))


def test_unknown_learner_params_are_refused(tmp_path: Path) -> None:
    spec = {**SMALL_UPLIFT, "learners": [{"kind": "t", "params": {"leaves": 3}}]}
    with pytest.raises(ConfigError, match="unknown learner params"):
        load_uplift_experiment(write_spec(tmp_path, spec))


def test_windows_without_actions_or_varying_outcomes_stop_before_any_fit(
        uplift_trained: UpliftTrained) -> None:
    exp, d = uplift_trained.exp, uplift_trained.decisions
    check_decisions(exp, d)  # the world's windows hold both
    untreated = d.train.assign(action=NO_ACTION)
    no_buyers = d.valid.assign(converted=False)
    with pytest.raises(TrainingDataError) as info:
        train_uplift(exp, replace(d, train=untreated, valid=no_buyers),
                     None, log=lambda _: None)  # type: ignore[arg-type]  # never reached
    message = str(info.value)
    assert f"uplift experiment {exp.name}: cannot fit: the training window (" in message
    assert "decision points) has no decisions with a logged action" in message
    assert "convert: every decision in the validation window (" in message
    assert "converted = False" in message and "Nothing was trained or registered" in message


def test_a_test_window_past_the_data_is_refused_before_any_points_are_built(
        world: World, tmp_path: Path) -> None:
    spec = {**SMALL_UPLIFT, "windows": {**SMALL_UPLIFT["windows"],
                                        "test": {"start": "2025-12-01", "end": "2025-12-20"}}}
    exp = load_uplift_experiment(write_spec(tmp_path, spec))
    lines: list[str] = []
    with pytest.raises(ConfigError, match=r"outcomes of decisions up to 2025-12-20 need"):
        load_decisions(exp, world.store, world.spec, log=lines.append)
    assert lines == []  # no window's decision points were built first


def test_a_model_is_judged_on_decisions_with_an_action_it_does_not_know(
        uplift_trained: UpliftTrained) -> None:
    """A champion trained before an action joined the catalog is still scored by the gate."""
    client = uplift_trained.tracking.client()
    r = uplift_trained.results[0]
    with clean_env():
        model = load_native(client.get_model_version(registered_name(r.outcome), r.version),
                            JourneyUplift)
    assert isinstance(model, JourneyUplift)
    test = uplift_trained.decisions.test
    renamed = test.assign(action=test["action"].where(test.index % 7 != 0, "brand_new"))
    scores = qini_scores(model, renamed)
    assert np.isfinite(scores["qini_mean"])


def test_the_outcomes_x_learners_share_one_propensity_model_s_scores(
        uplift_trained: UpliftTrained, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both outcomes' X-learners fit the logging policy on the same decision rows: the same
    trees, so a batch scores them once (``SharedPropensities``) with the same answers."""
    client = uplift_trained.tracking.client()
    models = {}
    for r in uplift_trained.results:
        with clean_env():
            model = load_native(client.get_model_version(registered_name(r.outcome), r.version),
                                JourneyUplift)
        assert isinstance(model, JourneyUplift)
        models[(r.outcome, r.learner)] = model
    convert, churn = models[("convert", "x")], models[("churn", "x")]
    assert convert.propensity_digest() == churn.propensity_digest() is not None
    assert models[("convert", "t")].propensity_digest() is None  # its predictions use none
    frame = uplift_trained.decisions.test.head(300)
    rows = convert.matrix(frame)
    alone = {m: m.predict_matrix_with_control(rows) for m in (convert, churn)}
    calls: list[int] = []

    def counted(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def predict_proba(rows: Any) -> Any:
            calls.append(len(rows))
            return f(rows)
        return predict_proba

    for m in (convert, churn):
        scorer = m.learner_.propensity_model_
        monkeypatch.setattr(scorer, "predict_proba", counted(scorer.predict_proba))
    shared = SharedPropensities()
    for m in (convert, churn):
        got = m.predict_shared(rows, shared)
        for a, b in zip(got, alone[m], strict=True):
            np.testing.assert_array_equal(a, b)
    assert calls == [300]
    churn.predict_shared(rows[:100], shared)  # other rows: scored again
    assert calls == [300, 100]
