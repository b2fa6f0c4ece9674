"""Logging a fitted model to MLflow with its signature, input example and pinned requirements
(set explicitly: MLflow's own inference is slow and may reach for the network)."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pandas as pd

from models.estimators import JourneyClassifier
from models.targets import Target

REQUIREMENTS = ("scikit-learn", "lightgbm", "numpy", "pandas", "scipy", "pyarrow")


def pip_requirements() -> list[str]:
    """The installed versions of what unpickling the model needs, plus Journey itself."""
    pins = [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]
    return [f"journey=={metadata.version('journey')}", *pins]


def example_frame(est: JourneyClassifier, frame: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """A few rows as serving sends them: plain strings for categoricals (no pandas category)."""
    example = frame.head(rows)[list(est.feature_names_in_)].copy()
    for col in example.columns:
        if not pd.api.types.is_numeric_dtype(example[col]):
            example[col] = example[col].astype(object).where(example[col].notna(), None)
    return example


def log_model(est: JourneyClassifier, t: Target, frame: pd.DataFrame, tags: dict[str, str]) -> str:
    """Log ``est`` in the active run and register it as a new version of the target's model."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    example = example_frame(est, frame)
    proba = pd.DataFrame(est.predict_proba(example), columns=[f"p_{c}" for c in t.classes])
    info = mlflow.sklearn.log_model(
        est,
        name="model",
        signature=infer_signature(example, proba.astype(np.float64)),
        input_example=example,
        pip_requirements=pip_requirements(),
        pyfunc_predict_fn="predict_proba",
        registered_model_name=t.registered_name,
        serialization_format="pickle",
    )
    version = str(info.registered_model_version)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(t.registered_name, version, key, value)
    return version
