"""Settings of the `journey` command line (env vars prefixed JOURNEY_, or a .env file)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from features.memory import MemorySize
from training.tracking import Tracking


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEY_", env_file=".env", extra="ignore")

    home: Path = Path("var")
    store: Path | None = None  # the DuckDB event store; default: $JOURNEY_HOME/events.duckdb
    # What DuckDB may hold in memory while loading into the store; past it a load spills to
    # <store>.tmp. DuckDB's own default (80 % of RAM) let an 86.7M-event ingest reach 19.8 GB.
    store_memory: MemorySize = "4GB"
    taxonomy: Path | None = None  # stage taxonomy YAML; default: the one shipped with Journey
    feature_spec: Path | None = None  # feature definitions YAML; default: the shipped one
    snapshots: Path | None = None  # feature/label snapshots; default: $JOURNEY_HOME/snapshots
    # MLflow: tracking/registry URI (default: SQLite file $JOURNEY_HOME/mlflow/mlflow.db) and the
    # artifact location of experiments Journey creates (default: $JOURNEY_HOME/mlflow/artifacts).
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

    def tracking(self) -> Tracking:
        local = Tracking.local(self.home)
        return Tracking(self.mlflow_tracking_uri or local.tracking_uri,
                        self.mlflow_artifacts or local.artifact_root)
