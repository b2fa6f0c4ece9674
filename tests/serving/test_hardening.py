"""The service's answers before and around its routes (serving/hardening.py): a keyed route
refuses a request without a valid key before reading its body; security headers on every
answer; the key file fails closed; BentoML's own pages are gone; integer query parameters are
bounded; /readyz tells no server paths."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from serving.app import create_app
from serving.champions import missing_message
from serving.hardening import secured
from serving.keys import KeyRing, Role
from serving.redact import public_reason
from tests.serving.conftest import Served, app_of
from tests.serving.test_app import error
from tests.training.world import clean_env, one_thread

KEYED_POSTS = ("/events", "/predict", "/predict/batch", "/recommend", "/admin/reload",
               "/admin/score")
WRONG_KEY = "jk_" + "B" * 43


async def _post_unsent_body(app: FastAPI, path: str, key: str | None
                            ) -> tuple[list[Message], int]:
    """POST ``path`` declaring a 1 MB JSON body that never arrives (each read waits for
    good); what the app sent, and how often it asked for the body."""
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json"),
               (b"content-length", b"1000000")]
    if key is not None:
        headers.append((b"x-api-key", key.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "root_path": "", "query_string": b"",
             "path": path, "raw_path": path.encode(), "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    reads = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        await anyio.sleep_forever()
        raise AssertionError("not reached")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):  # a read would wait here for good
        await app(scope, receive, send)
    return sent, reads


@pytest.mark.parametrize("path", KEYED_POSTS)
@pytest.mark.parametrize(("key", "code"), [(None, "missing_key"), (WRONG_KEY, "invalid_key")])
def test_no_body_is_read_without_a_valid_key(app_client: TestClient, path: str,
                                            key: str | None, code: str) -> None:
    sent, reads = anyio.run(_post_unsent_body, app_of(app_client), path, key)
    assert reads == 0
    assert sent[0]["status"] == 401
    assert (b"www-authenticate", b"ApiKey") in sent[0]["headers"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert f'"code":"{code}"'.encode() in body


def test_the_gate_keeps_roles_metrics_and_other_answers(app_client: TestClient,
                                                        served: Served) -> None:
    # A valid key of the wrong role: the route's own check answers, after the body.
    error(app_client.post("/events", json={"events": []}, headers=served.headers(Role.predict)),
          403, "forbidden")
    error(app_client.get("/predict"), 405, "method_not_allowed")  # not a keyed request
    error(app_client.get("/no/such/route"), 404, "not_found")
    r = app_client.post("/predict/batch", content=b"{}")
    error(r, 401, "missing_key")
    metrics = app_client.get("/metrics", headers=served.headers(Role.admin)).text
    assert any('route="/predict/batch"' in line and 'status="401"' in line
               for line in metrics.splitlines() if line.startswith("journey_requests_total"))


# -- security headers ------------------------------------------------------------------------

def test_every_answer_has_the_security_headers(app_client: TestClient, served: Served) -> None:
    answers = {
        "page": app_client.get("/dashboard"),
        "asset": app_client.get("/dashboard/assets/dashboard.js"),
        "docs": app_client.get("/docs"),
        "open json": app_client.get("/healthz"),
        "keyed json": app_client.get("/models", headers=served.headers(Role.marketer)),
        "refusal": app_client.get("/models"),
        "not found": app_client.get("/nope"),
    }
    for what, r in answers.items():
        h = r.headers
        assert h["x-content-type-options"] == "nosniff", what
        assert h["x-frame-options"] == "DENY", what
        assert h["referrer-policy"] == "no-referrer", what
        assert "frame-ancestors 'none'" in h["content-security-policy"], what
    for page in ("page", "docs"):  # their scripts run: the page's own policy rules them
        assert answers[page].headers["content-security-policy"] == "frame-ancestors 'none'"
    for data in ("open json", "keyed json", "refusal", "not found"):
        assert answers[data].headers["cache-control"] == "no-store", data
        assert answers[data].headers["content-security-policy"].startswith("default-src 'none'")
    assert answers["asset"].headers["cache-control"] == "no-cache"  # the route's own say
    assert answers["page"].status_code == answers["keyed json"].status_code == 200


def test_csv_and_metrics_are_not_stored_a_route_cache_policy_is_kept() -> None:
    for media in (b"text/csv; charset=utf-8", b"text/plain; version=0.0.4"):
        assert (b"cache-control", b"no-store") in secured([(b"content-type", media)])
    kept = secured([(b"content-type", b"application/json"), (b"cache-control", b"max-age=5")])
    assert [v for n, v in kept if n == b"cache-control"] == [b"max-age=5"]


# -- the key file fails closed ---------------------------------------------------------------

@pytest.fixture
def own_keys(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[tuple[TestClient, Path]]:
    """An app on a copy of the key file (this test's to break), read again at once."""
    keys = tmp_path / "api_keys.yaml"
    shutil.copy(served.home / "api_keys.yaml", keys)
    monkeypatch.setattr(KeyRing, "reload_seconds", 0.0)
    settings = served.settings(served.store_copy(tmp_path), api_keys=keys)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        yield c, keys


def test_an_unreadable_key_file_refuses_every_key_until_fixed(
        own_keys: tuple[TestClient, Path], served: Served,
        caplog: pytest.LogCaptureFixture) -> None:
    client, keys = own_keys
    good = keys.read_text()
    predict = {"json": {"customer_id": "C0000001"}, "headers": served.headers(Role.predict)}
    assert client.post("/predict", **predict).status_code == 200
    keys.write_text(good + "\n  - this: [is not closed\n")  # a hand edit gone wrong
    with caplog.at_level(logging.ERROR, logger="journey.serving"):
        for r in (client.post("/predict", **predict),  # the fast path too
                  client.get("/models", headers=served.headers(Role.admin)),
                  client.post("/events", json={"events": []}),
                  client.post("/events", content=b"[" * 100_000,
                              headers={**served.headers(Role.ingest),
                                       "Content-Type": "application/json"})):
            body = error(r, 503, "key_file_unreadable")
            assert "api_keys.yaml" in body["message"] and "admin" in body["message"]
            assert str(keys.parent) not in body["message"]  # the path is the log's
    logged = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.CRITICAL  # once per change
    assert str(keys) in logged[0].getMessage()
    assert client.get("/healthz").status_code == 200  # the open routes stay open
    keys.write_text(good)
    assert client.post("/predict", **predict).status_code == 200


# -- bounded integers ------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "name"), [("/triggers/firings", "before"),
                                            ("/segments/customers", "offset")])
def test_integer_query_parameters_are_bounded(app_client: TestClient, served: Served,
                                              path: str, name: str) -> None:
    h = served.headers(Role.marketer)
    for value in (2**63, 10**30):
        error(app_client.get(path, params={name: str(value)}, headers=h), 422, "bad_request",
              name)
    assert app_client.get(path, params={name: str(2**63 - 1)}, headers=h).status_code < 500


# -- /readyz without paths -------------------------------------------------------------------

def test_readyz_tells_no_server_paths(served: Served, tmp_path: Path) -> None:
    store = tmp_path / "secret-folder" / "events.duckdb"
    store.parent.mkdir()
    store.write_bytes(b"not a duckdb file" * 100)
    settings = served.settings(store)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        ready: dict[str, Any] = c.get("/readyz").json()
    assert ready["ready"] is False
    for text in (ready["last_load_error"], ready["message"]):
        assert text.startswith("event store not loaded: events.duckdb: "), text
        assert "secret-folder" not in text and str(tmp_path) not in text


def test_public_reasons_keep_what_serve_detach_recognises(served: Served) -> None:
    missing = "RegistryError: " + missing_message(served.world.spec, "champion", ["churn"], {})
    assert public_reason(missing) == missing  # no path in it: whole
    assert " no version with alias " in missing
    loaded = ("RegistryError: cannot load models:/journey-churn/3: OSError: no file "
              "'/srv/home/mlruns/1/abc/artifacts/model.pkl'")
    assert public_reason(loaded) == ("RegistryError: cannot load models:/journey-churn/3: "
                                     "OSError: no file 'model.pkl'")
    assert public_reason("a\nsecond line /etc/x") == "a"
