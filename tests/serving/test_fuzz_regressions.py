"""What the schema fuzzing (test_fuzz.py) found, one focused test each: times with no UTC
equivalent and numbers taken for times, bodies that are not UTF-8, scoring a time before every
event, and 404s missing from the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.keys import Role
from tests.serving.conftest import Served
from tests.serving.test_app import customers, error
from tests.training.world import clean_env, one_thread

EVENT = {"event_id": "fz-1", "event_type": "page_view", "ts": "2025-11-01T00:00:00Z"}


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("fuzzfound")
    settings = served.settings(served.store_copy(folder), scores=folder / "scores")
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


def requests_with_a_time(served: Served, when: Any) -> list[tuple[str, dict[str, Any], Role,
                                                                    str]]:
    """(path, body, role, field) of every request field that is a time."""
    who = customers(served, 1)[0]
    return [
        ("/predict", {"customer_id": who, "as_of": when}, Role.predict, "as_of"),
        ("/predict/batch", {"customer_ids": [who], "as_of": when}, Role.predict, "as_of"),
        ("/recommend", {"customer_id": who, "as_of": when}, Role.predict, "as_of"),
        ("/admin/score", {"as_of": when}, Role.admin, "as_of"),
        ("/events", {"events": [{**EVENT, "customer_id": who, "ts": when}]}, Role.ingest,
         "events[0].ts"),
        ("/predict", {"customer_id": who, "events": [{"event_type": "page_view", "ts": when}]},
         Role.predict, "events[0].ts"),
    ]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_outside_the_utc_calendar_is_a_bad_field(client: TestClient, served: Served,
                                                        when: str) -> None:
    """Was a 500: the offset moves it before year 1 or after 9999 (OverflowError)."""
    for path, body, role, name in requests_with_a_time(served, when):
        r = client.post(path, json=body, headers=served.headers(role))
        assert "UTC" in error(r, 422, "bad_request", name)["message"], path


def test_trigger_dry_run_times_are_checked_too(client: TestClient, served: Served) -> None:
    """Its ``as_of`` and ``since`` query parameters had both faults (the overflow a 500)."""
    rule = client.get("/triggers/rules", headers=served.headers(Role.marketer)).json()
    params = {"rule": rule["rules"][0]["id"], "customer_id": customers(served, 1)[0]}
    for name in ("as_of", "since"):
        for when in ("0001-01-01T00:00:00+01:00", "803"):
            r = client.get("/triggers/test", params={**params, name: when},
                           headers=served.headers(Role.marketer))
            error(r, 422, "bad_request", name)


@pytest.mark.parametrize("when", [803, "803", 1.7e9])
def test_a_number_is_not_a_time(client: TestClient, served: Served, when: object) -> None:
    """Was accepted as Unix seconds (803: 1970-01-01T00:13:23Z); the schema says ISO text."""
    for path, body, role, name in requests_with_a_time(served, when):
        error(client.post(path, json=body, headers=served.headers(role)), 422, "bad_request",
              name)


@pytest.mark.parametrize("raw", [b"\x80", b'{"customer_id": "\xe9"}'])
def test_a_body_that_is_not_utf8_is_a_bad_payload(client: TestClient, served: Served,
                                                  raw: bytes) -> None:
    """Was a 400 ``http_error`` (not in the schema), where invalid JSON gets a 422."""
    r = client.post("/predict", content=raw, headers={**served.headers(Role.predict),
                                                       "Content-Type": "application/json"})
    error(r, 422, "bad_request", "body")


def test_invalid_json_names_the_body(client: TestClient, served: Served) -> None:
    """The field was the character offset of the syntax error ("[13]")."""
    r = client.post("/predict", content=b'{"customer_id": ', headers={
        **served.headers(Role.predict), "Content-Type": "application/json"})
    error(r, 422, "bad_request", "body")


def test_scoring_before_every_event_writes_an_empty_snapshot(client: TestClient,
                                                             served: Served) -> None:
    """Was a 500: the uplift boosters' row-by-row path cannot shape zero rows."""
    r = client.post("/admin/score", json={"as_of": "2000-01-01T00:00:00Z"},
                    headers=served.headers(Role.admin))
    assert r.status_code == 200, r.text
    assert r.json()["snapshot"]["customers"] == 0
    h = served.headers(Role.marketer)
    for path in ("/segments", "/segments/customers", "/journey-map", "/dashboard/data"):
        assert client.get(path, headers=h).status_code == 200, path
    export = client.get("/segments/export", headers=h)
    assert export.status_code == 200 and export.text.count("\n") == 1  # the header only


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/predict"), ("post", "/recommend"), ("get", "/segments"),
    ("get", "/segments/customers"), ("get", "/segments/export"), ("get", "/journey-map"),
    ("get", "/dashboard/data"), ("get", "/dashboard/assets/{name}"), ("get", "/triggers/test"),
])
def test_404s_are_in_the_schema(client: TestClient, method: str, path: str) -> None:
    """They were answered but not declared (ErrorOut, like the other errors)."""
    responses = client.get("/openapi.json").json()["paths"][path][method]["responses"]
    assert responses["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"}


@pytest.mark.parametrize(("path", "media"), [
    ("/metrics", "text/plain"), ("/dashboard", "text/html"), ("/segments/export", "text/csv")])
def test_non_json_answers_declare_their_type(client: TestClient, path: str,
                                             media: str) -> None:
    assert media in client.get("/openapi.json").json()["paths"][path]["get"]["responses"][
        "200"]["content"]


def test_a_bracket_in_an_attribute_name_beside_a_bad_event_is_a_bad_request(
        client: TestClient, served: Served) -> None:
    """Was a 500: the errors are put in request order by their list index, and the name of an
    attribute (``attributes.a[=b``) was read as one."""
    body = {"customer_id": customers(served, 1)[0],
            "attributes": {"a[=b": {"nested": 1}, "c]": []},
            "events": [{"event_type": "page_view", "ts": "2025-11-01T00:00:00+19:47"}]}
    for role in (Role.predict, Role.admin):
        r = client.post("/predict", json=body, headers=served.headers(role))
        assert r.status_code == 422, r.text
        fields = [e["field"] for e in r.json()["errors"]]
        assert fields[-1] == "events[0].ts" and len(fields) == 3, fields
