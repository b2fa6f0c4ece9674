"""POST /v1/events keeps the file loader's contract, names every problem of a batch at once,
and says which events it ignored; errors are JSON whatever goes wrong, and a caller without a
valid key hears that first."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.schema import MAX_PROPERTIES_CHARS
from features.store import EventStore
from serving.app import create_app
from serving.keys import Role
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_app import error


def event(i: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"ct-{i}", "customer_id": "ct-cust", "event_type": "page_view",
            "ts": (AS_OF - timedelta(hours=i + 1)).isoformat(), **fields}


def test_every_problem_of_a_batch_in_one_answer(app_client: TestClient, served: Served) -> None:
    h = served.headers(Role.ingest)
    bad = [event(0), event(1, ts="0001-01-01T00:00:00Z"), event(2, value=-5.0),
           event(3, value=1e308), event(4, properties={"x": "y" * MAX_PROPERTIES_CHARS}),
           event(5, ts="1969-12-31T23:59:59Z"), event(6, event_type="purchase", value=True)]
    got = error(app_client.post("/events", json={"events": bad}, headers=h), 422,
                "bad_request", "events[1].ts")
    assert [e["field"] for e in got["errors"]] == [
        "events[1].ts", "events[2].value", "events[3].value", "events[4].properties",
        "events[5].ts", "events[6].value"]  # true is not 1.0 revenue
    assert "1970-2100" in got["errors"][0]["message"]
    # the service's own checks come after the schema's, again all at once
    later = [event(0), event(1, event_type="teleport"), event(2, event_type="warp"),
             event(3, ts=(AS_OF + timedelta(days=3650)).isoformat()),
             event(0, event_type="purchase", value=10.0)]
    got = error(app_client.post("/events", json={"events": later}, headers=h), 422,
                "bad_request", "events[1].event_type")
    assert [e["field"] for e in got["errors"]] == [
        "events[1].event_type", "events[2].event_type", "events[3].ts", "events[4].event_id"]
    assert "(and 3 more problems, in errors)" in got["message"]
    assert "events[0]'s, with other content" in got["errors"][3]["message"]
    # nothing of either refused request was stored
    assert app_client.post("/events", json={"events": [event(0)]}, headers=h).json()[
        "inserted"] == 1


def test_schema_and_service_problems_in_the_same_answer(app_client: TestClient,
                                                        served: Served) -> None:
    """A batch with a bad value and an unknown type names both at once, in request order, not
    the schema's problem first and the type only once that is fixed; an inline history too."""
    h = served.headers(Role.ingest)
    mixed = [event(20), event(21, event_type="teleport"), event(22, value=-1.0),
             event(23, ts=(AS_OF + timedelta(days=3650)).isoformat()),
             event(20, event_type="purchase", value=10.0), "not an event"]
    got = error(app_client.post("/events", json={"events": mixed}, headers=h), 422,
                "bad_request", "events[1].event_type")
    assert [e["field"] for e in got["errors"]] == [
        "events[1].event_type", "events[2].value", "events[3].ts", "events[4].event_id",
        "events[5]"]
    assert "is not in the stage taxonomy" in got["errors"][0]["message"]
    assert "in the future" in got["errors"][2]["message"]
    history = [{k: v for k, v in e.items() if k not in ("event_id", "customer_id")}
               for e in (event(24, event_type="warp"), event(25, value="lots"))]
    got = error(app_client.post("/predict", headers=served.headers(Role.predict), json={
        "customer_id": "ct-inline", "events": history}), 422, "bad_request",
        "events[0].event_type")
    assert [e["field"] for e in got["errors"]] == ["events[0].event_type", "events[1].value"]
    # nothing was stored
    assert app_client.post("/events", json={"events": [event(21)]}, headers=h).json()[
        "inserted"] == 1


def test_types_and_channels_are_spelled_as_the_loader_spells_them(
        app_client: TestClient, served: Served) -> None:
    h = served.headers(Role.ingest)
    sent = [event(10, event_type=" Add to Cart", channel="Email "),
            event(11, event_type="product-view", channel="SEARCH")]
    assert app_client.post("/events", json={"events": sent}, headers=h).json()["inserted"] == 2
    predicted = app_client.post("/predict", headers=served.headers(Role.predict), json={
        "customer_id": "ct-inline", "events": [
            {k: v for k, v in e.items() if k not in ("event_id", "customer_id")} for e in sent]})
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["current_stage"] == "decision"  # add_to_cart, not an unknown type
    error(app_client.post("/events", json={"events": [event(12, event_type="  ")]}, headers=h),
          422, "bad_request", "events[0].event_type")


def test_stored_spelling(served: Served, tmp_path: Any) -> None:
    copy = served.store_copy(tmp_path)
    with TestClient(create_app(served.settings(copy), background=False)) as client:
        r = client.post("/events", headers=served.headers(Role.ingest), json={"events": [
            event(20, event_type="Add to Cart", channel="Email")]})
        assert r.status_code == 200, r.text
    with EventStore(copy, read_only=True) as store:
        row = store.con.execute("SELECT event_type, channel FROM events WHERE event_id = 'ct-20'"
                                ).fetchone()
    assert row == ("add_to_cart", "email")


def test_duplicates_are_named_and_late_events_warned(app_client: TestClient,
                                                     served: Served) -> None:
    h = served.headers(Role.ingest)
    first = [event(30), event(31)]
    assert app_client.post("/events", json={"events": first}, headers=h).json()[
        "duplicate_event_ids"] == []
    again = app_client.post("/events", json={"events": [event(32), *first, event(32)]},
                            headers=h).json()
    assert again["inserted"] == 1 and again["duplicates"] == 3
    assert again["duplicate_event_ids"] == ["ct-30", "ct-31", "ct-32"]
    late = event(33, ts=(AS_OF + timedelta(hours=1)).isoformat())
    out = app_client.post("/events", json={"events": [late]}, headers=h).json()
    assert out["inserted"] == 1 and len(out["warnings"]) == 1
    assert "after the service's clock (JOURNEY_AS_OF=" in out["warnings"][0]


@pytest.mark.parametrize("route", ["/predict", "/events", "/recommend", "/admin/score"])
def test_the_key_is_checked_before_the_body(app_client: TestClient, served: Served,
                                            route: str) -> None:
    bad = {"content": b"{bad", "headers": {"Content-Type": "application/json"}}
    error(app_client.post(route, **bad), 401, "missing_key")
    error(app_client.post(route, content=b"{bad", headers={  # a marketer key scores nothing
        "Content-Type": "application/json", **served.headers(Role.marketer)}), 403, "forbidden")


def test_a_json_syntax_error_says_where(app_client: TestClient, served: Served) -> None:
    r = app_client.post("/predict", content=b'{"customer_id":\n "x" "y"}', headers={
        "Content-Type": "application/json", **served.headers(Role.predict)})
    got = error(r, 422, "bad_request", "body")
    assert "Expecting ',' delimiter at line 2, column 6 (character 21)" in got["message"]


def test_unknown_paths_and_methods_answer_json(app_client: TestClient) -> None:
    got = error(app_client.get("/no/such/route"), 404, "not_found")
    assert "/docs" in got["message"]
    r = app_client.delete("/predict")
    error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    moved = app_client.get("/healthz/", follow_redirects=False)
    assert moved.status_code == 307 and moved.headers["location"].endswith("/healthz")


def test_an_unexpected_failure_is_a_json_500(served: Served, tmp_path: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.state import ServiceState

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ServiceState, "ingest", broken)
    app = create_app(served.settings(served.store_copy(tmp_path)), background=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/events", headers=served.headers(Role.ingest),
                        json={"events": [event(40)]})
    got = error(r, 500, "internal")
    assert "RuntimeError" in got["message"] and "disk on fire" not in got["message"]


def test_scoring_needs_no_body_and_refuses_the_future(served: Served, tmp_path: Any) -> None:
    """Every field is optional, so no body is as good as {}; a snapshot dated after the
    service's clock would become the newest, every customer in it long inactive."""
    settings = served.settings(served.store_copy(tmp_path), scores=tmp_path / "scores")
    with TestClient(create_app(settings, background=False)) as client:
        h = served.headers(Role.admin)
        future = (AS_OF + timedelta(days=365)).isoformat()
        got = error(client.post("/admin/score", json={"as_of": future}, headers=h), 422,
                    "bad_request", "as_of")
        assert "after the service's clock" in got["message"]
        assert not (tmp_path / "scores").exists() or not any((tmp_path / "scores").iterdir())
        r = client.post("/admin/score", headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["snapshot"]["as_of"].startswith(AS_OF.date().isoformat())


def test_an_unknown_inline_attribute_is_named(app_client: TestClient, served: Served) -> None:
    """A misspelt attribute counted as missing, silently."""
    got = error(app_client.post("/predict", headers=served.headers(Role.predict), json={
        "customer_id": "attr", "events": [], "attributes": {"regoin": "north"}}), 422,
        "bad_request", "attributes.regoin")
    assert "not one of the feature spec's" in got["message"]


def test_an_unknown_query_parameter_is_refused_after_the_key(app_client: TestClient,
                                                            served: Served) -> None:
    """A typo would be ignored and the answer look like the one asked for."""
    h = served.headers(Role.marketer)
    got = error(app_client.get("/triggers/firings", params={"statuss": "dead"}, headers=h),
                422, "bad_request", "statuss")
    assert "this route takes before, customer_id, firing_id, limit, rule, status" in got["message"]
    assert app_client.get("/triggers/firings", params={"status": "dead"},
                          headers=h).status_code == 200
    got = error(app_client.get("/triggers/firings", params={"rule": "quiet_41"}, headers=h),
                422, "bad_request", "rule")  # a typo would read as "it never fired"
    assert "rule 'quiet_41' is not a loaded rule" in got["message"]
    error(app_client.get("/models", params={"x": "1"}, headers=served.headers(Role.admin)),
          422, "bad_request", "x")
    # The key first: without one, a 401 says nothing of the route's parameters.
    error(app_client.get("/triggers/firings", params={"statuss": "dead"}), 401, "missing_key")


def test_non_finite_properties_are_refused_where_they_are(app_client: TestClient,
                                                          served: Served) -> None:
    """-Infinity parses from a request body but is not JSON: stored, it made every later
    prediction of the customer a 500."""
    h = {**served.headers(Role.ingest), "content-type": "application/json"}
    sent = [event(30), event(31, event_type="support_ticket", properties={"csat": -math.inf}),
            event(32, properties={"nested": {"x": math.nan}})]
    body = json.dumps({"events": sent}).encode()  # Python writes -Infinity and NaN, as JS can
    got = error(app_client.post("/events", content=body, headers=h), 422,
                "bad_request", "events[1].properties")
    assert [e["field"] for e in got["errors"]] == ["events[1].properties", "events[2].properties"]
    assert "not finite (NaN or Infinity)" in got["errors"][0]["message"]
    history = [{"ts": event(0)["ts"], "event_type": "support_ticket",
                "properties": {"csat": math.inf}}]
    inline = app_client.post(
        "/predict", headers={**served.headers(Role.predict), "content-type": "application/json"},
        content=json.dumps({"customer_id": "ct-inf", "events": history}).encode())
    assert inline.status_code == 422 and inline.json()["field"] == "events[0].properties"


def test_ids_are_trimmed_as_the_loader_trims_them(app_client: TestClient,
                                                 served: Served) -> None:
    h = served.headers(Role.ingest)
    r = app_client.post("/events", headers=h, json={"events": [
        event(40, customer_id=" ct-trim\t", event_id=" ct-40 ")]})
    assert r.status_code == 200 and r.json()["inserted"] == 1
    predicted = app_client.post("/predict", headers=served.headers(Role.predict),
                                json={"customer_id": "ct-trim"})
    assert predicted.status_code == 200 and predicted.json()["events"] == 1
    again = app_client.post("/events", headers=h, json={"events": [event(40)]})  # ct-40 again
    assert again.json()["duplicate_event_ids"] == ["ct-40"]
    for bad, why in ((" \n", "must not be blank"), ("a\x00b", "must not contain a NUL")):
        got = error(app_client.post("/events", headers=h, json={"events": [
            event(41, customer_id=bad)]}), 422, "bad_request", "events[0].customer_id")
        assert why in got["message"]


def test_a_changed_event_re_sent_under_its_id_is_named(app_client: TestClient,
                                                        served: Served) -> None:
    """Within one request such an id is refused; in a later one it used to be reported as a
    plain re-send, and the change was lost without a word."""
    h = served.headers(Role.ingest)
    first = event(50, channel="web", value=None)
    assert app_client.post("/events", json={"events": [first]}, headers=h).json()[
        "inserted"] == 1
    same = app_client.post("/events", json={"events": [first]}, headers=h).json()
    assert same["duplicate_event_ids"] == ["ct-50"] and same["conflicting_event_ids"] == []
    changed = app_client.post("/events", headers=h, json={"events": [
        {**first, "channel": "email"}, event(51)]}).json()
    assert changed["inserted"] == 1 and changed["duplicate_event_ids"] == ["ct-50"]
    assert changed["conflicting_event_ids"] == ["ct-50"]
    assert ("event_id 'ct-50' is already stored for a different event (differs in channel): "
            "this one was not stored") in changed["warnings"][-1]
    text = app_client.get("/metrics", headers=served.headers(Role.marketer)).text
    counted = [line for line in text.splitlines()
               if line.startswith('journey_events_total{outcome="conflict"}')]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1  # the app is shared


def test_the_firings_filter_trims_its_customer_id(app_client: TestClient,
                                                  served: Served) -> None:
    """Every route's ids are checked alike (CleanId): ' C1 ' is C1, and a blank id, which
    matched no firing and read as "never fired", is a bad request."""
    h = served.headers(Role.marketer)
    plain = app_client.get("/triggers/firings", params={"customer_id": "C1"}, headers=h)
    padded = app_client.get("/triggers/firings", params={"customer_id": " C1 "}, headers=h)
    assert plain.status_code == padded.status_code == 200
    assert padded.json() == plain.json()
    error(app_client.get("/triggers/firings", params={"customer_id": "  "}, headers=h),
          422, "bad_request", "customer_id")
