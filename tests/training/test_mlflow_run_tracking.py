"""Under `mlflow run` (MLFLOW_RUN_ID set) Journey's decisions, backtests, personas and retraining
cycles are runs of their own in their own experiments, nested under the entry point's run,
never that run resumed: mlflow.start_run resumes MLFLOW_RUN_ID whatever experiment it is
given, which put the first decision in the entry point's run (Default experiment) and failed
on its `margin` parameter (`-P margin=` logs margin='')."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from training.promote import Decision, log_decision
from training.tracking import KIND_TAG, PROMOTION_EXPERIMENT, Tracking, own_run

PARENT_TAG = "mlflow.parentRunId"


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[Tracking]:
    yield Tracking.local(tmp_path / "home")
    while mlflow.active_run() is not None:  # a failed test must not leak its runs
        mlflow.end_run()


@pytest.fixture
def entry_run(tracking: Tracking, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `mlflow run -e promote` leaves for its command: a run in the Default experiment
    holding the entry point's parameters (empty margin: JOURNEY_PROMOTE_MARGIN applies), named
    by MLFLOW_RUN_ID."""
    client = tracking.client()
    run = client.create_run("0", run_name="entry-point")
    for key in ("margin", "store", "out"):
        client.log_param(run.info.run_id, key, "")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    return str(run.info.run_id)


def decision(name: str) -> Decision:
    return Decision(name, True, "no champion yet: the challenger becomes champion", "roc_auc",
                    0.001, "2", None, 0.81, None, "2025-10-01 +30d")


def runs_in(client: MlflowClient, experiment: str) -> list[Run]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, experiment
    return list(client.search_runs([found.experiment_id],
                                   order_by=["attributes.start_time ASC"]))


def test_decisions_under_mlflow_run_go_to_journey_promotions(tracking: Tracking,
                                                             entry_run: str) -> None:
    client = tracking.client()
    for name in ("churn", "conversion"):
        log_decision(tracking, client, decision(name))
    runs = runs_in(client, PROMOTION_EXPERIMENT)
    assert [r.info.run_name for r in runs] == ["promote-churn", "promote-conversion"]
    for r in runs:
        assert r.info.run_id != entry_run
        assert r.data.params["margin"] == "0.001"
        assert r.data.tags[KIND_TAG] == "promotion"
        assert r.data.tags[PARENT_TAG] == entry_run
        assert r.info.status == "FINISHED"
    entry = client.get_run(entry_run)
    assert entry.data.params == {"margin": "", "store": "", "out": ""}
    assert KIND_TAG not in entry.data.tags
    assert [r.info.run_id for r in runs_in(client, "Default")] == [entry_run]
    assert os.environ["MLFLOW_RUN_ID"] == entry_run  # still there for what comes next
    assert mlflow.active_run() is None


def test_outside_mlflow_run_a_decision_is_a_top_level_run(tracking: Tracking) -> None:
    client = tracking.client()
    log_decision(tracking, client, decision("churn"))
    (run,) = runs_in(client, PROMOTION_EXPERIMENT)
    assert PARENT_TAG not in run.data.tags and run.data.params["margin"] == "0.001"
    assert "MLFLOW_RUN_ID" not in os.environ


def test_an_active_run_is_the_parent_even_under_mlflow_run(tracking: Tracking,
                                                           entry_run: str) -> None:
    """As in a retraining cycle: its gate's decisions nest in the cycle's run."""
    client = tracking.client()
    cycle_exp = tracking.experiment_id(client, "journey-retrain")
    with own_run(cycle_exp, "retrain 2025-10-01") as cycle:
        log_decision(tracking, client, decision("churn"))
    (run,) = runs_in(client, PROMOTION_EXPERIMENT)
    assert run.data.tags[PARENT_TAG] == cycle.info.run_id
    assert client.get_run(cycle.info.run_id).data.tags[PARENT_TAG] == entry_run
    assert client.get_run(cycle.info.run_id).info.experiment_id == cycle_exp


def test_a_parent_given_after_training_used_the_entry_point_s_run(tracking: Tracking,
                                                                  entry_run: str) -> None:
    """Training logs into the entry point's run, and MLflow then forgets MLFLOW_RUN_ID: the
    retraining cycle passes the id it kept."""
    with mlflow.start_run() as training:  # as training.train does under `mlflow run`
        pass
    assert training.info.run_id == entry_run and "MLFLOW_RUN_ID" not in os.environ
    client = tracking.client()
    exp = tracking.experiment_id(client, "journey-retrain")
    with own_run(exp, "retrain 2025-10-01", parent_run_id=entry_run) as cycle:
        pass
    run = client.get_run(cycle.info.run_id)
    assert run.info.experiment_id == exp and run.data.tags[PARENT_TAG] == entry_run


def test_the_entry_point_s_id_is_put_back_when_the_run_fails(tracking: Tracking,
                                                             entry_run: str) -> None:
    client = tracking.client()
    exp = tracking.experiment_id(client, "journey-backtest")
    with pytest.raises(RuntimeError), own_run(exp, "backtest") as failed:
        raise RuntimeError("boom")
    assert os.environ["MLFLOW_RUN_ID"] == entry_run
    assert client.get_run(failed.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None
