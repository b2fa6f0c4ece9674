"""The predict path is run on a made-up customer while the service loads (serving/warmup.py):
once the app has started, before any request, the served models have been used and numba's
kernels compiled for the very types a request brings (a request compiles nothing), and the
warm-up left no trace in the metrics or the drift window."""

from __future__ import annotations

import logging
import threading
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from numba.core.dispatcher import Dispatcher

import features.kernel_loop
import features.ordering
import models.forest
import models.paths
import serving.warmup
from models.lgbm import LightGBMClassifier
from serving.champions import ModelSet
from serving.keys import Role
from serving.warmup import warm_up
from tests.serving.conftest import AS_OF, Served, state_of

KERNEL_MODULES: tuple[ModuleType, ...] = (features.kernel_loop, features.ordering, models.forest,
                                         models.paths)
PREDICT_KERNELS = (features.kernel_loop.run_serial, models.forest._leaves, models.paths._raw,
                   models.paths._sigmoid, models.paths._softmax, models.paths._top)
RECORDED = ("journey_requests_total", "journey_request_seconds_count",
            "journey_prediction_probability_count", "journey_predicted_next_stage_total",
            "journey_predicted_risk_tier_total")


def _compiled() -> dict[str, list[Any]]:
    return {f"{m.__name__}.{name}": list(d.signatures) for m in KERNEL_MODULES
            for name, d in vars(m).items() if isinstance(d, Dispatcher)}


def _recorded(client: TestClient) -> dict[str, float]:
    state = state_of(client)
    out = {name: 0.0 for name in RECORDED}
    for metric in state.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name in out:
                out[sample.name] += sample.value
    out["drift_rows"] = float(len(state.drift.window.snapshot().numbers))
    return out


def test_compiled_before_any_request_without_a_trace(app_client: TestClient) -> None:
    models = state_of(app_client).holder.current
    assert models is not None
    lgbm = [s.loaded.model for s in models.models.values()
            if isinstance(s.loaded.model, LightGBMClassifier)]
    # These model objects were loaded by this app: only a prediction builds their column plan.
    assert lgbm and any(m.__dict__.get("vector_plans_") for m in lgbm)
    assert all(k.signatures for k in PREDICT_KERNELS)
    assert set(_recorded(app_client).values()) == {0.0}


def test_a_request_compiles_nothing(app_client: TestClient, served: Served) -> None:
    before = _compiled()
    cid = state_of(app_client).history.customer_ids()[0]  # type: ignore[union-attr]
    inline = {"customer_id": "someone", "as_of": AS_OF.isoformat(), "events": [
        {"ts": "2025-09-01T00:00:00Z", "event_type": "page_view", "channel": "web"}]}
    for body in ({"customer_id": cid}, inline):
        r = app_client.post("/predict", json=body, headers=served.headers(Role.predict))
        assert r.status_code == 200, r.text
    assert _compiled() == before
    after = _recorded(app_client)
    assert after["journey_prediction_probability_count"] > 0 and after["drift_rows"] == 2


def test_a_failed_warm_up_is_logged_not_raised(app_client: TestClient,
                                               caplog: pytest.LogCaptureFixture) -> None:
    state = state_of(app_client)
    broken = ModelSet({})  # no targets: the predictor cannot score
    with caplog.at_level(logging.WARNING, "journey.serving"):
        assert warm_up(state.online, state.predictor, broken, timeout=30) is False
    assert "warm-up failed" in caplog.text


def test_a_slow_warm_up_does_not_hold_the_load(app_client: TestClient,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    state, release = state_of(app_client), threading.Event()
    monkeypatch.setattr(serving.warmup, "predict_made_up", lambda *_: release.wait(10))
    with caplog.at_level(logging.WARNING, "journey.serving"):
        assert warm_up(state.online, state.predictor, ModelSet({}), timeout=0.05) is False
    release.set()
    assert "not compiled within" in caplog.text
