"""Training/serving parity: what the service answers for customer X at time T is what the
offline pipeline computes for X at T (the batch feature snapshot, the registered model's
``predict_proba``, reasons from the same frame), for one customer and for a batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.estimators import Floats
from models.reasons import Reason, top_reasons
from models.registry import client_for, load_alias
from models.targets import Target, target
from serving.keys import Role
from tests.serving.conftest import Served
from tests.training.world import source

T = datetime(2025, 10, 1, tzinfo=UTC)  # a cutoff of the world's snapshots


@dataclass
class Offline:
    """The customers' feature frame, and per target its probabilities and reasons."""

    frame: pd.DataFrame
    answers: dict[str, tuple[Target, Floats, list[list[Reason]]]]


@pytest.fixture(scope="module")
def offline(served: Served) -> Offline:
    """Offline answers for 60 customers seen before T."""
    src = source(served.world)
    try:
        frame: pd.DataFrame = src.features(T).read().sort_by("customer_id").slice(0, 60).to_pandas()
    finally:
        src.close()
    client = client_for(served.tracking_uri)
    out = Offline(frame, {})
    for name in ("next_stage", "churn", "conversion"):
        t = target(name, served.world.spec.stages)
        model = load_alias(client, t.registered_name, "champion").model
        proba = model.predict_proba(frame)
        cls = np.argmax(proba, axis=1) if model.multiclass else None
        out.answers[name] = (t, proba, top_reasons(model, frame, served.world.spec.stages, 3, cls))
    return out


def check(answer: dict[str, Any], i: int, offline: Offline) -> None:
    """``answer``: one prediction of the service's JSON."""
    for name in ("next_stage", "churn", "conversion"):
        t, proba, reasons = offline.answers[name]
        if name == "next_stage":
            got = [answer["next_stage"][c] for c in t.classes]
            np.testing.assert_allclose(got, proba[i], rtol=0, atol=1e-12)
        else:
            assert answer[name] == pytest.approx(proba[i, 1], abs=1e-12)
        served_reasons = answer["reasons"][name]
        assert [r["feature"] for r in served_reasons] == [r.feature for r in reasons[i]]
        assert [r["text"] for r in served_reasons] == [r.text for r in reasons[i]]
        np.testing.assert_allclose([r["contribution"] for r in served_reasons],
                                   [r.contribution for r in reasons[i]], atol=1e-9)


def test_single_predictions_match_offline(app_client: TestClient, served: Served,
                                          offline: Offline) -> None:
    for i, cid in enumerate(offline.frame["customer_id"]):
        r = app_client.post("/predict", json={"customer_id": cid, "as_of": T.isoformat()},
                            headers=served.headers(Role.predict))
        assert r.status_code == 200, r.text
        check(r.json(), i, offline)


def test_batch_predictions_match_offline(app_client: TestClient, served: Served,
                                         offline: Offline) -> None:
    ids = list(offline.frame["customer_id"])
    r = app_client.post("/predict/batch", json={"customer_ids": ids, "as_of": T.isoformat()},
                        headers=served.headers(Role.predict))
    assert r.status_code == 200, r.text
    for i, answer in enumerate(r.json()["predictions"]):
        check(answer, i, offline)
