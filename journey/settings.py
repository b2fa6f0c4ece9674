"""Settings of the `journey` command line (env vars prefixed JOURNEY_, or a .env file)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from features.errors import ConfigError
from features.memory import MemorySize
from features.settings_sources import BlankIsUnset
from training.tracking import Tracking, local_path, mlflow_run_uri, same_store


class Settings(BlankIsUnset):
    model_config = SettingsConfigDict(env_prefix="JOURNEY_", env_file=".env", extra="ignore")

    home: Path = Path("var")
    store: Path | None = None  # the DuckDB event store; default: $JOURNEY_HOME/events.duckdb
    # What DuckDB may hold in memory while loading into the store (and while `journey
    # features` reads it); past it a load spills to <store>.tmp. DuckDB's own default (80 %
    # of RAM) let an 86.7M-event ingest reach 19.8 GB.
    store_memory: MemorySize = "4GB"
    taxonomy: Path | None = None  # stage taxonomy YAML; default: the one shipped with Journey
    feature_spec: Path | None = None  # feature definitions YAML; default: the shipped one
    snapshots: Path | None = None  # feature/label snapshots; default: $JOURNEY_HOME/snapshots
    # MLflow: tracking/registry URI (default: SQLite file $JOURNEY_HOME/mlflow/mlflow.db, or
    # under `mlflow run` the MLFLOW_TRACKING_URI it was given) and the artifact location of
    # experiments Journey creates (default: $JOURNEY_HOME/mlflow/artifacts).
    mlflow_tracking_uri: str | None = None
    mlflow_artifacts: str | None = None
    promote_margin: float = 0.001  # on the primary metric (AUC, or next-stage log loss)
    scores: Path | None = None  # score snapshots; default: $JOURNEY_HOME/scores (as the service's)
    retrain_spec: Path = Path("experiments/retrain.yaml")  # `journey retrain`'s cadence and gate

    @property
    def store_path(self) -> Path:
        return self.store or self.home / "events.duckdb"

    @property
    def snapshots_path(self) -> Path:
        return self.snapshots or self.home / "snapshots"

    @property
    def scores_path(self) -> Path:
        return self.scores or self.home / "scores"

    @property
    def backtests_path(self) -> Path:
        return self.home / "backtests"

    @property
    def retrain_path(self) -> Path:
        return self.home / "retrain"

    def tracking(self, check_home: bool = True) -> Tracking:
        local = Tracking.local(self.home)
        uri = self.mlflow_tracking_uri or local.tracking_uri
        run_uri = mlflow_run_uri()
        if run_uri is not None:
            uri = self._under_mlflow_run(run_uri, uri)
        if check_home and self.mlflow_artifacts is None and same_store(uri, local.tracking_uri):
            _warn_if_elsewhere(local)
        tracking = Tracking(uri, self.mlflow_artifacts or local.artifact_root)
        if run_uri is not None:
            _warn_if_run_outside(tracking)
        return tracking

    def _under_mlflow_run(self, run_uri: str, journey_uri: str) -> str:
        """The store of the run `mlflow run` started, which Journey's runs resume or nest in.
        It must be the store Journey's other commands read (compare, promote, serve): one
        setting names both, or the command stops before any data is read, saying what to set.
        No guessing whether MLflow chose it: without MLFLOW_TRACKING_URI it picks a
        ./mlflow.db of the folder it was started in."""
        if same_store(run_uri, journey_uri):
            return run_uri
        made = local_path(run_uri)
        setting = ("JOURNEY_MLFLOW_TRACKING_URI" if self.mlflow_tracking_uri is not None
                   else "JOURNEY_HOME")
        raise ConfigError(
            f"`mlflow run` tracks in {run_uri} (MLflow's own default when MLFLOW_TRACKING_URI "
            f"is not set, or the one it was given), but Journey's store is {journey_uri} "
            f"({setting}), where `journey compare`, `promote` and `serve` look. Journey's runs "
            "go into the run `mlflow run` started, so both must be one store: run it with "
            f"MLFLOW_TRACKING_URI={journey_uri}, or set JOURNEY_MLFLOW_TRACKING_URI={run_uri} "
            "to track there."
            + (f" `mlflow run` recorded its own run in {made} before Journey started: delete "
               "it if it is not wanted." if made is not None else ""))


_checked: set[str] = set()  # stores looked at (and warned about), once a process


def _warn_if_elsewhere(local: Tracking) -> None:
    """Say so when this home's registry writes into another home's artifacts (a copy not
    relocated): its runs and models would land there, and deleting the original loses them."""
    from training.relocate import elsewhere

    db_file = local_path(local.tracking_uri)
    if db_file is None or local.artifact_root is None or str(db_file) in _checked:
        return
    _checked.add(str(db_file))  # a command opens the registry several times: read it once
    other = elsewhere(db_file, local.artifact_root)
    if other is not None:
        print(f"warning: this home's MLflow store ({db_file}) keeps its runs and models under "
              f"{other}, another home's folder (a copy of that home?): new ones would be "
              "written there. Run `journey relocate` to use this home's own.", file=sys.stderr)


def _warn_if_run_outside(tracking: Tracking) -> None:
    """Say so when the run `mlflow run` started keeps its artifacts outside Journey's artifact
    folder: the models trained in it are stored there, where a backup or a `journey relocate`
    of the home misses them. Its experiment chose the place: MLflow's `Default`, or one that
    `mlflow run --experiment-name` created, keeps them under ./mlruns of wherever it ran."""
    from mlflow.exceptions import MlflowException

    run_id = os.environ.get("MLFLOW_RUN_ID")
    ours = local_path(tracking.artifact_root) if tracking.artifact_root else None
    # A local store only: a tracking server that does not answer would hold the command up
    # for MLflow's retries, for a warning.
    if (not run_id or ours is None or local_path(tracking.tracking_uri) is None
            or f"run:{run_id}" in _checked):
        return
    _checked.add(f"run:{run_id}")
    try:
        client = tracking.client()
        run = client.get_run(run_id)
        name = client.get_experiment(run.info.experiment_id).name
    except MlflowException:  # not a run of this store: the command itself will say so
        return
    where = local_path(run.info.artifact_uri)
    if where is None or where.is_relative_to(ours):
        return
    print(f"warning: `mlflow run` started its run in the experiment {name!r}, which keeps "
          f"artifacts in {where}, not under {ours}: the models trained in this run are stored "
          "there, outside Journey's folder (a backup or `journey relocate` of the home misses "
          "them). Pass `--experiment-name` an experiment Journey created (journey-training, "
          "journey-retrain, ...; any `journey train` makes journey-training).", file=sys.stderr)
