"""Which MLflow store Journey tracks in: $JOURNEY_HOME's, JOURNEY_MLFLOW_TRACKING_URI, or under
`mlflow run` the MLFLOW_TRACKING_URI it hands its command; and a clear refusal, before any data
is read, when `mlflow run` tracks where Journey would not find its own runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import ConfigError
from journey.settings import Settings
from tests.journey.cli_helpers import fails, ok
from training.tracking import same_store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("JOURNEY_HOME", "JOURNEY_MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID",
                 "MLFLOW_TRACKING_URI", "JOURNEY_STORE", "JOURNEY_SNAPSHOTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOURNEY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def journey_db(home: Path) -> str:
    return f"sqlite:///{home.resolve() / 'mlflow' / 'mlflow.db'}"


def under_mlflow_run(mp: pytest.MonkeyPatch, uri: str) -> None:
    mp.setenv("MLFLOW_RUN_ID", "0123456789abcdef")
    mp.setenv("MLFLOW_TRACKING_URI", uri)


def test_default_is_the_home_s_database(home: Path) -> None:
    assert Settings().tracking().tracking_uri == journey_db(home)


def test_mlflow_s_variable_alone_does_not_move_journey(home: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert Settings().tracking().tracking_uri == journey_db(home)


def test_under_mlflow_run_another_store_needs_journey_s_setting(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server or another file is fine when Journey is told to track there too: then its
    other commands find the runs."""
    under_mlflow_run(monkeypatch, "http://tracking:5000")
    with pytest.raises(ConfigError, match="both must be one store"):
        Settings().tracking()
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", "http://tracking:5000/")
    assert Settings().tracking().tracking_uri == "http://tracking:5000"


def test_under_mlflow_run_journey_s_own_store(home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    under_mlflow_run(monkeypatch, journey_db(home))
    assert Settings().tracking().tracking_uri == journey_db(home)


def test_mlflow_s_own_default_is_refused_with_what_to_set(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What mlflow 3 hands the command when the user set no MLFLOW_TRACKING_URI: mlflow.db in
    the folder it started in."""
    under_mlflow_run(monkeypatch, f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    with pytest.raises(ConfigError) as info:
        Settings().tracking()
    text = str(info.value)
    assert f"MLFLOW_TRACKING_URI={journey_db(home)}" in text
    assert "MLflow's own default" in text and "\n" not in text
    assert f"recorded its own run in {Path.cwd().resolve() / 'mlflow.db'}" in text


def test_a_conflicting_journey_setting_is_refused(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    mine = f"sqlite:///{home / 'elsewhere.db'}"
    monkeypatch.setenv("JOURNEY_MLFLOW_TRACKING_URI", mine)
    under_mlflow_run(monkeypatch, "http://tracking:5000")
    with pytest.raises(ConfigError, match=r"\(JOURNEY_MLFLOW_TRACKING_URI\)"):
        Settings().tracking()
    under_mlflow_run(monkeypatch, mine)  # the same store: no conflict
    assert Settings().tracking().tracking_uri == mine


def test_same_store_compares_local_files_by_path(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert same_store("sqlite:///mlflow.db", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert same_store("http://h:5000/", "http://h:5000")
    assert not same_store("sqlite:///a.db", "sqlite:///b.db")


def test_train_fails_before_loading_anything(home: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's case: mlflow run without MLFLOW_TRACKING_URI; the error comes before the
    event store is even looked for (there is none here)."""
    under_mlflow_run(monkeypatch, f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    spec = tmp_path / "exp.yaml"
    spec.write_text("horizon_days: 30\ncutoffs: {train: [2025-07-01], valid: 2025-09-01, "
                    "test: 2025-10-01}\nmodels: [{family: baseline}]\n", encoding="utf-8")
    message = fails("train", "--experiment", spec)
    assert "MLflow's own default" in message and "event store" not in message


def test_compare_does_not_create_a_store_to_read_it(home: Path) -> None:
    lines = ok("compare")
    db = home.resolve() / "mlflow" / "mlflow.db"
    assert lines == [f"no MLflow tracking store at {db} (JOURNEY_HOME={home}): nothing tracked "
                     "there yet; check the setting, or run `journey train --experiment ...`"]
    assert not db.exists() and not db.parent.exists()


def test_promote_refuses_without_a_store_and_creates_none(home: Path) -> None:
    """It created an empty database, then said "no challenger" for every target."""
    db = home.resolve() / "mlflow" / "mlflow.db"
    message = fails("promote")
    assert message == (f"error: no MLflow tracking store at {db} (JOURNEY_HOME={home}): "
                       "nothing tracked there yet; check the setting, or run `journey train "
                       "--experiment ...`\n")
    assert not db.exists() and not db.parent.exists()


def test_under_mlflow_run_outside_journey_s_artifacts_warns(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`mlflow run` without --experiment-name starts its run in MLflow's Default experiment,
    whose artifacts (the models trained in the run) go to ./mlruns, outside the home."""
    from mlflow import MlflowClient

    from training.tracking import Tracking

    local = Tracking.local(home)
    (home / "mlflow").mkdir(parents=True)
    client = MlflowClient(local.tracking_uri)
    stray = client.create_run("0").info.run_id  # Default: ./mlruns of the working folder
    mine = client.create_run(local.experiment_id(client, "journey-training")).info.run_id
    under_mlflow_run(monkeypatch, local.tracking_uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", mine)
    Settings().tracking()
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_RUN_ID", stray)
    Settings().tracking()
    Settings().tracking()  # said once a process
    err = capsys.readouterr().err
    assert err.count("warning: `mlflow run` started its run in the experiment 'Default'") == 1
    assert f"{home.parent.resolve() / 'mlruns'}" in err and "--experiment-name" in err
