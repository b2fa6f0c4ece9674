"""An `as_of` may be a date alone, its midnight UTC, as every `journey` command reads one; a
time without a zone is refused saying how to write it (it was "Input should have timezone
info", while the CLI took the same date)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serving.app import create_app
from serving.keys import Role
from serving.schemas import BatchIn, PredictIn, RecommendIn
from serving.settings import ServeSettings
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_app import customers, error


@pytest.mark.parametrize("model", [PredictIn, BatchIn, RecommendIn])
def test_a_date_is_its_midnight_utc(model: type[PredictIn | BatchIn | RecommendIn]) -> None:
    body = {"customer_ids": ["c"]} if model is BatchIn else {"customer_id": "c"}
    got = model.model_validate({**body, "as_of": " 2025-12-01 "}).as_of
    assert got == datetime(2025, 12, 1, tzinfo=UTC)
    aware = model.model_validate({**body, "as_of": "2025-12-01T10:00:00+02:00"}).as_of
    assert aware == datetime(2025, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(ValidationError, match=r"'2025-12-01T10:00' has no time zone: add one "
                                              r"\(e.g. 2025-12-01T10:00Z for UTC\)"):
        model.model_validate({**body, "as_of": "2025-12-01T10:00"})


def test_predict_takes_a_date(app_client: TestClient, served: Served) -> None:
    who = customers(served, 1)[0]
    h = served.headers(Role.admin)
    day = AS_OF.date().isoformat()
    midnight = AS_OF.isoformat().replace("+00:00", "Z")
    by_date = app_client.post("/predict", json={"customer_id": who, "as_of": day}, headers=h)
    by_time = app_client.post("/predict", json={"customer_id": who, "as_of": midnight},
                              headers=h)
    assert by_date.status_code == by_time.status_code == 200, by_date.text
    assert by_date.json()["churn"] == by_time.json()["churn"]
    naive = app_client.post("/predict", json={"customer_id": who,
                                                  "as_of": f"{day}T00:00:00"}, headers=h)
    assert "has no time zone" in error(naive, 422, "bad_request", "as_of")["message"]


@pytest.mark.parametrize("text", ["2025-11-15", "2025-11-15T00:00:00", "2025-11-15T00:00:00Z",
                                  "2025-11-15T02:00:00+02:00"])
def test_the_service_clock_without_a_zone_is_utc(text: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # JOURNEY_AS_OF as the CLI's --as-of reads it: a naive one passed the start-up check,
    # then every request failed comparing it with aware event times.
    monkeypatch.setenv("JOURNEY_AS_OF", text)
    got = ServeSettings().as_of
    assert got is not None and got == AS_OF and got.utcoffset() is not None


def test_a_service_on_a_naive_clock_answers(served: Served, tmp_path: Path) -> None:
    settings = served.settings(served.store_copy(tmp_path), as_of=AS_OF.replace(tzinfo=None),
                               drift_worker=False)
    who = customers(served, 1)[0]
    h = served.headers(Role.admin)
    event = {"event_id": "naive-clock-1", "customer_id": who, "event_type": "page_view",
             "channel": "web", "ts": "2025-11-14T12:00:00Z"}
    with TestClient(create_app(settings, background=False)) as client:
        assert client.post("/predict", json={"customer_id": who}, headers=h).status_code == 200
        r = client.post("/events", json={"events": [event]}, headers=h)
        assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
