"""The two ways experiments/README.md gives to load a registered model, on a frame shaped like
Journey's feature snapshots (categorical columns as pandas category): the native sklearn
flavor takes it as it is; MLflow's pyfunc flavor refuses it (its signature says string) and
takes it once the categorical columns are cast to str, with the same probabilities.

No shared fixture trains cheaply (``trained`` builds the simulated world and six models), so
one small LightGBM model is fitted here and logged by Journey's own ``log_model``."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest

from features.layout import CATEGORICAL
from models.lgbm import LightGBMClassifier
from models.targets import target
from training.model_io import log_model
from training.tracking import Tracking

pytestmark = pytest.mark.slow  # an MLflow database and one registration: ~10-20 s


def snapshot_like(rows: int, seed: int) -> pd.DataFrame:
    """Feature columns as a snapshot gives them: numbers, categories (missing values too)."""
    rng = np.random.default_rng(seed)
    values = np.array(["web", "email", "page_view", None], dtype=object)
    cats = {name: pd.Categorical(rng.choice(values, rows))
            for name in (*CATEGORICAL, "attr_region")}
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(rows)],
                         "recency_days": rng.exponential(30, rows),
                         "frequency": rng.poisson(3, rows).astype(float), **cats})


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[str, LightGBMClassifier]]:
    """A churn model registered in a fresh MLflow home: its URI and the estimator itself."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    tracking = Tracking.local(tmp_path_factory.mktemp("flavors"))
    client = tracking.client()  # points mlflow's tracking and registry at the home
    frame = snapshot_like(400, 0)
    y = (frame["recency_days"] < 20).to_numpy().astype(int)
    est = LightGBMClassifier(max_rounds=20, num_threads=1, min_data_in_leaf=20)
    est.fit(frame.drop(columns="customer_id"), y, (frame.drop(columns="customer_id"), y))
    t = target("churn", ["visitor"])
    try:
        with mlflow.start_run(experiment_id=tracking.experiment_id(client, "flavors")):
            version = log_model(est, t, frame, {})
        yield f"models:/{t.registered_name}/{version}", est
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


def test_native_flavor_takes_a_snapshot_frame(
        registered: tuple[str, LightGBMClassifier]) -> None:
    uri, est = registered
    frame = snapshot_like(50, 1)
    model = mlflow.sklearn.load_model(uri)
    np.testing.assert_array_equal(model.predict_proba(frame), est.predict_proba(frame))


def test_pyfunc_takes_it_once_categories_are_text(
        registered: tuple[str, LightGBMClassifier]) -> None:
    uri, est = registered
    frame = snapshot_like(50, 1)
    model = mlflow.pyfunc.load_model(uri)
    with pytest.raises(mlflow.exceptions.MlflowException, match="category"):
        model.predict(frame)  # the reason the README's cast is there
    # The README's snippet: missing values become "nan", unseen by the model, so missing.
    cats = frame.select_dtypes("category").columns
    proba = model.predict(frame.astype({c: str for c in cats}))
    np.testing.assert_allclose(np.asarray(proba), est.predict_proba(frame), rtol=0, atol=1e-12)
