"""GET /v1/backtest serves what `journey backtest` stored, filtered by model and version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from models.backtest import realized, record_key, save_results
from serving.app import create_app
from serving.keys import Role
from tests.serving.conftest import Served


def point(target: str, version: str, as_of: str) -> dict[str, Any]:
    return {"key": record_key(target, version, as_of), "target": target,
            "model_version": version, "as_of": as_of, "horizon_days": 30,
            "label": "converted" if target == "conversion" else "churned_inactive",
            "snapshot": "20251001T000000000000Z", "evaluated_at": "2026-01-01T00:00:00Z",
            **realized([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3], bins=2)}


def test_results_by_model_and_version(served: Served, tmp_path: Path) -> None:
    save_results(tmp_path / "backtests", [point("churn", "3", "2025-10-01T00:00:00Z"),
                                          point("churn", "4", "2025-11-01T00:00:00Z"),
                                          point("conversion", "4", "2025-10-01T00:00:00Z")])
    settings = served.settings(served.store_copy(tmp_path), home=tmp_path)
    marketer = served.headers(Role.marketer)
    with TestClient(create_app(settings, background=False)) as client:
        everything = client.get("/backtest", headers=marketer).json()["results"]
        churn = client.get("/backtest", params={"target": "churn", "version": "4"},
                           headers=marketer).json()["results"]
        bad = client.get("/backtest", params={"target": "next_stage"}, headers=marketer)
    assert [(r["target"], r["model_version"]) for r in everything] == [
        ("churn", "3"), ("churn", "4"), ("conversion", "4")]
    assert len(churn) == 1 and churn[0]["metrics"]["roc_auc"] == 1.0
    assert churn[0]["reliability"][1] == {"bin": 2, "mean_predicted": 0.7,
                                          "observed_rate": 1.0, "n": 2}
    assert bad.status_code == 422 and bad.json()["field"] == "target"
