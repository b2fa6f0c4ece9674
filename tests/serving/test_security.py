"""Security of the service: every route and method against no key, a wrong key and each role's
key (the routes come from the app itself, so a new one must be added to the table below or
this fails); keys stored hashed and never in logs or answers; payload size limits; no path
from a request reaches the file system."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Route
from starlette.types import Message

from serving.app import create_app
from serving.keys import Role
from serving.marketing_routes import ASSETS, STATIC, export_filename
from serving.snapshots import CUSTOMERS, LATEST
from tests.serving.conftest import Served, app_of, state_of
from tests.serving.test_app import customers, error
from tests.training.world import clean_env, one_thread

# Routes anyone may call: health, the version, the dashboard page (it holds no data) and the
# API docs.
PUBLIC = frozenset({"/healthz", "/readyz", "/dashboard", "/dashboard/assets/{name}",
                    "/docs", "/docs/assets/{name}", "/openapi.json", "/version"})
# Every other route: the roles it admits besides admin (admin may do everything).
ROLES: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/metrics"): frozenset({Role.marketer, Role.monitor}),
    ("POST", "/events"): frozenset({Role.ingest}),
    ("POST", "/predict"): frozenset({Role.predict}),
    ("POST", "/predict/batch"): frozenset({Role.predict}),
    ("POST", "/recommend"): frozenset({Role.predict}),
    ("GET", "/models"): frozenset({Role.predict, Role.marketer}),
    ("POST", "/admin/reload"): frozenset(),
    ("POST", "/admin/score"): frozenset(),
    ("GET", "/segments"): frozenset({Role.marketer}),
    ("GET", "/segments/customers"): frozenset({Role.marketer}),
    ("GET", "/segments/export"): frozenset({Role.marketer}),
    ("GET", "/journey-map"): frozenset({Role.marketer}),
    ("GET", "/kpis"): frozenset({Role.marketer}),
    ("GET", "/personas"): frozenset({Role.marketer}),
    ("GET", "/dashboard/data"): frozenset({Role.marketer}),
    ("GET", "/triggers/firings"): frozenset({Role.marketer}),
    ("GET", "/triggers/rules"): frozenset({Role.marketer}),
    ("GET", "/triggers/test"): frozenset({Role.marketer}),
    ("GET", "/drift"): frozenset({Role.marketer}),
    ("GET", "/backtest"): frozenset({Role.marketer}),
}
WRONG_KEY = "jk_" + "A" * 43  # shaped like a real key
LIMITS = {"max_body_bytes": 4096, "max_events": 3, "max_batch": 5}
# Loggers that do not propagate to the root in some set-ups (the BentoML server's).
SERVER_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "bentoml", "bentoml.access")


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with small limits, on its own store copy, with a score snapshot."""
    folder = tmp_path_factory.mktemp("security")
    settings = served.settings(served.store_copy(folder), scores=folder / "scores", **LIMITS)
    with clean_env(), one_thread(), TestClient(create_app(settings, background=False)) as c:
        assert c.post("/admin/score", json={}, headers=served.headers(Role.admin)).is_success
        yield c


# The last route: a JSON 404/405 for any other path. It holds no data, so needs no key.
UNMATCHED = "/{path:path}"


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app answers (not the catch-all 404)."""
    out = []
    for route in app.routes:
        assert isinstance(route, Route), f"{route!r}: not a plain route; extend this test"
        if route.path != UNMATCHED:
            out += [(method, route.path) for method in sorted(route.methods or ())]
    return out


def minimal_request(method: str, path: str, customer: str) -> dict[str, Any]:
    """A valid request to the route, so "allowed" shows as a status other than 401/403."""
    bodies: dict[str, Any] = {
        "/events": {"events": [{"event_id": "security-1", "customer_id": customer,
                                "event_type": "page_view", "ts": "2025-11-01T00:00:00Z"}]},
        "/predict": {"customer_id": customer},
        "/predict/batch": {"customer_ids": [customer]},
        "/recommend": {"customer_id": customer},
        "/admin/score": {},
    }
    params = {"/triggers/test": {"rule": "any", "customer_id": customer}}
    url = path.replace("{name}", "swagger-ui.css" if path.startswith("/docs") else "dashboard.js")
    assert "{" not in url, f"{path}: give its path parameters a value"
    return {"method": method, "url": url, "json": bodies.get(path),
            "params": params.get(path)}


@dataclass(frozen=True)
class Outcome:
    method: str
    path: str
    who: str  # "none", "wrong" or a role
    status: int
    body: dict[str, Any] | None
    text: str


def sweep(client: TestClient, served: Served) -> list[Outcome]:
    """Every route and method with no key, a wrong key and each role's key."""
    customer = customers(served, 1)[0]
    callers: dict[str, dict[str, str]] = {"none": {}, "wrong": {"X-API-Key": WRONG_KEY}}
    callers |= {role.value: served.headers(role) for role in Role}
    out = []
    for method, path in endpoints(app_of(client)):
        request = minimal_request(method, path, customer)
        for who, headers in callers.items():
            r = client.request(**request, headers=headers)
            is_json = r.headers.get("content-type", "").startswith("application/json")
            body = r.json() if is_json and method != "HEAD" else None
            out.append(Outcome(method, path, who, r.status_code,
                               body if isinstance(body, dict) else None, r.text))
    return out


def test_every_route_is_in_the_expectation_table(client: TestClient) -> None:
    found = set(endpoints(app_of(client)))
    unlisted = {e for e in found if e[1] not in PUBLIC and e not in ROLES}
    assert not unlisted, f"routes missing from ROLES (or PUBLIC): {sorted(unlisted)}"
    assert not set(ROLES) - found, "ROLES lists routes the app no longer has"
    assert {path for _, path in found} >= PUBLIC
    last = app_of(client).routes[-1]
    assert isinstance(last, Route) and last.path == UNMATCHED  # after every real route
    r = client.get("/segments/nope")  # no key: a 404 that says nothing but "no such route"
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


def test_role_matrix(client: TestClient, served: Served) -> None:
    for o in sweep(client, served):
        where = f"{o.method} {o.path} with {o.who} key: {o.status} {o.text[:200]}"
        assert o.status < 500, where
        if o.path in PUBLIC:
            assert o.status == 200, where
        elif o.who == "none":
            assert (o.status, o.body and o.body["code"]) == (401, "missing_key"), where
        elif o.who == "wrong":
            assert (o.status, o.body and o.body["code"]) == (401, "invalid_key"), where
        elif o.who == Role.admin.value or Role(o.who) in ROLES[(o.method, o.path)]:
            assert o.status not in (401, 403), where
        else:
            assert (o.status, o.body and o.body["code"]) == (403, "forbidden"), where


def test_keys_are_stored_hashed(served: Served) -> None:
    text = (served.home / "api_keys.yaml").read_text()
    for key in served.keys.values():
        assert key not in text and key[3:] not in text
        assert hashlib.sha256(key.encode()).hexdigest() in text
    assert (served.home / "api_keys.yaml").stat().st_mode & 0o077 == 0  # owner only


def test_keys_never_appear_in_logs_or_answers(client: TestClient, served: Served,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in SERVER_LOGGERS:
        logging.getLogger(name).addHandler(caplog.handler)
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        outcomes = sweep(client, served)
        for key in (*served.keys.values(), WRONG_KEY):  # an unknown key is sent in full, too
            client.post("/predict", json={"customer_id": "nobody"}, headers={"X-API-Key": key})
            client.get("/segments", params={"by": "nope"}, headers={"X-API-Key": key})
    finally:
        for name in SERVER_LOGGERS:
            logging.getLogger(name).removeHandler(caplog.handler)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records, "nothing was logged: the capture is not working"
    for key in (*served.keys.values(), WRONG_KEY):
        assert key not in logged
        assert key[3:] not in logged  # not even without its prefix
        for o in outcomes:
            assert key not in o.text, (o.method, o.path, o.who)


# -- payload size ----------------------------------------------------------------------------

def test_bodies_over_the_limit_are_refused(client: TestClient, served: Served) -> None:
    h = {**served.headers(Role.ingest), "Content-Type": "application/json"}
    big = b'{"events": [' + b" " * 5000 + b"]}"
    body = error(client.post("/events", content=big, headers=h), 413, "too_large")
    assert f"{len(big):,} bytes" in body["message"] and "4,096" in body["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield b'{"events": ['
        for _ in range(10):
            yield b" " * 1000
        yield b"]}"

    r = client.post("/events", content=chunks(), headers=h)
    assert "content-length" not in r.request.headers
    error(r, 413, "too_large")
    r = client.post("/events", content=b"{}", headers={**h, "Content-Length": "nonsense"})
    error(r, 413, "too_large")


def test_counts_over_the_limit_name_the_field(client: TestClient, served: Served) -> None:
    ids = customers(served, 6)
    events = [{"event_id": f"lim{i}", "customer_id": ids[0], "event_type": "page_view",
               "ts": "2025-11-01T00:00:00Z"} for i in range(4)]
    history = [{k: e[k] for k in ("ts", "event_type")} for e in events]
    p, i = served.headers(Role.predict), served.headers(Role.ingest)
    for path, body, headers, name in [
        ("/events", {"events": events}, i, "events"),
        ("/predict", {"customer_id": ids[0], "events": history}, p, "events"),
        ("/predict/batch", {"customer_ids": ids}, p, "customer_ids"),
        ("/recommend", {"customer_ids": ids}, p, "customer_ids"),
    ]:
        error(client.post(path, json=body, headers=headers), 413, "too_large", name)


# -- paths -----------------------------------------------------------------------------------

TRAVERSALS = [
    "..", ".", "../app.py", "../../pyproject.toml", "..%2fapp.py", "%2e%2e%2fapp.py",
    "%2e%2e/%2e%2e/pyproject.toml", "%252e%252e%252fapp.py", "..%5capp.py", "..\\app.py",
    "%2fetc%2fpasswd", "/etc/passwd", "//etc/passwd", "C:%5cWindows%5cwin.ini",
    "dashboard.js%00", "dashboard.js%00.py", "%00", "app.py", "keys.py", "static",
    "static%2fdashboard.js", "....//app.py", "..;/app.py", "%c0%ae%c0%ae%2fapp.py",
]


async def _raw_get(app: FastAPI, raw_path: bytes) -> tuple[int, bytes]:
    """GET with the path exactly as given (HTTP clients normalise ``..`` away; a server
    decodes percent-escapes into ``path`` as below and keeps the bytes in ``raw_path``)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "root_path": "", "query_string": b"",
             "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path,
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80)}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize("name", TRAVERSALS)
def test_dashboard_assets_serve_nothing_outside_static(client: TestClient, name: str) -> None:
    app = app_of(client)
    status, body = anyio.run(_raw_get, app, f"/dashboard/assets/{name}".encode())
    assert status == 404, (name, body[:200])
    assert body.startswith(b'{"code":"not_found"'), body[:200]


def test_every_asset_is_a_file_of_static(client: TestClient) -> None:
    static = STATIC.resolve()
    assert ASSETS
    for name, path in ASSETS.items():
        assert path.resolve().parent == static and not path.is_symlink()
        r = client.get(f"/dashboard/assets/{name}")
        assert r.status_code == 200 and r.content == path.read_bytes()


def forge_snapshot(scores: Path, region: str) -> None:
    """A copy of the newest snapshot whose customers all live in ``region`` (attribute values
    come from the customers' data, so a hostile one can reach the export's file name)."""
    name = (scores / LATEST).read_text().strip()
    forged = scores / f"{name}x"  # sorts after it: the newest
    shutil.copytree(scores / name, forged)
    table = pq.read_table(forged / CUSTOMERS)
    column = pa.array([region] * table.num_rows).dictionary_encode()
    table = table.set_column(table.column_names.index("region"), "region", column)
    pq.write_table(table, forged / CUSTOMERS)
    (scores / LATEST).write_text(forged.name)


def test_export_file_name_is_sanitised(client: TestClient, served: Served) -> None:
    scores: Path = state_of(client).settings.scores_path
    hostile = '../東京\r\nSet-Cookie: x=1;"\\/%00'
    forge_snapshot(scores, hostile)
    r = client.get("/segments/export", params={"region": hostile},
                   headers=served.headers(Role.marketer))
    assert r.status_code == 200, r.text
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="segment-') and disposition.isascii()
    filename = disposition.split('filename="', 1)[1].removesuffix('"')
    assert all(c.isalnum() or c in "-_=+." for c in filename), filename
    assert "set-cookie" not in {k.lower() for k in r.headers}


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, "segment-S-all.csv"),
    ({"tier": ["high"], "stage": ["decision", "purchase"]},
     "segment-S-stage=decision+purchase-tier=high.csv"),
    ({"region": ["../../etc/passwd"]}, "segment-S-region=.._.._etc_passwd.csv"),
    ({"region": ['a"\r\nb']}, "segment-S-region=a___b.csv"),
    ({"region": ["東京", "Zürich"]}, "segment-S-region=__+Z_rich.csv"),
    ({"region": ["x" * 500]}, "segment-S-region=" + "x" * 113 + ".csv"),
])
def test_export_filename(filters: dict[str, list[str]], expected: str) -> None:
    assert export_filename("S", filters) == expected
