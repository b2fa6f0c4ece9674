"""`journey uplift` moves its challengers as `journey train` does: under the registry's lock,
every outcome's together once all are trained, never back to the model of a run that started
before the current challenger's (saying so), and surviving another writer's racing insert.

The learners are not fitted: each (outcome, learner) registers a model version of its own
nested run, so what is tested is how the run's challengers reach the registry."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.decisions import NO_ACTION
from models.uplift_model import registered_name
from tests.training.world import SMALL_UPLIFT, write_spec
from training import uplift
from training.registry_lock import registry_lock
from training.tracking import Tracking
from training.train import CHALLENGER
from training.uplift import Decisions, UpliftResult, train_uplift
from training.uplift_spec import LearnerSpec, UpliftExperiment, load_uplift_experiment

pytestmark = pytest.mark.slow  # an MLflow store of its own: ~6 s a test

OUTCOMES = ("convert", "churn")
QINI = {"t": 0.1, "x": 0.2}  # x is every outcome's best on validation


def decisions() -> Decisions:
    """Decision points with and without an action, and both values of each outcome."""
    frame = pd.DataFrame({"customer_id": ["a", "b"], "cutoff": ["2025-03-01"] * 2,
                          "action": [NO_ACTION, "email"], "converted": [0.0, 1.0],
                          "churned_inactive": [1.0, 0.0]})
    return Decisions(frame, frame, frame, "definition")


def experiment(folder: Path, name: str) -> UpliftExperiment:
    return load_uplift_experiment(write_spec(folder, {**SMALL_UPLIFT, "name": name}))


def registering(tracking: Tracking, hook: Callable[[str, str], None]) -> Callable[..., Any]:
    """A ``train_one`` that registers a version of its own nested run instead of fitting;
    ``hook(experiment name, outcome)`` before each outcome's first learner."""

    def train_one(exp: UpliftExperiment, d: Decisions, outcome: str, spec: LearnerSpec,
                  propensity: Any, log: Callable[[str], None]) -> tuple[UpliftResult, Any]:
        if spec.kind == "t":
            hook(exp.name, outcome)
        client = tracking.client()
        parent = mlflow.active_run()
        assert parent is not None
        with mlflow.start_run(nested=True, experiment_id=parent.info.experiment_id) as run:
            with suppress(MlflowException):  # registered by an earlier run
                client.create_registered_model(registered_name(outcome))
            version = client.create_model_version(registered_name(outcome),
                                                  f"{run.info.artifact_uri}/model",
                                                  run.info.run_id).version
        scores = {"qini_mean": QINI[spec.kind]}
        return (UpliftResult(outcome, spec.kind, str(version), scores, scores, 0.0),
                SimpleNamespace(propensity_=None))

    return train_one


def challengers(tracking: Tracking) -> dict[str, str | None]:
    client = tracking.client()
    found: dict[str, str | None] = {}
    for outcome in OUTCOMES:
        try:
            aliases = client.get_registered_model(registered_name(outcome)).aliases
        except MlflowException:  # not registered yet
            aliases = {}
        found[outcome] = str(aliases[CHALLENGER]) if CHALLENGER in aliases else None
    return found


def bests(results: list[UpliftResult]) -> dict[str, str | None]:
    return {r.outcome: r.version for r in results if r.learner == "x"}


def _wait_for(check: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tracking:
    monkeypatch.chdir(tmp_path)  # MLflow's Default experiment folder lands here
    return Tracking.local(tmp_path / "home")


def test_an_uplift_run_waits_for_the_lock_and_moves_every_challenger_at_its_end(
        tracking: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the outcomes, the first's challenger has not moved (before: it had); at the
    end the run waits for a promotion holding the registry's lock (before: it took none)."""
    seen: list[dict[str, str | None]] = []
    monkeypatch.setattr(uplift, "train_one", registering(
        tracking, lambda _, outcome: seen.append(challengers(tracking))
        if outcome == "churn" else None))
    notes: list[str] = []
    got: list[list[UpliftResult]] = []
    exp = experiment(tmp_path, "alone")
    run = threading.Thread(target=lambda: got.append(train_uplift(
        exp, decisions(), tracking, log=notes.append, warn=notes.append)))
    with registry_lock(tracking.tracking_uri, "promotion", pytest.fail):
        run.start()
        _wait_for(lambda: any(n.startswith("waiting") for n in notes) or not run.is_alive(),
                  "the run to reach the lock")
        assert run.is_alive() and challengers(tracking) == {"convert": None, "churn": None}
    run.join(60)
    [results] = got
    assert seen == [{"convert": None, "churn": None}]
    assert challengers(tracking) == bests(results)
    assert notes == [
        f"  journey-uplift-convert v{bests(results)['convert']} (x) is the challenger",
        f"  journey-uplift-churn v{bests(results)['churn']} (x) is the challenger",
        f"waiting for another promotion on this registry (pid {os.getpid()}) …"]


def test_a_later_uplift_run_s_challengers_stay(
        tracking: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`early` starts first and decides convert's challenger; `late` starts and ends while
    `early` trains churn. Both challengers stay late's, and early's last line for each says
    so (before: early moved churn's back to its older model, leaving a mixed set)."""
    late: list[list[UpliftResult]] = []
    late_log: list[str] = []

    def overlap(name: str, outcome: str) -> None:
        if name == "early" and outcome == "churn" and not late:
            other = threading.Thread(target=lambda: late.append(train_uplift(
                experiment(tmp_path / "late", "late"), decisions(), tracking,
                log=late_log.append)))
            other.start()
            other.join(120)

    monkeypatch.setattr(uplift, "train_one", registering(tracking, overlap))
    log: list[str] = []
    early = train_uplift(experiment(tmp_path / "early", "early"), decisions(), tracking,
                         log=log.append)
    theirs, mine = bests(late[0]), bests(early)
    assert challengers(tracking) == theirs
    client = tracking.client()
    model_run = client.get_model_version("journey-uplift-churn", str(theirs["churn"])).run_id
    run = client.get_run(str(model_run)).data.tags["mlflow.parentRunId"]
    assert [n for n in log if "challenger" in n] == [
        f"  journey-uplift-convert v{mine['convert']} (x) is the challenger",
        f"  journey-uplift-churn v{theirs['churn']} stays the challenger: it comes from a "
        f"journey uplift that started after this one (run {run}); this run's v{mine['churn']} "
        "(x) is not made the challenger",
        f"  journey-uplift-convert v{theirs['convert']} is the challenger now, not "
        f"v{mine['convert']}: another journey uplift moved it while this one ran"]


def test_an_alias_write_that_races_another_writer_is_made_again(
        tracking: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's alias write reads, then inserts: another writer inserting first fails it with
    a uniqueness error, which the run now survives (before: it stopped there)."""
    monkeypatch.setattr(uplift, "train_one", registering(tracking, lambda *_: None))
    real_set = MlflowClient.set_registered_model_alias
    raced: list[str] = []

    def set_alias(self: MlflowClient, name: str, alias: str, version: str) -> None:
        if not raced:
            raced.append(name)
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: "
                                  "registered_model_aliases.name")
        real_set(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", set_alias)
    results = train_uplift(experiment(tmp_path, "raced"), decisions(), tracking,
                           log=lambda _: None)
    assert raced == ["journey-uplift-convert"]
    assert challengers(tracking) == bests(results)
