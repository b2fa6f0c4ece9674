"""Time to churn in /predict: present when a survival champion is served, equal to the offline
model's curve for customer X at T (one customer and a batch), null when none is served."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.keys import Role
from serving.schemas import PredictOut
from tests.serving.conftest import Served
from tests.training.world import (
    SMALL_SURVIVAL,
    clean_env,
    copy_registry,
    one_thread,
    source,
    train_into,
)
from training.tracking import Tracking

T = datetime(2025, 10, 1, tzinfo=UTC)  # a cutoff of the world's snapshots
DAYS = (7, 30, 90)
REGISTERED = "journey-time-to-churn"


@pytest.fixture(scope="module")
def with_survival(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The shared champions plus a time-to-churn champion, in a registry copy of their own."""
    home = tmp_path_factory.mktemp("serve-survival")
    tracking = copy_registry(Tracking.local(served.home), home)
    trained = train_into(served.world, home / "train", SMALL_SURVIVAL, tracking)
    version = trained.result("time_to_churn", "lightgbm").version
    tracking.client().set_registered_model_alias(REGISTERED, "champion", version)
    shutil.copy(served.home / "api_keys.yaml", home / "api_keys.yaml")
    return replace(served, home=home, tracking_uri=tracking.tracking_uri,
                   versions={**served.versions, "time_to_churn": version})


@pytest.fixture(scope="module")
def client(with_survival: Served, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    store = with_survival.store_copy(tmp_path_factory.mktemp("store"))
    with clean_env(), one_thread(), TestClient(
            create_app(with_survival.settings(store), background=False)) as c:
        yield c


@pytest.fixture(scope="module")
def offline(with_survival: Served) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The registered model's answers on the batch feature snapshot at T (40 customers)."""
    import mlflow.sklearn

    src = source(with_survival.world)
    try:
        frame = src.features(T).read().sort_by("customer_id").slice(0, 40).to_pandas()
    finally:
        src.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", with_survival.tracking_uri)
        model = mlflow.sklearn.load_model(f"models:/{REGISTERED}@champion")
    return frame, {"survival": model.predict_survival(frame, DAYS),
                   "expected": model.expected_days(frame), "median": model.median_days(frame)}


def check(answer: dict[str, object], i: int, want: dict[str, np.ndarray]) -> None:
    got = answer["time_to_churn"]
    assert isinstance(got, dict)
    np.testing.assert_allclose([got["survival"][str(d)] for d in DAYS], want["survival"][i],
                               rtol=0, atol=1e-12)
    assert got["expected_days"] == pytest.approx(want["expected"][i], abs=1e-9)
    median = want["median"][i]
    assert got["median_days"] == (None if np.isinf(median) else pytest.approx(median, abs=1e-9))
    assert got["horizon_days"] == 91
    # the status says why a curve is 0 from the start, and only then is it not "active"
    assert (got["status"] == "active") == (want["survival"][i][0] > 0), got


def test_single_prediction_matches_offline(client: TestClient, with_survival: Served,
                                           offline: tuple[pd.DataFrame, dict[str, np.ndarray]]
                                           ) -> None:
    frame, want = offline
    churned = 0
    for i, cid in enumerate(frame["customer_id"]):
        r = client.post("/predict", json={"customer_id": cid, "as_of": T.isoformat()},
                        headers=with_survival.headers(Role.predict))
        assert r.status_code == 200, r.text
        body = PredictOut.model_validate(r.json())
        assert body.model_versions["time_to_churn"] == with_survival.versions["time_to_churn"]
        check(r.json(), i, want)
        churned += r.json()["time_to_churn"]["expected_days"] == 0
    assert 0 < churned < len(frame)  # both kinds: already churned (0 days) and at risk
    ghost = client.post("/predict", headers=with_survival.headers(Role.predict), json={
        "customer_id": "ghost", "events": [], "as_of": T.isoformat()}).json()["time_to_churn"]
    assert ghost["status"] == "no_activity" and ghost["expected_days"] == 0


def test_batch_prediction_matches_offline(client: TestClient, with_survival: Served,
                                          offline: tuple[pd.DataFrame, dict[str, np.ndarray]]
                                          ) -> None:
    frame, want = offline
    r = client.post("/predict/batch", json={"customer_ids": list(frame["customer_id"]),
                                            "as_of": T.isoformat()},
                    headers=with_survival.headers(Role.predict))
    assert r.status_code == 200, r.text
    for i, answer in enumerate(r.json()["predictions"]):
        check(answer, i, want)


def test_readiness_and_metrics_name_the_survival_model(client: TestClient,
                                                       with_survival: Served) -> None:
    ready = client.get("/readyz").json()
    assert ready["models"]["time_to_churn"] == with_survival.versions["time_to_churn"]
    text = client.get("/metrics", headers=with_survival.headers(Role.admin)).text
    assert (f'journey_model_version{{target="time_to_churn",version='
            f'"{with_survival.versions["time_to_churn"]}"}} 1.0') in text
    schema = client.get("/openapi.json").json()
    assert "TimeToChurnOut" in schema["components"]["schemas"]


def test_without_a_survival_model_the_field_is_null(
        app_client: TestClient, served: Served,
        offline: tuple[pd.DataFrame, dict[str, np.ndarray]]) -> None:
    cid = offline[0]["customer_id"].iloc[0]
    r = app_client.post("/predict", json={"customer_id": cid, "as_of": T.isoformat()},
                        headers=served.headers(Role.predict))
    assert r.status_code == 200, r.text
    assert r.json()["time_to_churn"] is None
    assert "time_to_churn" not in app_client.get("/readyz").json()["models"]
