"""A clock pinned with an offset (JOURNEY_AS_OF=2025-11-14T19:00:00-05:00) is the same
instant in UTC everywhere: answers and snapshots say it with Z, and the dates drawn from it
(the export's file name and as_of column) are its UTC date, as the dashboard and the KPIs'
months read it. An event at the clock's very instant is warned about: predictions as of the
clock use the events strictly before it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.event_checks import after_clock
from serving.keys import Role
from serving.marketing_routes import snapshot_out
from serving.segments import SegmentBook
from serving.snapshots import Snapshot, write_snapshot
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_app import customers, error
from tests.training.world import clean_env, one_thread

EST = timezone(timedelta(hours=-5))
PINNED = AS_OF.astimezone(EST)  # 2025-11-14T19:00:00-05:00: 15 November in UTC
UTC_TEXT = "2025-11-15T00:00:00Z"
UTC_DAY = "2025-11-15"


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("pinned")
    settings = served.settings(served.store_copy(folder), as_of=PINNED,
                               scores=folder / "scores", drift_worker=False)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


def test_answers_say_the_pinned_clock_in_utc(client: TestClient, served: Served) -> None:
    h = served.headers(Role.predict)
    who = customers(served, 1)[0]
    assert client.post("/predict", json={"customer_id": who}, headers=h).json()[
        "as_of"] == UTC_TEXT
    batch = client.post("/predict/batch", json={"customer_ids": [who]}, headers=h).json()
    assert [p["as_of"] for p in batch["predictions"]] == [UTC_TEXT]
    recommended = client.post("/recommend", json={"customer_id": who}, headers=h).json()
    assert [r["as_of"] for r in recommended["recommendations"]] == [UTC_TEXT]
    inline = client.post("/predict", headers=h, json={"customer_id": "inline-1", "events": [
        {"ts": "2025-11-01T10:00:00Z", "event_type": "page_view"}]}).json()
    assert inline["as_of"] == UTC_TEXT
    # an explicit as_of with an offset is answered in UTC too
    asked = client.post("/predict", headers=h, json={"customer_id": who,
                                                     "as_of": "2025-11-14T12:00:00-05:00"})
    assert asked.json()["as_of"] == "2025-11-14T17:00:00Z"
    late = error(client.post("/predict", headers=h, json={"customer_id": who,
                                                          "as_of": "2025-11-20T00:00:00+01:00"}),
                 422, "bad_request", "as_of")
    assert late["message"].startswith(f"as_of 2025-11-19T23:00:00Z is after the service's "
                                      f"clock ({UTC_TEXT}, pinned by JOURNEY_AS_OF)")


def test_an_event_at_the_clock_is_warned_about_and_not_counted(client: TestClient,
                                                               served: Served) -> None:
    """It was stored without a word, then /predict answered 404 "no events before"."""
    at = {"event_id": "at-clock-1", "customer_id": "at-clock", "ts": "2025-11-15T05:30:00+05:30",
          "event_type": "page_view"}
    r = client.post("/events", json={"events": [at]}, headers=served.headers(Role.ingest))
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    assert r.json()["warnings"] == [
        f"1 of the events are at or after the service's clock (JOURNEY_AS_OF={UTC_TEXT}): "
        "stored, but predictions as of that time do not count them until the clock moves "
        "past them"]
    h = served.headers(Role.predict)
    for path in ("/predict", "/recommend"):
        got = error(client.post(path, json={"customer_id": "at-clock"}, headers=h), 404,
                    "unknown_customer", "customer_id")
        assert got["message"] == f"no events for customer 'at-clock' before {UTC_TEXT}", path
    before = {**at, "event_id": "at-clock-2", "ts": "2025-11-14T23:59:59.999999Z"}
    r = client.post("/events", json={"events": [before]}, headers=served.headers(Role.ingest))
    assert r.json()["warnings"] == []
    assert client.post("/predict", json={"customer_id": "at-clock"}, headers=h).json()[
        "events"] == 1


def test_after_clock_counts_events_at_the_clock() -> None:
    clock = AS_OF.astimezone(timezone(timedelta(hours=5, minutes=30)))
    at, before = {"ts": AS_OF}, {"ts": AS_OF - timedelta(microseconds=1)}
    assert after_clock([before], clock) == []
    assert after_clock([at, before, at], clock)[0].startswith(
        f"2 of the events are at or after the service's clock (JOURNEY_AS_OF={UTC_TEXT})")


def test_scores_exports_and_the_dashboard_use_the_utc_date(client: TestClient,
                                                          served: Served) -> None:
    admin = served.headers(Role.admin)
    scored = client.post("/admin/score", json={}, headers=admin)
    assert scored.status_code == 200, scored.text
    assert scored.json()["snapshot"]["as_of"] == UTC_TEXT
    again = client.post("/admin/score", json={"as_of": PINNED.isoformat()}, headers=admin)
    assert again.json()["snapshot"]["as_of"] == again.json()["snapshot"]["previous_as_of"] \
        == UTC_TEXT
    h = served.headers(Role.marketer)
    dashboard = client.get("/dashboard/data", headers=h).json()
    assert dashboard["snapshot"]["as_of"] == dashboard["journey_map"]["as_of"] == UTC_TEXT
    assert client.get("/journey-map", headers=h).json()["journey_map"]["as_of"] == UTC_TEXT
    export = client.get("/segments/export", headers=h)
    assert export.status_code == 200, export.text
    assert f'filename="segment-{UTC_DAY}-all.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows and {r["as_of"] for r in rows} == {UTC_DAY}


def _snapshot(root: Path, as_of: str) -> Snapshot:
    table = pa.table({"customer_id": ["a"], "tier": pa.array(["high"]).dictionary_encode(),
                      "churn": [0.9], "conversion": [0.1], "expected_value": [1.0],
                      "revenue_at_risk": [0.9], "recency_days": [1.0],
                      "top_action": pa.array([None], pa.string())})
    meta: dict[str, Any] = {"as_of": as_of, "customers": 1}
    return write_snapshot(root, table, None, meta, keep=5)


def test_older_snapshots_kept_the_offset_and_are_read_in_utc(tmp_path: Path) -> None:
    """Snapshots written before this fix hold "...-05:00": their date, their answers and the
    next snapshot's previous_as_of are UTC's all the same."""
    first = _snapshot(tmp_path, "2025-12-31T20:00:00-05:00")
    assert first.meta["as_of"] == "2026-01-01T01:00:00Z"
    old = Snapshot(first.path, {**first.meta, "as_of": "2025-12-31T20:00:00-05:00",
                                "scored_at": "2026-01-01T02:00:00Z"})
    assert SegmentBook(old, ("tier",)).as_of_date == "2026-01-01"
    assert [r["as_of"] for r in _rows(SegmentBook(old, ("tier",)))] == ["2026-01-01"]
    assert snapshot_out(old).as_of == "2026-01-01T01:00:00Z"
    (first.path / "meta.json").write_text(
        (first.path / "meta.json").read_text().replace('"2026-01-01T01:00:00Z"',
                                                       '"2025-12-31T20:00:00-05:00"'))
    second = _snapshot(tmp_path, "2026-01-02T00:00:00+00:00")
    assert second.meta["as_of"] == "2026-01-02T00:00:00Z"
    assert second.meta["previous_as_of"] == "2026-01-01T01:00:00Z"
    assert SegmentBook(Snapshot(first.path, {**first.meta, "as_of": "not a time"}),
                       ("tier",)).as_of_date == "not a time"


def _rows(book: SegmentBook) -> list[dict[str, str]]:
    text = b"".join(book.csv({})).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))
