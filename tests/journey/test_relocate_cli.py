"""`journey relocate`: a home moved or copied elsewhere loads its own models again.

MLflow's SQLite store records absolute artifact paths. Here a model is registered in one home,
the home is moved, loading fails with a hint to relocate, and after `journey relocate` the
model loads from the new place with the same predictions."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.lgbm import LightGBMClassifier
from models.registry import RegistryError, load_alias
from models.targets import target
from tests.journey.cli_helpers import fails, ok
from training.model_io import log_model
from training.tracking import Tracking

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated")]  # one registration: ~5 s
T = target("churn", ["visitor"])


def frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(rows)],
                         "recency_days": rng.exponential(30, rows),
                         "frequency": rng.poisson(3, rows).astype(float)})


@pytest.fixture
def old_home(tmp_path: Path) -> Iterator[Path]:
    """A home with one registered churn model (alias champion) and one run."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    home = tmp_path / "old"
    tracking = Tracking.local(home)
    client = tracking.client()
    x = frame()
    y = (x["recency_days"] < 20).to_numpy().astype(int)
    est = LightGBMClassifier(max_rounds=10, num_threads=1, min_data_in_leaf=20)
    est.fit(x.drop(columns="customer_id"), y, (x.drop(columns="customer_id"), y))
    try:
        with mlflow.start_run(experiment_id=tracking.experiment_id(client, "relocate")):
            version = log_model(est, T, x, {})
        client.set_registered_model_alias(T.registered_name, "champion", version)
        yield home
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def locations(home: Path) -> list[str]:
    with sqlite3.connect(home / "mlflow" / "mlflow.db") as db:
        rows = db.execute("SELECT storage_location FROM model_versions UNION ALL "
                          "SELECT artifact_uri FROM runs UNION ALL "
                          "SELECT artifact_location FROM logged_models UNION ALL "
                          # MLflow's Default experiment keeps its own ./mlruns path
                          "SELECT artifact_location FROM experiments WHERE name != 'Default'"
                          ).fetchall()
    return sorted(str(r[0]) for r in rows)


def load(home: Path) -> LightGBMClassifier:
    model = load_alias(Tracking.local(home).client(), T.registered_name, "champion").model
    assert isinstance(model, LightGBMClassifier)
    return model


def test_a_moved_home_loads_its_models_after_relocate(
        old_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = load(old_home).predict_proba(frame().drop(columns="customer_id"))
    new_home = tmp_path / "new"
    shutil.move(old_home, new_home)
    with pytest.raises(RegistryError, match=r"`journey relocate` points the registry") as err:
        load(new_home)
    assert f"recorded at {old_home.resolve()}/mlflow/artifacts/models/" in str(err.value)
    monkeypatch.setenv("JOURNEY_HOME", str(new_home))
    before = locations(new_home)
    lines = ok("relocate", "--dry-run")
    assert lines[0] == f"4 artifact locations under {old_home.resolve()}/mlflow/artifacts"
    assert lines[-1].endswith("nothing changed")
    assert locations(new_home) == before
    lines = ok("relocate")
    assert lines[-1].startswith(f"now under {new_home.resolve()}/mlflow/artifacts: 4 rows "
                                "rewritten; the database before is ")
    after = locations(new_home)
    assert all(loc.startswith(f"file://{new_home.resolve()}/mlflow/artifacts") for loc in after)
    assert [a.split("/mlflow/")[1] for a in after] == [b.split("/mlflow/")[1] for b in before]
    backup = Path(lines[-1].rpartition(" ")[2])
    assert backup.parent == new_home.resolve() / "mlflow" and backup.is_file()
    np.testing.assert_array_equal(
        load(new_home).predict_proba(frame().drop(columns="customer_id")), expected)
    assert ok("relocate") == [f"every artifact location already is under "
                              f"{new_home.resolve()}/mlflow/artifacts: nothing to do"]


def test_a_copy_stops_reading_the_original(
        old_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(old_home, copy)
    load(copy)  # loads, but from the original's files: deleting the original would break it
    monkeypatch.setenv("JOURNEY_HOME", str(copy))
    ok("relocate")
    shutil.rmtree(old_home)
    load(copy)


def test_model_files_missing_here_change_nothing(
        old_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new_home = tmp_path / "new"
    (new_home / "mlflow").mkdir(parents=True)
    shutil.copy2(old_home / "mlflow" / "mlflow.db", new_home / "mlflow" / "mlflow.db")
    monkeypatch.setenv("JOURNEY_HOME", str(new_home))
    before = locations(new_home)
    message = fails("relocate")
    assert "artifact locations would point at files that are not under" in message
    assert "model_versions.storage_location of journey-churn v1" in message
    assert "Copy the old home's mlflow/artifacts folder here" in message
    assert "nothing was changed" in message
    assert locations(new_home) == before
    assert sorted(p.name for p in (new_home / "mlflow").iterdir()) == ["mlflow.db"]


def test_only_the_embedded_store_moves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert "only that one moves with the home" in fails("relocate")
    monkeypatch.delenv("JOURNEY_MLFLOW_TRACKING_URI")
    assert "no MLflow store here" in fails("relocate")


def test_a_copy_not_relocated_is_warned_about_once(
        old_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Its new runs and models would be written into the original home: every command that
    opens the registry says so (once a process) until `journey relocate` ran."""
    from journey import settings as journey_settings

    copy = tmp_path / "copy"
    shutil.copytree(old_home, copy)
    monkeypatch.setenv("JOURNEY_HOME", str(copy))
    monkeypatch.setattr(journey_settings, "_checked", set())
    journey_settings.Settings().tracking()
    journey_settings.Settings().tracking()
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert (f"keeps its runs and models under {old_home.resolve()}/mlflow/artifacts, another "
            "home's folder (a copy of that home?)") in " ".join(err.split())
    assert "Run `journey relocate` to use this home's own." in err
    ok("relocate")
    monkeypatch.setattr(journey_settings, "_checked", set())
    journey_settings.Settings().tracking()
    journey_settings.Settings(home=old_home).tracking()  # the original: its own folder
    assert capsys.readouterr().err == ""


def test_the_ingest_logs_rejects_paths_move_with_the_home(
        old_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from features.store import EventStore

    events = tmp_path / "e.csv"
    events.write_text("customer_id,ts,event_type\nu1,2025-03-01T10:00:00Z,page_view\n"
                      ",2025-03-01T10:00:00Z,page_view\n", encoding="utf-8")
    ok("ingest", events, "--store", old_home / "events.duckdb")
    new_home = tmp_path / "new"
    shutil.move(old_home, new_home)
    monkeypatch.setenv("JOURNEY_HOME", str(new_home))
    lines = ok("relocate")
    assert lines[-1] == f"ingest log: 1 rejects file paths now under {new_home.resolve()}"
    with EventStore(new_home / "events.duckdb", read_only=True) as es:
        [entry] = es.ingest_log()
    rejects = Path(str(entry["rejects_path"]))
    assert rejects.is_relative_to(new_home.resolve()) and rejects.is_file()
