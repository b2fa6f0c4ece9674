"""Defects of an integrator audit: as_of judged alike by every scoring route, a body that is
not plain JSON refused as such (415), the key checked before the body's size, and keyless
routes documenting only what they can answer."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.deps import check_body_headers
from serving.errors import UnsupportedMediaError
from serving.keys import Role
from tests.serving.conftest import AS_OF, Served, state_of
from tests.serving.test_app import customers, error
from tests.training.world import clean_env, one_thread

BEFORE_ALL = "2000-01-01T00:00:00Z"  # before the world's first event
FAR = "9999-12-31T00:00:00Z"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with a small body limit, on its own store copy."""
    folder = tmp_path_factory.mktemp("consistency")
    settings = served.settings(served.store_copy(folder), max_body_bytes=4096)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c


# -- as_of -----------------------------------------------------------------------------------

def test_a_stored_customer_without_events_before_as_of_is_unknown_everywhere(
        client: TestClient, served: Served) -> None:
    """/predict answered 200 with events 0 and no stage, where /recommend answers 404."""
    h = served.headers(Role.predict)
    who, other = customers(served, 2)
    asked = {"customer_id": who, "as_of": BEFORE_ALL}
    predicted = error(client.post("/predict", json=asked, headers=h), 404, "unknown_customer",
                      "customer_id")
    recommended = error(client.post("/recommend", json=asked, headers=h), 404,
                        "unknown_customer", "customer_id")
    assert predicted["message"] == recommended["message"] == (
        f"no events for customer {who!r} before 2000-01-01T00:00:00Z")
    batch = client.post("/predict/batch", headers=h,
                        json={"customer_ids": [who, "no-such", other], "as_of": BEFORE_ALL})
    assert batch.status_code == 200, batch.text
    assert batch.json()["predictions"] == []
    assert batch.json()["unknown_customers"] == [who, "no-such", other]
    # with history before as_of, both are answered, and the batch keeps the one that has
    mixed = client.post("/predict/batch", headers=h, json={"customer_ids": [who, "no-such"]})
    assert [p["customer_id"] for p in mixed.json()["predictions"]] == [who]
    assert mixed.json()["unknown_customers"] == ["no-such"]


def test_an_inline_history_is_not_judged_by_the_stored_one(client: TestClient,
                                                           served: Served) -> None:
    r = client.post("/predict", headers=served.headers(Role.predict), json={
        "customer_id": customers(served, 1)[0], "as_of": BEFORE_ALL, "events": []})
    assert r.status_code == 200, r.text
    assert r.json()["history"] == "inline" and r.json()["events"] == 0


def test_as_of_after_the_clock_is_refused_by_every_scoring_route(client: TestClient,
                                                                 served: Served) -> None:
    """Stored histories end at the service's clock: as_of 9999-12-31 answered churn 0.99."""
    who = customers(served, 1)[0]
    cases: list[tuple[str, dict[str, object], Role]] = [
        ("/predict", {"customer_id": who}, Role.predict),
        ("/predict/batch", {"customer_ids": [who]}, Role.predict),
        ("/recommend", {"customer_id": who}, Role.predict),
        ("/recommend", {"customer_ids": [who]}, Role.predict),
        ("/admin/score", {}, Role.admin),
    ]
    for path, body, role in cases:
        got = error(client.post(path, json={**body, "as_of": FAR}, headers=served.headers(role)),
                    422, "bad_request", "as_of")
        assert got["message"] == (
            "as_of 9999-12-31T00:00:00Z is after the service's clock "
            f"({AS_OF.isoformat().replace('+00:00', 'Z')}, pinned by JOURNEY_AS_OF); ask as of "
            "a time up to it"), path


def test_as_of_within_the_clock_tolerance_is_answered(client: TestClient,
                                                      served: Served) -> None:
    """The tolerance /events gives a sender's clock skew."""
    tolerance = state_of(client).settings.future_tolerance_seconds
    h = served.headers(Role.predict)
    who = customers(served, 1)[0]
    inside = (AS_OF + timedelta(seconds=tolerance)).isoformat()
    beyond = (AS_OF + timedelta(seconds=tolerance + 1)).isoformat()
    for path in ("/predict", "/recommend"):
        r = client.post(path, json={"customer_id": who, "as_of": inside}, headers=h)
        assert r.status_code == 200, (path, r.text)
        error(client.post(path, json={"customer_id": who, "as_of": beyond}, headers=h), 422,
              "bad_request", "as_of")


def test_an_unpinned_clock_is_named_as_now(served: Served, tmp_path: Path) -> None:
    settings = served.settings(served.store_copy(tmp_path), as_of=None)
    with TestClient(create_app(settings, background=False)) as c:
        got = error(c.post("/predict", json={"customer_id": customers(served, 1)[0],
                                             "as_of": FAR},
                           headers=served.headers(Role.predict)), 422, "bad_request", "as_of")
    assert ", now); ask as of a time up to it" in got["message"]
    assert "JOURNEY_AS_OF" not in got["message"]


# -- content type and encoding -------------------------------------------------------------

BODIES = [("/predict", {"customer_id": "C1"}, Role.predict),
          ("/predict/batch", {"customer_ids": ["C1"]}, Role.predict),
          ("/recommend", {"customer_id": "C1"}, Role.predict),
          ("/events", {"events": []}, Role.ingest),
          ("/admin/score", {}, Role.admin)]


@pytest.mark.parametrize(("path", "body", "role"), BODIES)
def test_a_body_not_declared_json_is_refused_as_such(client: TestClient, served: Served,
                                                     path: str, body: object,
                                                     role: Role) -> None:
    """curl's default (form-encoded) was a 422 about the body's content."""
    raw = json.dumps(body).encode()
    for given, said in [({"Content-Type": "application/x-www-form-urlencoded"},
                         "not application/x-www-form-urlencoded"),
                        ({"Content-Type": "text/plain"}, "not text/plain"),
                        ({}, "and the request has none")]:
        got = error(client.post(path, content=raw, headers={**served.headers(role), **given}),
                    415, "unsupported_media_type", "Content-Type")
        assert got["message"] == f"Content-Type must be application/json, {said}"
        # the key first: nothing about a body the caller may not send
        error(client.post(path, content=raw, headers=given), 401, "missing_key")


@pytest.mark.parametrize(("path", "body", "role"), BODIES)
def test_a_compressed_body_is_refused_as_such(client: TestClient, served: Served, path: str,
                                              body: object, role: Role) -> None:
    """Was a 422 "not valid UTF-8 JSON"; a body that says gzip but is plain is refused too."""
    raw = json.dumps(body).encode()
    for sent in (gzip.compress(raw), raw):
        headers = {**JSON, "Content-Encoding": "gzip"}
        got = error(client.post(path, content=sent, headers={**served.headers(role),
                                                             **headers}),
                    415, "unsupported_media_type", "Content-Encoding")
        assert got["message"] == ("Content-Encoding gzip is not supported; send the body "
                                  "uncompressed")
        error(client.post(path, content=sent, headers=headers), 401, "missing_key")
        error(client.post(path, content=sent, headers={**headers, "X-API-Key": "jk_nope"}),
              401, "invalid_key")


def test_json_types_and_no_body_pass(client: TestClient, served: Served) -> None:
    h = served.headers(Role.predict)
    who = customers(served, 1)[0]
    raw = json.dumps({"customer_id": who}).encode()
    for kind in ("application/json; charset=utf-8", "application/vnd.api+json",
                 "Application/JSON"):
        r = client.post("/predict", content=raw, headers={**h, "Content-Type": kind,
                                                          "Content-Encoding": "identity"})
        assert r.status_code == 200, (kind, r.text)
    # a route whose body is optional takes none, whatever the (form) type curl -d '' sends
    r = client.post("/admin/score", content=b"", headers={
        **served.headers(Role.admin), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    r = client.post("/admin/score", headers=served.headers(Role.admin))  # no body, no type
    assert r.status_code == 200, r.text


def test_a_request_without_length_or_chunks_has_no_body(client: TestClient) -> None:
    """HTTP/1.1: neither Content-Length nor Transfer-Encoding means no body (`curl -X POST`
    with no data sends neither), which is not a body of the wrong type."""
    route = next(r for r in client.app.routes  # type: ignore[attr-defined]
                 if isinstance(r, APIRoute) and r.path == "/admin/score")
    bare = Request({"type": "http", "method": "POST", "headers": [], "route": route})
    assert check_body_headers(bare) is False
    chunked = Request({"type": "http", "method": "POST", "route": route,
                       "headers": [(b"transfer-encoding", b"chunked")]})
    with pytest.raises(UnsupportedMediaError, match="Content-Type must be application/json"):
        check_body_headers(chunked)


# -- body size -------------------------------------------------------------------------------

def test_the_key_is_checked_before_the_size_of_the_body(client: TestClient,
                                                        served: Served) -> None:
    big = b'{"events": [' + b" " * 5000 + b"]}"
    error(client.post("/events", content=big, headers=JSON), 401, "missing_key")
    error(client.post("/events", content=big, headers={**JSON, "X-API-Key": "jk_nope"}), 401,
          "invalid_key")
    error(client.post("/events", content=big, headers={**JSON, **served.headers(
        Role.marketer)}), 403, "forbidden")
    error(client.post("/predict", content=big, headers=JSON), 401, "missing_key")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield b'{"events": ['
        for _ in range(10):
            yield b" " * 1000
        yield b"]}"

    error(client.post("/events", content=chunks(), headers=JSON), 401, "missing_key")
    h = {**JSON, **served.headers(Role.ingest)}
    error(client.post("/events", content=big, headers=h), 413, "too_large")
    error(client.post("/events", content=chunks(), headers=h), 413, "too_large")
    p = {**JSON, **served.headers(Role.predict)}
    error(client.post("/predict", content=big, headers=p), 413, "too_large")


def test_refusals_of_the_size_are_counted_under_their_route(client: TestClient,
                                                           served: Served) -> None:
    """They were counted under the mount ("/v1"), or "unmatched" in process."""
    def counted(route: str, status: int) -> float:
        text = client.get("/metrics", headers=served.headers(Role.marketer)).text
        line = f'journey_requests_total{{method="POST",route="{route}",status="{status}"}} '
        return sum(float(x[len(line):]) for x in text.splitlines() if x.startswith(line))

    before = (counted("/predict", 413), counted("/events", 401), counted("unmatched", 413))
    big = b'{"customer_id": "' + b"x" * 5000 + b'"}'
    error(client.post("/predict", content=big, headers={**JSON, **served.headers(
        Role.predict)}), 413, "too_large")
    error(client.post("/events", content=big, headers=JSON), 401, "missing_key")
    after = (counted("/predict", 413), counted("/events", 401), counted("unmatched", 413))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 0]


# -- the schema ------------------------------------------------------------------------------

def test_keyless_routes_document_only_what_they_answer(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def statuses(path: str, method: str = "get") -> set[str]:
        return set(paths[path][method]["responses"])

    assert statuses("/healthz") == {"200"}
    assert statuses("/readyz") == {"200", "503"}
    assert statuses("/dashboard") == {"200"}
    assert statuses("/dashboard/assets/{name}") == {"200", "404"}
    assert statuses("/models") == {"200", "401", "403", "422", "503"}
    assert statuses("/predict", "post") == {"200", "401", "403", "404", "413", "415", "422",
                                            "503"}
    assert statuses("/admin/score", "post") >= {"413", "415"}
    assert "HTTPValidationError" not in json.dumps(client.get("/openapi.json").json())
