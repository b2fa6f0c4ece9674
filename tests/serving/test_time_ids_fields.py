"""Ids and timestamps of request bodies read as the file loader reads them: an id is trimmed
before its length is checked, a whole JSON number is its digits, and the ISO spellings the
loader takes (no seconds, lowercase z) are taken; an offset no zone has is refused."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serving.keys import Role
from serving.schemas import BatchIn, Event, PredictIn, RecommendIn
from tests.features.loader_cases import jsonl_text
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_app import error

if TYPE_CHECKING:
    from tests.conftest import LoadFn

LONG = "c" * 256  # the longest id the store takes
TS = "2025-11-10T10:00:00Z"


def event(customer: object, event_id: object = "e1", ts: str = TS) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "ts": ts, "event_type": "page_view"}


def refusal(body: dict[str, Any], model: type[Event | PredictIn] = Event) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return str(info.value.errors()[0]["msg"])


# -- ids ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent", [LONG + " ", " " + LONG, f"\t{LONG}\r\n"])
def test_an_id_is_trimmed_before_its_length_is_checked(sent: str) -> None:
    assert Event.model_validate(event(sent, sent)).customer_id == LONG
    assert Event.model_validate(event(sent, sent)).event_id == LONG
    assert PredictIn.model_validate({"customer_id": sent}).customer_id == LONG
    assert BatchIn.model_validate({"customer_ids": [sent]}).customer_ids == [LONG]
    assert RecommendIn.model_validate({"customer_id": sent}).customer_id == LONG
    assert "at most 256 characters" in refusal(event(LONG + "c"))
    assert "must not be blank" in refusal(event(" \t"))
    assert "must not be blank" in refusal(event(""))


@pytest.mark.parametrize(("sent", "stored"), [
    (7, "7"), (7.0, "7"), (-3, "-3"), (1e3, "1000"), (-0.0, "0"),
    (12345678901234567890, "12345678901234567890"), (2.0**53, "9007199254740992"),
    pytest.param(10**255, "1" + "0" * 255, id="256-digits"),
])
def test_a_whole_json_number_is_its_digits(sent: float, stored: str) -> None:
    assert Event.model_validate(event(sent, sent)).customer_id == stored
    assert Event.model_validate(event(sent, sent)).event_id == stored
    assert PredictIn.model_validate({"customer_id": sent}).customer_id == stored


@pytest.mark.parametrize(("sent", "why"), [
    (True, "is true or false, not text or a whole number"),
    (1.5, "is a number with a fraction, not text or a whole number"),
    (1e300, "is a number too large to be exact, not text or a whole number"),
    (2.0**53 + 2, "is a number too large to be exact, not text or a whole number"),
    (math.inf, "is not a finite number, not text or a whole number"),
    (math.nan, "is not a finite number, not text or a whole number"),
    pytest.param(10**256, "at most 256 characters", id="257-digits"),
    pytest.param(-(10**255), "at most 256 characters", id="256-digits-and-a-sign"),
    pytest.param(10**5000, "at most 256 characters", id="5001-digits"),  # str() would raise
    ({"a": 1}, "valid string"), ([1], "valid string"),
])
def test_other_json_values_are_refused_saying_what_they_are(sent: object, why: str) -> None:
    assert why in refusal(event(sent))
    assert why in refusal({"customer_id": sent}, PredictIn)


def test_the_api_takes_the_ids_the_file_loader_takes(tmp_path: Path, load: LoadFn) -> None:
    """The same JSON values as ids, in a JSON lines file and in a request body: the same ids
    stored, the same ones refused."""
    sent: list[object] = [LONG + " ", " c1 ", 7, 7.0, -0.0, 12345678901234567890, 2.0**53,
                          1.5, 1e300, True, LONG + "c", "c\x00d"]
    path = tmp_path / "ids.jsonl"
    path.write_text(jsonl_text([event(v, f"e{i}") for i, v in enumerate(sent)]),
                    encoding="utf-8")
    loaded = load(path)
    by_file = dict(zip(loaded.column("event_id"), loaded.column("customer_id"), strict=True))
    by_api = {}
    for i, v in enumerate(sent):
        try:
            by_api[f"e{i}"] = Event.model_validate(event(v, f"e{i}")).customer_id
        except ValidationError:
            continue
    assert by_api == by_file
    assert by_api == {"e0": LONG, "e1": "c1", "e2": "7", "e3": "7", "e4": "0",
                      "e5": "12345678901234567890", "e6": "9007199254740992"}


def test_the_api_stores_and_finds_trimmed_and_numeric_ids(app_client: TestClient,
                                                           served: Served) -> None:
    """Through the routes: /events stores them, /predict finds them (its fast path, and
    FastAPI's for a body without a declared length)."""
    ts = (AS_OF - timedelta(days=1)).isoformat()
    sent = [event(LONG + " ", "tid-1 ", ts), event(70071, 70071.0, ts)]
    r = app_client.post("/events", json={"events": sent}, headers=served.headers(Role.ingest))
    assert r.status_code == 200 and r.json()["inserted"] == 2, r.text
    h = served.headers(Role.predict)
    for who, stored in ((LONG + "\t", LONG), (70071, "70071"), (70071.0, "70071")):
        fast = app_client.post("/predict", json={"customer_id": who}, headers=h)
        body = json.dumps({"customer_id": who}).encode()
        slow = app_client.post("/predict", content=iter([body]),  # chunked: FastAPI's route
                           headers={**h, "content-type": "application/json"})
        for got in (fast, slow):
            assert got.status_code == 200, got.text
            assert got.json()["customer_id"] == stored and got.json()["events"] == 1
    again = app_client.post("/events", json={"events": [event("70071", "70071", ts)]},
                        headers=served.headers(Role.ingest))
    assert again.json()["duplicate_event_ids"] == ["70071"]  # the same event as 70071.0
    got = error(app_client.post("/events", json={"events": [event(1.5, "tid-3", ts)]},
                            headers=served.headers(Role.ingest)),
                422, "bad_request", "events[0].customer_id")
    assert "a number with a fraction" in got["message"]


# -- timestamps ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "utc"), [
    ("2025-06-01T10:00Z", datetime(2025, 6, 1, 10, tzinfo=UTC)),  # no seconds
    ("2025-06-01T10:00+02:00", datetime(2025, 6, 1, 8, tzinfo=UTC)),
    ("2025-06-01T10:00:00z", datetime(2025, 6, 1, 10, tzinfo=UTC)),  # lowercase z
    ("2025-06-01t10:00:00z", datetime(2025, 6, 1, 10, tzinfo=UTC)),
    ("2025-06-01T10:00:00+14:00", datetime(2025, 5, 31, 20, tzinfo=UTC)),  # Kiribati
    ("2025-06-01T10:00:00-12:00", datetime(2025, 6, 1, 22, tzinfo=UTC)),
    ("2025-06-01T10:00:00-0800", datetime(2025, 6, 1, 18, tzinfo=UTC)),  # basic form
])
def test_the_loader_s_iso_spellings_are_taken(text: str, utc: datetime) -> None:
    assert Event.model_validate(event("c", ts=text)).ts == utc
    assert PredictIn.model_validate({"customer_id": "c", "as_of": text}).as_of == utc


@pytest.mark.parametrize("text", [
    "2025-06-01T10:00:00+25:00", "2025-06-01T10:00:00+14:30", "2025-06-01T10:00:00-14:01",
    "2025-06-01T10:00:00+23:59", "2025-06-01T10:00:00-08",
    "2025-06-01T10:00:00+05:30:15", "2025-06-01T24:00:00Z", " 2025-06-01T10:00:00Z",
    "2025-06-01T10:00:00Z ",
])
def test_offsets_no_zone_has_and_other_forms_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        Event.model_validate(event("c", ts=text))
    with pytest.raises(ValidationError):
        PredictIn.model_validate({"customer_id": "c", "as_of": text})


def test_the_api_stores_the_loader_s_spellings(app_client: TestClient,
                                              served: Served) -> None:
    h = served.headers(Role.ingest)
    day = (AS_OF - timedelta(days=2)).date().isoformat()
    sent = [event("ts-c", "ts-1", f"{day}T10:00Z"), event("ts-c", "ts-2", f"{day}T11:00:00z")]
    r = app_client.post("/events", json={"events": sent}, headers=h)
    assert r.status_code == 200 and r.json()["inserted"] == 2, r.text
    bad = [event("ts-c", "ts-3", f"{day}T10:00:00+25:00"),
           event("ts-c", "ts-4", f"{day}T10:00:00+14:30")]
    got = error(app_client.post("/events", json={"events": bad}, headers=h), 422, "bad_request",
                "events[0].ts")
    assert [e["field"] for e in got["errors"]] == ["events[0].ts", "events[1].ts"]
    assert "beyond +/-14:00" in got["errors"][1]["message"]
