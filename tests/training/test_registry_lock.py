"""The registry lock (one promotion or challenger pick at a time on a local store) and the
MLflow writes that survive another writer inserting the same row first."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from models.registry import client_for
from training.registry_lock import lock_path, registry_lock, settled

# A process that holds the lock until told to let go: it writes "held" once it has it.
HOLDER = """
import sys, time
from pathlib import Path
from training.registry_lock import registry_lock
uri, signal = sys.argv[1], Path(sys.argv[2])
with registry_lock(uri, "promotion", print):
    signal.write_text("held")
    while signal.read_text() != "release":
        time.sleep(0.02)
"""


def _wait_for(check: Callable[[], object], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_lock_file_sits_beside_a_local_store_only(tmp_path: Path) -> None:
    assert lock_path(f"sqlite:///{tmp_path}/mlflow/mlflow.db") == \
        tmp_path / "mlflow" / "registry.lock"
    assert lock_path((tmp_path / "mlruns").as_uri()) == tmp_path / "mlruns" / "registry.lock"
    assert lock_path("http://tracking.example:5000") is None
    assert lock_path("postgresql://user@db/mlflow") is None


def test_a_second_process_waits_and_says_who_holds_the_lock(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    signal = tmp_path / "signal"
    signal.write_text("")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, uri, str(signal)],
                              cwd=Path(__file__).parents[2])
    try:
        _wait_for(lambda: signal.read_text() == "held", "the holder to take the lock")
        notes: list[str] = []
        inside = threading.Event()

        def promote() -> None:
            with registry_lock(uri, "promotion", notes.append):
                inside.set()

        waiter = threading.Thread(target=promote)
        waiter.start()
        _wait_for(lambda: notes, "the waiting note")
        assert notes == [f"waiting for another promotion on this registry (pid {holder.pid}) …"]
        time.sleep(0.3)
        assert not inside.is_set()  # still waiting while the other process holds it
        signal.write_text("release")
        waiter.join(60)
        assert inside.is_set() and holder.wait(60) == 0
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "mlflow" / "registry.lock").read_text() == f"{os.getpid()} promotion\n"


def test_threads_take_turns_and_a_nested_hold_does_not_wait(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    notes: list[str] = []
    order: list[str] = []
    with registry_lock(uri, "promotion", notes.append):
        with registry_lock(uri, "promotion", notes.append):  # the same thread: no wait
            order.append("nested")
        other = threading.Thread(target=lambda: _hold(uri, order, notes.append))
        other.start()
        _wait_for(lambda: len(notes) == 1, "the other thread's note")
        order.append("first released")
    other.join(60)
    assert order == ["nested", "first released", "second"]
    assert notes == [f"waiting for another promotion on this registry (pid {os.getpid()}) …"]


def _hold(uri: str, order: list[str], note: Callable[[str], None]) -> None:
    with registry_lock(uri, "promotion", note):
        order.append("second")


def test_settled_retries_a_uniqueness_race_and_nothing_else() -> None:
    calls: list[int] = []

    def raced_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: "
                                  "model_version_tags.workspace, model_version_tags.name")
        return "written"

    assert settled(raced_once) == "written" and len(calls) == 2

    def refused() -> None:
        calls.append(1)
        raise MlflowException("Registered Model with name=journey-churn not found")

    calls.clear()
    with pytest.raises(MlflowException, match="not found"):
        settled(refused)
    assert len(calls) == 1


def _ready(_: int) -> None:
    time.sleep(0.5)  # long enough for every worker to take one: each has imported MLflow


def _write_tag(uri: str, start: float, key: str) -> str:
    client = client_for(uri)
    while time.time() < start:  # every process writes at one instant
        pass
    try:
        settled(lambda: client.set_model_version_tag("m", "1", key, str(os.getpid())))
    except MlflowException as exc:
        return str(exc).splitlines()[0]
    return "ok"


@pytest.mark.slow
def test_one_new_tag_from_many_processes_at_once(tmp_path: Path) -> None:
    """The audit's crash: MLflow reads, then inserts a tag, so all but one of the processes
    writing a new key at one instant used to fail with a UNIQUE constraint."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = client_for(uri)
    client.create_registered_model("m")
    client.create_model_version("m", (tmp_path / "model").as_uri())
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_ready, range(4), chunksize=1)
        for i in range(6):
            start = time.time() + 0.5
            assert pool.starmap(_write_tag, [(uri, start, f"race.{i}")] * 4) == ["ok"] * 4
    tags = client.get_model_version("m", "1").tags
    assert sorted(tags) == [f"race.{i}" for i in range(6)]
