"""MLflow wiring: where runs and models go, with nothing reaching the network.

Embedded default: a SQLite backend file and a local artifact directory (both configurable by
URI, so a team can point at a tracking server instead). Telemetry is switched off before
MLflow is imported anywhere in the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models.registry import client_for, quiet_mlflow

__all__ = ["BACKTEST_EXPERIMENT", "KIND_TAG", "PROMOTION_EXPERIMENT", "RETRAIN_EXPERIMENT",
           "TRAINING_EXPERIMENT", "Tracking", "quiet_mlflow"]

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

TRAINING_EXPERIMENT = "journey-training"
PROMOTION_EXPERIMENT = "journey-promotions"
BACKTEST_EXPERIMENT = "journey-backtest"
RETRAIN_EXPERIMENT = "journey-retrain"
# "training" (one per `journey train`), "model", "promotion", "backtest", "retrain"
KIND_TAG = "journey.kind"


@dataclass(frozen=True)
class Tracking:
    tracking_uri: str
    artifact_root: str | None = None  # for experiments this creates; None: MLflow's default

    @classmethod
    def local(cls, home: Path) -> Tracking:
        """The embedded default under ``home``: mlflow/mlflow.db and mlflow/artifacts."""
        root = home.resolve() / "mlflow"
        return cls(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())

    def client(self) -> MlflowClient:
        return client_for(self.tracking_uri)

    def experiment_id(self, client: MlflowClient, name: str) -> str:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(client.create_experiment(name, artifact_location=self.artifact_root))
