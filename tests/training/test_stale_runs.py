"""Runs a killed `journey train` left RUNNING are marked KILLED by the next training, and only
those whose process is certainly gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.training.world import SMALL, World, train_into
from training.stale_runs import (
    BOOT_TAG,
    HOST_TAG,
    PID_START_TAG,
    PID_TAG,
    Machine,
    end_dead_runs,
    process_tags,
    start_time,
)
from training.tracking import TRAINING_EXPERIMENT, Tracking

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    return Tracking.local(tmp_path).client()


@pytest.fixture(scope="module")
def dead_process() -> tuple[int, str]:
    """The PID and start time of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = start_time(child.pid)
    child.kill()
    child.wait()
    assert started is not None and start_time(child.pid) is None
    return child.pid, started


def _running(client: MlflowClient, tags: dict[str, str]) -> str:
    # The experiment's artifacts go beside its store (as `journey train` creates it), not
    # into MLflow's default ./mlruns of the working folder.
    db = Path(client.tracking_uri.removeprefix("sqlite:///"))
    exp_id = Tracking(client.tracking_uri, (db.parent / "artifacts").as_uri()).experiment_id(
        client, TRAINING_EXPERIMENT)
    return str(client.create_run(exp_id, tags=tags).info.run_id)


def _status(client: MlflowClient, run_id: str) -> str:
    return str(client.get_run(run_id).info.status)


def _ours(pid: int, started: str) -> dict[str, str]:
    """A run's tags as this machine's process ``pid`` would have written them."""
    return {**process_tags(), PID_TAG: str(pid), PID_START_TAG: started}


def test_a_run_whose_process_died_is_marked_killed(client: MlflowClient,
                                                   dead_process: tuple[int, str]) -> None:
    run_id = _running(client, _ours(*dead_process))
    lines: list[str] = []
    assert end_dead_runs(client, lines.append) == [run_id]
    info = client.get_run(run_id).info
    assert info.status == "KILLED"
    assert info.end_time is not None and info.end_time >= info.start_time
    assert lines == [f"ended 1 run left RUNNING by a killed Journey command (run id {run_id}): "
                     "marked KILLED"]


def test_a_run_of_a_live_process_stays_running(client: MlflowClient) -> None:
    here = start_time(os.getpid())
    assert here is not None
    run_id = _running(client, _ours(os.getpid(), here))
    lines: list[str] = []
    assert end_dead_runs(client, lines.append) == []
    assert _status(client, run_id) == "RUNNING"
    assert lines == []


def test_a_run_of_another_host_stays_running(client: MlflowClient,
                                             dead_process: tuple[int, str]) -> None:
    run_id = _running(client, {**_ours(*dead_process), HOST_TAG: "another-host"})
    assert end_dead_runs(client, lambda _: None) == []
    assert _status(client, run_id) == "RUNNING"


def test_a_reused_pid_counts_as_dead(client: MlflowClient) -> None:
    """This test's own process is alive, but not the one that started at another time."""
    here = start_time(os.getpid())
    assert here is not None
    run_id = _running(client, _ours(os.getpid(), str(int(here) - 1)))
    assert end_dead_runs(client, lambda _: None) == [run_id]
    assert _status(client, run_id) == "KILLED"


def test_runs_that_name_no_process_stay_running(client: MlflowClient,
                                                dead_process: tuple[int, str]) -> None:
    bare = _running(client, {})
    no_start = _running(client, {k: v for k, v in _ours(*dead_process).items()
                                 if k != PID_START_TAG})
    assert end_dead_runs(client, lambda _: None) == []
    assert _status(client, bare) == _status(client, no_start) == "RUNNING"


def test_another_boot_or_pid_namespace_is_not_judged(client: MlflowClient) -> None:
    """A different boot id may be a restart or another machine of the same name sharing the
    store: the run's process cannot be judged from here, so the run is left RUNNING."""
    here = start_time(os.getpid())
    assert here is not None
    alive = _ours(os.getpid(), here)
    # Its PID names no process here: only the boot id keeps it from being ended.
    other_boot = _running(client, {**alive, PID_TAG: "999999999", BOOT_TAG: "another-boot"})
    assert end_dead_runs(client, lambda _: None) == []
    machine = Machine.here()
    container = _running(client, alive)
    assert end_dead_runs(client, lambda _: None,
                         Machine(machine.host, machine.boot, "pid:[another]")) == []
    assert _status(client, other_boot) == _status(client, container) == "RUNNING"


def test_several_runs_are_ended_in_one_line(client: MlflowClient,
                                            dead_process: tuple[int, str]) -> None:
    ids = [_running(client, _ours(*dead_process)) for _ in range(2)]
    lines: list[str] = []
    assert sorted(end_dead_runs(client, lines.append)) == sorted(ids)
    assert len(lines) == 1 and lines[0].startswith("ended 2 runs left RUNNING")
    assert all(i in lines[0] for i in ids)


def test_training_ends_dead_runs_and_tags_its_own(world: World, tmp_path: Path,
                                                  dead_process: tuple[int, str]) -> None:
    tracking = Tracking.local(tmp_path)
    left = _running(tracking.client(), _ours(*dead_process))
    one = {**SMALL, "name": "after-a-kill", "targets": ["churn"],
           "models": [SMALL["models"][0]]}
    trained = train_into(world, tmp_path, one, tracking=tracking)
    client = tracking.client()
    assert _status(client, left) == "KILLED"
    assert trained.log[0] == (f"ended 1 run left RUNNING by a killed Journey command (run id "
                              f"{left}): marked KILLED")
    model_run = client.get_run(trained.results[0].run_id)
    parent = client.get_run(model_run.data.tags["mlflow.parentRunId"])
    for run in (parent, model_run):
        assert run.info.status == "FINISHED"
        assert run.data.tags[PID_TAG] == str(os.getpid())
        assert run.data.tags[PID_START_TAG] == start_time(os.getpid())


def test_promotion_backtest_and_retrain_runs_name_their_process(tmp_path: Path) -> None:
    """own_run starts the runs of promotions, backtests, retrain cycles and personas: a kill
    during one leaves a run the next training can end."""
    import mlflow

    from training.tracking import own_run

    tracking = Tracking.local(tmp_path)
    client = tracking.client()
    exp_id = tracking.experiment_id(client, TRAINING_EXPERIMENT)
    with own_run(exp_id, "promote-churn") as run:
        run_id = run.info.run_id
    tags = client.get_run(run_id).data.tags
    assert tags[PID_TAG] == str(os.getpid())
    assert tags[PID_START_TAG] == start_time(os.getpid())
    assert mlflow.active_run() is None
