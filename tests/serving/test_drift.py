"""Live drift monitoring in the service: the bounded window, /v1/drift and its gauges in
/metrics, and "unavailable" (not an error) for champions trained without a profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.kernels import FeatureMatrix
from features.online import Vectors
from serving import drift as serving_drift
from serving.app import create_app
from serving.drift import DriftWindow
from serving.keys import Role
from serving.predictor import Scored
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_app import customers, error
from tests.training.world import clean_env, one_thread

BATCH = 40


def _vectors(values: list[float], channel: list[int]) -> Vectors:
    n = len(values)
    matrix = FeatureMatrix([f"C{i}" for i in range(n)], ("x",), np.array(values)[:, None],
                           {"last_channel": (np.array(channel), ("email", "social"))})
    return Vectors(matrix, [{"region": "north"} for _ in range(n)])


def _scored(n: int) -> list[Scored]:
    return [Scored(f"C{i}", AS_OF, None, {"decision": 0.4, "inactive": 0.6}, 0.1 * (i % 10),
                   0.5, "low", {}, 1) for i in range(n)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_keeps_the_newest_rows_in_fixed_memory() -> None:
    window = DriftWindow(5, 0, ("region",))
    window.record(_vectors([1.0, 2.0, 3.0], [0, 1, -1]), _scored(3))
    held = window._numbers.nbytes, window._labels.shape
    for first in range(4, 40, 3):
        values = [float(v) for v in range(first, first + 3)]
        window.record(_vectors(values, [1, 1, 0]), _scored(3))
    assert (window._numbers.nbytes, window._labels.shape) == held  # allocated once
    snap = window.snapshot()
    frame, start, end = snap.frame(), snap.start, snap.end
    assert sorted(frame["x"]) == [35.0, 36.0, 37.0, 38.0, 39.0]
    assert list(frame.columns) == ["x", "score_churn", "score_conversion",
                                   "score_next_stage_decision", "score_next_stage_inactive",
                                   "last_channel", "attr_region"]
    assert set(frame["last_channel"]) <= {"social", "email"}
    assert start is not None and end is not None and start <= end


def test_missing_categories_stay_missing_and_a_big_batch_keeps_its_tail() -> None:
    window = DriftWindow(4, 0, ("region",))
    window.record(_vectors([float(v) for v in range(10)], [-1] * 10), _scored(10))
    frame = window.snapshot().frame()
    assert sorted(frame["x"]) == [6.0, 7.0, 8.0, 9.0]
    assert frame["last_channel"].isna().all() and (frame["attr_region"] == "north").all()


def test_rows_older_than_the_age_limit_leave_the_window() -> None:
    clock = Clock()
    window = DriftWindow(100, 60, (), clock=clock)
    window.record(_vectors([1.0, 2.0], [0, 0]), _scored(2))
    clock.now += 50
    window.record(_vectors([3.0], [0]), _scored(1))
    clock.now += 20  # the first two are 70 s old now
    snap = window.snapshot()
    frame, start, end = snap.frame(), snap.start, snap.end
    assert frame["x"].tolist() == [3.0] and start == end


def test_an_empty_window_is_an_empty_frame() -> None:
    snap = DriftWindow(10, 0, ()).snapshot()
    frame, start, end = snap.frame(), snap.start, snap.end
    assert frame.empty and start is None and end is None


def test_the_pacer_keeps_an_evaluation_to_its_share_of_the_interpreter() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pace = serving_drift.Pacer(0.2, sleep, lambda: now[0])
    for busy in (0.002, 0.010, 0.0):  # the columns' own times
        now[0] += busy
        pace()
    assert slept == pytest.approx([0.008, 0.040, serving_drift.PAUSE_SECONDS])
    with pytest.raises(ValueError, match="share"):
        serving_drift.Pacer(0.0)


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("drift")
    settings = served.settings(served.store_copy(folder), scores=folder / "scores",
                               drift_eval_seconds=0, drift_window_rows=1000)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


def _drift(client: TestClient, served: Served) -> dict[str, Any]:
    r = client.get("/drift", headers=served.headers(Role.marketer))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_predictions_fill_the_window_and_drift_is_reported(client: TestClient,
                                                          served: Served) -> None:
    ids = customers(served, BATCH)
    r = client.post("/predict/batch", json={"customer_ids": ids},
                    headers=served.headers(Role.predict))
    assert r.status_code == 200
    assert client.post("/predict", json={"customer_id": ids[0]},
                       headers=served.headers(Role.predict)).status_code == 200
    body = _drift(client, served)
    assert body["available"] is True and body["reason"] is None
    report = body["report"]
    assert isinstance(report, dict) and report["window_size"] == BATCH + 1
    rows = {row["name"]: row for row in report["rows"]}
    assert {"score_churn", "score_conversion", "recency_days", "last_channel"} <= set(rows)
    assert rows["score_churn"]["kind"] == "score" and rows["recency_days"]["kind"] == "feature"
    # 41 rows are far below min_samples: reported, never alarming, and no PSI exported.
    assert {row["status"] for row in rows.values()} == {"too_few"} and not report["alarm"]
    text = client.get("/metrics", headers=served.headers(Role.marketer)).text
    assert "journey_drift_psi{" not in text and "journey_drift_p_value{" not in text
    assert 'journey_drift_alarm{column="recency_days",kind="feature"} 0.0' in text
    assert report["settings"]["psi_alarm"] == 0.25
    assert set(body["versions"]) == {"next_stage", "churn", "conversion"}
    # Times in UTC with Z, as every other route writes them.
    stamps = [body["evaluated_at"], report["start"], report["end"]]
    assert all(isinstance(t, str) and t.endswith("Z") and "+00:00" not in t for t in stamps)


def test_a_scoring_run_adds_a_sample_and_gauges_reach_metrics(client: TestClient,
                                                              served: Served) -> None:
    done = client.post("/admin/score", json={}, headers=served.headers(Role.admin))
    assert done.is_success, done.text
    report = _drift(client, served)["report"]
    assert isinstance(report, dict) and report["window_size"] == 1000  # the window is full
    judged = [row for row in report["rows"] if row["status"] != "too_few"]
    assert judged and all(row["psi"] is not None and row["p_value"] is not None
                          for row in judged)
    text = client.get("/metrics", headers=served.headers(Role.marketer)).text
    assert 'journey_drift_psi{column="score_churn",kind="score"}' in text
    assert 'journey_drift_alarm{column="recency_days",kind="feature"}' in text
    assert "journey_drift_overall_alarm " in text and "journey_drift_available 1.0" in text
    assert 'journey_drift_psi_threshold{level="alarm"} 0.25' in text


def test_champions_without_a_profile_report_drift_as_unavailable(
        served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving_drift, "load_run_dict", lambda *_: None)  # an older run
    settings = served.settings(served.store_copy(tmp_path), drift_eval_seconds=0)
    with TestClient(create_app(settings, background=False)) as c:
        body = _drift(c, served)
        assert body["available"] is False and body["report"] is None
        assert "no training profile" in str(body["reason"])
        assert set(body["without_profile"]) == {"next_stage", "churn", "conversion"}
        assert "journey_drift_available 0.0" in c.get(
            "/metrics", headers=served.headers(Role.admin)).text


def test_drift_is_available_from_start_up(served: Served, tmp_path: Path) -> None:
    """Known from the profiles read at start-up, before any evaluation: an alert on the gauge
    used to fire after every restart."""
    settings = served.settings(served.store_copy(tmp_path), drift_eval_seconds=3600)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        assert "journey_drift_available 1.0" in c.get(
            "/metrics", headers=served.headers(Role.admin)).text


def test_drift_needs_a_marketer_or_admin_key(client: TestClient, served: Served) -> None:
    error(client.get("/drift", headers=served.headers(Role.predict)), 403, "forbidden")
    assert client.get("/drift", headers=served.headers(Role.admin)).status_code == 200
