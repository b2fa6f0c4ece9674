"""`journey relocate` rewrites the registry's artifact locations under the registry's lock: a
promotion or a challenger move holding it finishes first, and relocating waits, saying who it
waits for (before, it rewrote the rows under them)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from training.registry_lock import registry_lock
from training.relocate import Relocation, relocate


def _wait_for(check: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def store(db_file: Path, old_root: str) -> None:
    """The tables relocating reads (experiments and runs: their folders need not exist)."""
    db_file.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_file)) as db, db:
        db.execute("CREATE TABLE experiments (experiment_id TEXT, artifact_location TEXT)")
        db.execute("CREATE TABLE runs (run_uuid TEXT, artifact_uri TEXT)")
        db.execute("INSERT INTO experiments VALUES ('1', ?)", (f"file://{old_root}/1",))
        db.execute("INSERT INTO runs VALUES ('r', ?)", (f"file://{old_root}/1/r/artifacts",))


def locations(db_file: Path) -> list[str]:
    with closing(sqlite3.connect(db_file)) as db:
        rows = db.execute("SELECT artifact_location FROM experiments UNION ALL "
                          "SELECT artifact_uri FROM runs").fetchall()
    return [str(r[0]) for r in rows]


def test_relocating_waits_for_a_promotion_holding_the_registry(tmp_path: Path) -> None:
    db_file = tmp_path / "new" / "mlflow" / "mlflow.db"
    old, new = f"{tmp_path}/old/mlflow/artifacts", f"{tmp_path}/new/mlflow/artifacts"
    store(db_file, old)
    notes: list[str] = []
    got: list[Relocation] = []
    mover = threading.Thread(target=lambda: got.append(
        relocate(db_file, f"file://{new}", note=notes.append)))
    with registry_lock(f"sqlite:///{db_file}", "promotion", pytest.fail):
        mover.start()
        _wait_for(lambda: notes or not mover.is_alive(), "relocating to reach the lock")
        assert mover.is_alive() and notes == [
            f"waiting for another promotion on this registry (pid {os.getpid()}) …"]
        assert locations(db_file) == [f"file://{old}/1", f"file://{old}/1/r/artifacts"]
        assert [p.name for p in db_file.parent.iterdir() if "before-relocate" in p.name] == []
    mover.join(60)
    [found] = got
    assert found.rewritten == 2 and found.backup is not None and found.backup.is_file()
    assert locations(db_file) == [f"file://{new}/1", f"file://{new}/1/r/artifacts"]


def test_a_dry_run_reads_without_waiting(tmp_path: Path) -> None:
    """Nothing is written: a dry run needs no turn on the registry."""
    db_file = tmp_path / "new" / "mlflow" / "mlflow.db"
    old = f"{tmp_path}/old/mlflow/artifacts"
    store(db_file, old)
    notes: list[str] = []
    got: list[Relocation] = []
    reader = threading.Thread(target=lambda: got.append(relocate(
        db_file, f"file://{tmp_path}/new/mlflow/artifacts", dry_run=True, note=notes.append)))
    with registry_lock(f"sqlite:///{db_file}", "promotion", pytest.fail):
        reader.start()
        reader.join(30)
        assert not reader.is_alive() and notes == []
    [found] = got
    assert found.others == {old: 2} and found.rewritten == 0
    assert locations(db_file) == [f"file://{old}/1", f"file://{old}/1/r/artifacts"]
