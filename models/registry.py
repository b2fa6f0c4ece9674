"""Loading registered models by alias, natively (the sklearn flavor's pickled estimator, not
MLflow's pyfunc wrapper, which costs milliseconds per row)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from features.errors import JourneyError

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from models.estimators import JourneyClassifier


class RegistryError(JourneyError):
    """A registered model or alias that cannot be found or loaded."""


class _RaisedOn(logging.Filter):
    """MLflow's store logs a database error (a registry locked by another process) with its
    whole SQL and traceback, at ERROR, then raises it to its caller as an MlflowException,
    which Journey reports in its own words (``RegistryError``: "models not reloaded (still
    serving ...)"). The record adds ~60 lines to a log for nothing the caller does not say."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and str(record.msg).startswith("SQLAlchemy database error"))


def quiet_mlflow() -> None:
    """No telemetry, no environment inference over the network, no progress bars, no
    traceback of an error MLflow raises to its caller anyway."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    store = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _RaisedOn) for f in store.filters):
        store.addFilter(_RaisedOn())


def client_for(tracking_uri: str) -> MlflowClient:
    """A tracking and registry client on one URI (a SQLite file's directory is created)."""
    quiet_mlflow()
    import mlflow
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri, tracking_uri)


@dataclass(frozen=True)
class Loaded:
    model: JourneyClassifier
    version: ModelVersion

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.version.tags)


# What the registry answers for a model or an alias it does not have. Any other error (its
# database unreadable, its server down) is no answer at all: taking it for "no such alias"
# would make a reload drop the uplift models, or report a missing alias that is there.
NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` names; None when the model or the alias does not exist.
    Raises RegistryError when the registry cannot be read."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        first = str(exc.message).strip().splitlines()[0] if str(exc.message).strip() else ""
        raise RegistryError(f"the model registry did not answer for {name}@{alias} "
                            f"({exc.error_code}): {first}") from exc


def load_version(client: MlflowClient, version: ModelVersion) -> Loaded:
    from models.estimators import JourneyClassifier  # scikit-learn: not for every command

    model = load_native(version, JourneyClassifier)
    assert isinstance(model, JourneyClassifier)
    return Loaded(model, version)


def load_native(version: ModelVersion, expected: type) -> object:
    """The registered version's pickled estimator, which must be an ``expected``."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    uri = f"models:/{version.name}/{version.version}"
    try:
        model = mlflow.sklearn.load_model(uri)
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"cannot load {uri}: {exc}{_moved(version)}") from exc
    except Exception as exc:  # a corrupt artifact: unpickling fails in any number of ways
        raise RegistryError(f"cannot load {uri}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, expected):
        raise RegistryError(f"{uri} is a {type(model).__name__}, not a {expected.__name__}")
    return model


def _moved(version: ModelVersion) -> str:
    """Why a version's files may be gone: the registry records absolute paths, so a moved or
    restored home looks for them where they were."""
    from mlflow.tracking import MlflowClient

    try:  # the registry's record of where the files are (the one client_for set up)
        location = MlflowClient().get_model_version_download_uri(version.name, version.version)
    except Exception:  # a hint only: the load's own error is reported anyway
        return ""
    if not location.startswith("file://"):
        return ""
    path = Path(unquote(urlparse(location).path))
    if path.exists():
        return ""
    return (f" (its files were recorded at {path}, which does not exist: if JOURNEY_HOME was "
            "moved, copied or restored, `journey relocate` points the registry at its new place)")


def load_alias(client: MlflowClient, name: str, alias: str) -> Loaded:
    version = alias_version(client, name, alias)
    if version is None:
        raise RegistryError(f"model {name} has no version with alias {alias!r}")
    return load_version(client, version)


def load_run_dict(client: MlflowClient, version: ModelVersion, path: str) -> dict[str, Any] | None:
    """The JSON artifact ``path`` of the run that logged ``version``; None when that run has
    none (a model trained before the artifact existed). Raises RegistryError when the
    artifact store cannot be read."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    folder = path.rpartition("/")[0] or None
    if version.run_id is None:
        return None
    try:
        listed = {f.path for f in client.list_artifacts(version.run_id, folder)}
        if path not in listed:
            return None
        data = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{path}")
    except (MlflowException, OSError, ValueError) as exc:
        raise RegistryError(f"cannot read {path} of {version.name} v{version.version}: "
                            f"{exc}") from exc
    return dict(data)
