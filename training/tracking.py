"""MLflow wiring: where runs and models go, with nothing reaching the network.

Embedded default: a SQLite backend file and a local artifact directory (both configurable by
URI, so a team can point at a tracking server instead). Telemetry is switched off before
MLflow is imported anywhere in the process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from models.registry import client_for, quiet_mlflow
from training.stale_runs import process_tags

__all__ = ["BACKTEST_EXPERIMENT", "KIND_TAG", "PROMOTION_EXPERIMENT", "RETRAIN_EXPERIMENT",
           "TRAINING_EXPERIMENT", "Tracking", "local_path", "mlflow_run_uri", "own_run",
           "quiet_mlflow", "same_store"]

if TYPE_CHECKING:
    from mlflow import ActiveRun
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


def mlflow_run_uri(environ: Mapping[str, str] = os.environ) -> str | None:
    """The tracking URI of the `mlflow run` this process is the command of, or None outside
    one. mlflow 3 hands its command MLFLOW_RUN_ID and MLFLOW_TRACKING_URI: the user's, or when
    the user set none its own default (./mlflow.db where it started), never nothing."""
    if not environ.get("MLFLOW_RUN_ID"):
        return None
    return environ.get("MLFLOW_TRACKING_URI") or None


@contextmanager
def own_run(experiment_id: str, run_name: str,
            parent_run_id: str | None = None) -> Iterator[ActiveRun]:
    """A new run in ``experiment_id``, nested in the active run if there is one, else under
    ``parent_run_id`` or the `mlflow run` entry point's run (MLFLOW_RUN_ID), else top level.

    While MLFLOW_RUN_ID is set, mlflow.start_run resumes that run whatever experiment it is
    asked for, so a decision or backtest would land in the entry point's run and clash with
    its parameters. The variable is hidden for the run's duration and put back after it
    (mlflow.end_run would clear it for good), so the next own_run nests under the entry
    point's run too, and code that does log into that run (training) still finds it."""
    import mlflow

    entry = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        nested = mlflow.active_run() is not None
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested,
                              parent_run_id=None if nested else parent_run_id or entry,
                              tags=process_tags()) as run:
            yield run
    finally:
        if entry is not None:
            os.environ["MLFLOW_RUN_ID"] = entry


def local_path(uri: str) -> Path | None:
    """The file or folder a local store URI (sqlite:///, file:) names, else None."""
    if uri.startswith("sqlite:///"):
        return Path(unquote(uri.removeprefix("sqlite:///"))).resolve()
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).resolve()
    if not parsed.scheme:
        return Path(uri).resolve()
    return None


def same_store(a: str, b: str) -> bool:
    path_a, path_b = local_path(a), local_path(b)
    if path_a is not None or path_b is not None:
        return path_a == path_b
    return a.rstrip("/") == b.rstrip("/")
