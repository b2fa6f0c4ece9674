"""Logging a fitted model to MLflow with its signature, input example and pinned requirements
(set explicitly: MLflow's own inference is slow and may reach for the network)."""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from models.drift import (
    PROFILE_ARTIFACT,
    DriftProfile,
    DriftSettings,
    fit_profile,
    reference_rows,
    score_columns,
)
from models.estimators import JourneyClassifier
from models.targets import Target
from training.quiet import without_registration_notes

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

REQUIREMENTS = ("scikit-learn", "lightgbm", "numpy", "pandas", "scipy", "pyarrow")


class FittedModel(Protocol):
    feature_names_in_: np.ndarray


def pip_requirements() -> list[str]:
    """The installed versions of what unpickling the model needs, plus Journey itself."""
    pins = [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]
    return [f"journey=={metadata.version('journey')}", *pins]


def example_frame(est: FittedModel, frame: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """A few rows as serving sends them: plain strings for categoricals (no pandas category)."""
    example = frame.head(rows)[list(est.feature_names_in_)].copy()
    for col in example.columns:
        if not pd.api.types.is_numeric_dtype(example[col]):
            example[col] = example[col].astype(object).where(example[col].notna(), None)
    return example


def log_model(est: JourneyClassifier, t: Target, frame: pd.DataFrame, tags: dict[str, str]) -> str:
    """Log ``est`` in the active run and register it as a new version of the target's model."""
    example = example_frame(est, frame)
    proba = pd.DataFrame(est.predict_proba(example), columns=[f"p_{c}" for c in t.classes])
    return register_model(est, t.registered_name, example, proba, "predict_proba", tags)


def register_model(est: FittedModel, registered: str, example: pd.DataFrame,
                   output: pd.DataFrame, predict_fn: str, tags: dict[str, str]) -> str:
    """Log ``est`` (sklearn flavor; ``output`` is what ``predict_fn`` gives for ``example``)
    and register it as a new version of ``registered``, tagged with ``tags``."""
    from mlflow.models import infer_signature

    signature = infer_signature(example, output.astype(np.float64))
    return log_registered(est, registered, signature, example, tags, predict_fn)


def log_registered(est: object, registered: str, signature: ModelSignature,
                   example: pd.DataFrame, tags: dict[str, str], predict_fn: str = "predict"
                   ) -> str:
    """Log ``est`` in the active run (sklearn flavor, pinned requirements), register it as a
    new version of ``registered`` tagged with ``tags``, and return the version."""
    import mlflow.sklearn
    from mlflow.tracking import MlflowClient

    with without_registration_notes():
        info = mlflow.sklearn.log_model(
            est,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            pyfunc_predict_fn=predict_fn,
            registered_model_name=registered,
            serialization_format="pickle",
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(registered, version, key, value)
    return version


def drift_reference(est: JourneyClassifier, t: Target, frame: pd.DataFrame,
                    settings: DriftSettings, seed: int = 0) -> DriftProfile:
    """The profile live traffic is compared with: the model's features on its training rows
    and its scores on them."""
    x = reference_rows(frame, settings, seed)[list(est.feature_names_in_)]
    scores = score_columns(t.name, t.classes, est.predict_proba(x))
    return fit_profile(x.assign(**scores), settings)


def log_drift_reference(est: JourneyClassifier, t: Target, frame: pd.DataFrame,
                        settings: DriftSettings, seed: int = 0) -> None:
    """Log the drift reference in the active run (next to the model it describes)."""
    import mlflow

    mlflow.log_dict(drift_reference(est, t, frame, settings, seed).to_dict(), PROFILE_ARTIFACT)
