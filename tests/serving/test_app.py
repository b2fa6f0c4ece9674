"""Every route and every error of the API through FastAPI's TestClient, on the small world's
champion models."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.store import EventStore
from serving.app import create_app
from serving.keys import Role
from serving.schemas import BatchOut, ModelsOut, PredictOut, Readiness
from tests.serving.conftest import AS_OF, Served

NO_KEY: dict[str, str] = {}


def customers(served: Served, n: int) -> list[str]:
    with EventStore(served.world.store, read_only=True) as store:
        rows = store.con.execute(
            "SELECT customer_id FROM customers ORDER BY customer_id LIMIT ?", [n]).fetchall()
    return [r[0] for r in rows]


def history(served: Served, customer_id: str) -> list[dict[str, Any]]:
    """The customer's stored events as an inline history (the original store, not the copy)."""
    with EventStore(served.world.store, read_only=True) as store:
        rows = store.customer_history(customer_id).to_pylist()
    return [{"ts": r["ts"].isoformat(), "event_type": r["event_type"], "channel": r["channel"],
             "value": r["value"], "action": r["action"],
             "properties": json.loads(r["properties"]) if r["properties"] else None}
            for r in rows]


def error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["message"]
    if field is not None:
        assert body["field"] == field, body
    return body


# -- health ----------------------------------------------------------------------------------

def test_health_needs_no_key(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = Readiness.model_validate(app_client.get("/readyz").json())
    assert ready.ready and ready.customers > 1000 and set(ready.models) == {
        "next_stage", "churn", "conversion", "journey-uplift-convert", "journey-uplift-churn"}


def test_not_ready_until_models_load(served: Served, tmp_path: Any) -> None:
    """A registry without champions: the service answers, says why, and refuses to score."""
    settings = served.settings(served.store_copy(tmp_path),
                               mlflow_tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    with TestClient(create_app(settings, background=False)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        body = Readiness.model_validate(r.json())
        assert not body.ready and "no version with alias 'champion'" in (body.message or "")
        error(client.post("/predict", json={"customer_id": "x"},
                          headers=served.headers(Role.predict)), 503, "not_ready")
        # ingest does not need models: events are still accepted
        ok = client.post("/events", headers=served.headers(Role.ingest), json={"events": [{
            "event_id": "nr-1", "customer_id": "nr", "ts": "2025-11-01T10:00:00Z",
            "event_type": "page_view"}]})
        assert ok.status_code == 200 and ok.json()["inserted"] == 1


def test_metrics(app_client: TestClient, served: Served) -> None:
    app_client.post("/predict", json={"customer_id": customers(served, 1)[0]},
                    headers=served.headers(Role.predict))
    error(app_client.get("/metrics"), 401, "missing_key")
    error(app_client.get("/metrics", headers=served.headers(Role.ingest)), 403, "forbidden")
    text = app_client.get("/metrics", headers=served.headers(Role.marketer)).text
    for version_line in (f'journey_model_version{{target="{t}",version="{v}"}} 1.0'
                         for t, v in served.versions.items()):
        assert version_line in text
    assert 'journey_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'journey_request_seconds_bucket{le="0.005",route="/predict"}' in text
    assert 'journey_prediction_probability_count{target="churn"}' in text
    assert "journey_ready 1.0" in text and "journey_model_last_load_ok 1.0" in text
    for process in ("process_resident_memory_bytes", "python_gc_collections_total",
                    "python_info"):
        assert process in text
    # The event store's memory by component: its indexes are read in as ingests reach them.
    store = {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
             if line.startswith("journey_store_memory_bytes{")}
    assert "art_index" in store and sum(store.values()) > 0
    assert app_client.get("/metrics", headers=served.headers(Role.admin)).status_code == 200



def test_the_store_memory_setting_bounds_the_services_store(served: Served, tmp_path: Any) -> None:
    settings = served.settings(served.store_copy(tmp_path), store_memory="256MB")
    with TestClient(create_app(settings, background=False)) as client:
        assert client.get("/readyz").status_code == 200
        state = client.app.state.journey  # type: ignore[attr-defined]
        limit = state.store.con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert limit == ("244.1 MiB",)  # 256e6 bytes
    with pytest.raises(ValueError, match="is not a size such as 4GB"):
        served.settings(tmp_path / "x.duckdb", store_memory="lots")

# -- auth ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body", "allowed"), [
    ("POST", "/events", {"events": []}, {Role.ingest, Role.admin}),
    ("POST", "/predict", {"customer_id": "nobody"}, {Role.predict, Role.admin}),
    ("POST", "/predict/batch", {"customer_ids": ["nobody"]}, {Role.predict, Role.admin}),
    ("POST", "/recommend", {"customer_ids": ["nobody"]}, {Role.predict, Role.admin}),
    ("GET", "/models", None, {Role.predict, Role.marketer, Role.admin}),
    ("GET", "/metrics", None, {Role.marketer, Role.monitor, Role.admin}),
    ("POST", "/admin/reload", None, {Role.admin}),
])
def test_roles(app_client: TestClient, served: Served, method: str, path: str,
               body: dict[str, Any] | None, allowed: set[Role]) -> None:
    def call(headers: dict[str, str]) -> Any:
        return app_client.request(method, path, json=body, headers=headers)

    error(call(NO_KEY), 401, "missing_key")
    r = call({"X-API-Key": "jk_not-a-key"})
    error(r, 401, "invalid_key")
    assert r.headers["www-authenticate"] == "ApiKey"
    for role in Role:
        r = call(served.headers(role))
        if role in allowed:
            assert r.status_code not in (401, 403), (role, r.text)
        else:
            body_ = error(r, 403, "forbidden")
            assert role.value in body_["message"]


# -- predict ---------------------------------------------------------------------------------

def test_predict_from_the_store(app_client: TestClient, served: Served) -> None:
    cid = customers(served, 3)[2]
    r = app_client.post("/predict", json={"customer_id": cid},
                        headers=served.headers(Role.predict))
    assert r.status_code == 200, r.text
    out = PredictOut.model_validate(r.json())
    assert out.customer_id == cid and out.as_of == AS_OF and out.history == "store"
    assert out.model_versions == served.versions
    assert out.feature_definition_hash == served.world.spec.hash
    assert set(out.next_stage) == {*served.world.spec.stages, "inactive"}
    assert sum(out.next_stage.values()) == pytest.approx(1.0)
    assert 0 < out.churn < 1 and 0 < out.conversion < 1
    low, high = 0.3, 0.6
    assert out.risk_tier == ("low" if out.churn < low else "medium" if out.churn < high
                             else "high")
    assert out.current_stage in served.world.spec.stages
    for model, reasons in out.reasons.items():
        assert 1 <= len(reasons) <= 3, model
        sizes = [abs(x.contribution) for x in reasons]
        assert sizes == sorted(sizes, reverse=True)
        assert all(x.text and x.direction in ("raises", "lowers") for x in reasons)


def test_as_of_and_inline_history(app_client: TestClient, served: Served) -> None:
    cid = customers(served, 5)[4]
    h = served.headers(Role.predict)
    when = "2025-10-01T00:00:00Z"
    stored = app_client.post("/predict", json={"customer_id": cid, "as_of": when}, headers=h)
    inline = app_client.post("/predict", headers=h, json={
        "customer_id": cid, "as_of": when, "events": history(served, cid)})
    assert stored.status_code == inline.status_code == 200, inline.text
    a, b = stored.json(), inline.json()
    assert a["as_of"] == "2025-10-01T00:00:00Z" and b["history"] == "inline"
    for key in ("next_stage", "churn", "conversion", "risk_tier", "current_stage", "reasons",
                "events"):
        assert a[key] == pytest.approx(b[key]) if isinstance(a[key], float) else a[key] == b[key]
    assert a["events"] == sum(e["ts"] < "2025-10-01" for e in history(served, cid)) > 0
    later = app_client.post("/predict", json={"customer_id": cid}, headers=h).json()
    assert later["as_of"] == AS_OF.isoformat().replace("+00:00", "Z")


def test_predict_errors(app_client: TestClient, served: Served) -> None:
    h = served.headers(Role.predict)
    error(app_client.post("/predict", json={"customer_id": "no-such"}, headers=h),
          404, "unknown_customer", "customer_id")
    error(app_client.post("/predict", json={}, headers=h), 422, "bad_request", "customer_id")
    error(app_client.post("/predict", json={"customer_id": "a", "color": "red"}, headers=h),
          422, "bad_request", "color")
    error(app_client.post("/predict", json={"customer_id": "a", "as_of": "2025-10-01T00:00"},
                          headers=h), 422, "bad_request", "as_of")
    bad_inline = {"customer_id": "a", "events": [
        {"ts": "2025-10-01T00:00:00Z", "event_type": "page_view"},
        {"ts": "2025-10-02T00:00:00Z", "event_type": "teleport"}]}
    error(app_client.post("/predict", json=bad_inline, headers=h),
          422, "bad_request", "events[1].event_type")
    r = app_client.post("/predict", content=b"{not json", headers={
        **h, "content-type": "application/json"})
    error(r, 422, "bad_request")


def test_batch(app_client: TestClient, served: Served) -> None:
    ids = customers(served, 40)
    h = served.headers(Role.predict)
    r = app_client.post("/predict/batch", json={"customer_ids": [*ids, "ghost", ids[0]]},
                        headers=h)
    assert r.status_code == 200, r.text
    out = BatchOut.model_validate(r.json())
    assert [p.customer_id for p in out.predictions] == ids  # repeats scored once, order kept
    assert out.unknown_customers == ["ghost"]
    r = app_client.post("/predict/batch", json={"customer_ids": ["zz-ghost", ids[0], "a-ghost",
                                                                 "zz-ghost"]}, headers=h)
    assert r.json()["unknown_customers"] == ["zz-ghost", "a-ghost"]  # request order, once each
    error(app_client.post("/predict/batch", json={"customer_ids": [ids[0], ""]}, headers=h),
          422, "bad_request", "customer_ids[1]")
    one = app_client.post("/predict", json={"customer_id": ids[7]}, headers=h).json()
    got = out.predictions[7].model_dump(mode="json")
    for key in ("next_stage", "churn", "conversion", "reasons", "current_stage", "risk_tier"):
        assert got[key] == pytest.approx(one[key]) if isinstance(one[key], float) \
            else got[key] == one[key]
    error(app_client.post("/predict/batch", json={"customer_ids": []}, headers=h),
          422, "bad_request", "customer_ids")


def test_limits(served: Served, tmp_path: Any) -> None:
    settings = served.settings(served.store_copy(tmp_path), max_batch=5, max_events=3,
                               max_body_bytes=4096)
    with TestClient(create_app(settings, background=False)) as client:
        error(client.post("/predict/batch", json={"customer_ids": [f"c{i}" for i in range(6)]},
                          headers=served.headers(Role.predict)), 413, "too_large", "customer_ids")
        events = [{"event_id": f"l{i}", "customer_id": "lim", "event_type": "page_view",
                   "ts": "2025-11-01T00:00:00Z"} for i in range(4)]
        error(client.post("/events", json={"events": events},
                          headers=served.headers(Role.ingest)), 413, "too_large", "events")
        big = {"customer_id": "x" * 5000}
        body = error(client.post("/predict", json=big, headers=served.headers(Role.predict)),
                     413, "too_large")
        assert "4,096 bytes" in body["message"]


# -- ingest ----------------------------------------------------------------------------------

def test_ingest_is_idempotent_and_fresh(app_client: TestClient, served: Served) -> None:
    cid = customers(served, 9)[8]
    h_in, h_pr = served.headers(Role.ingest), served.headers(Role.predict)
    before = app_client.post("/predict", json={"customer_id": cid}, headers=h_pr).json()
    when = AS_OF - timedelta(hours=2)
    event = {"event_id": f"fresh-{cid}", "customer_id": cid, "ts": when.isoformat(),
             "event_type": "purchase", "channel": "web", "value": 120.0,
             "properties": {"item": "boots"}}
    r = app_client.post("/events", json={"events": [event]}, headers=h_in)
    assert r.json() == {"received": 1, "inserted": 1, "duplicates": 0,
                        "duplicate_event_ids": [], "conflicting_event_ids": [],
                        "warnings": []}
    again = app_client.post("/events", json={"events": [event, event]}, headers=h_in)
    assert again.json() == {"received": 2, "inserted": 0, "duplicates": 2,
                            "duplicate_event_ids": [event["event_id"]],
                            "conflicting_event_ids": [], "warnings": []}  # the same: no conflict
    after = app_client.post("/predict", json={"customer_id": cid}, headers=h_pr).json()
    assert after["events"] == before["events"] + 1
    assert after["conversion"] != before["conversion"]
    # the next prediction is the one of the stored history plus the new event, inline
    inline = app_client.post("/predict", headers=h_pr, json={
        "customer_id": cid,
        "events": [*history(served, cid), {k: event[k] for k in
                                          ("ts", "event_type", "channel", "value", "properties")}]})
    assert inline.json()["conversion"] == pytest.approx(after["conversion"], abs=1e-12)
    assert inline.json()["next_stage"] == pytest.approx(after["next_stage"], abs=1e-12)


def test_concurrent_ingests_each_get_their_own_answer(app_client: TestClient,
                                                      served: Served) -> None:
    """Requests committed together (group commit) are answered as if one after another: an
    id counts as inserted once, for whichever request the store took first."""
    h_in, h_pr = served.headers(Role.ingest), served.headers(Role.predict)
    ids = [f"gc-{i}" for i in range(42)]

    def send(k: int) -> dict[str, int]:
        events = [{"event_id": e, "customer_id": f"gc-cust-{int(e[3:]) % 5}",
                   "ts": (AS_OF - timedelta(minutes=60 - int(e[3:]))).isoformat(),
                   "event_type": "page_view", "channel": "web"} for e in ids[k:k + 3]]
        r = app_client.post("/events", json={"events": events}, headers=h_in)
        assert r.status_code == 200, r.text
        return dict(r.json())

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(40)))
    assert sum(a["inserted"] for a in answers) == len(ids)
    assert sum(a["duplicates"] for a in answers) == 40 * 3 - len(ids)
    assert all(a["received"] == 3 for a in answers)
    for c in range(5):
        out = app_client.post("/predict", json={"customer_id": f"gc-cust-{c}"}, headers=h_pr)
        assert out.json()["events"] == sum(1 for e in ids if int(e[3:]) % 5 == c)


def test_the_services_switch_interval_holds_while_it_runs(served: Served, tmp_path: Any) -> None:
    before = sys.getswitchinterval()
    settings = served.settings(served.store_copy(tmp_path), switch_interval_ms=0.25)
    with TestClient(create_app(settings, background=False)):
        assert sys.getswitchinterval() == pytest.approx(0.00025)
    assert sys.getswitchinterval() == before


def test_new_customers_become_known(app_client: TestClient, served: Served) -> None:
    h_in, h_pr = served.headers(Role.ingest), served.headers(Role.predict)
    error(app_client.post("/predict", json={"customer_id": "newbie"}, headers=h_pr),
          404, "unknown_customer")
    events = [{"event_id": f"nb-{i}", "customer_id": "newbie", "event_type": t,
               "ts": (AS_OF - timedelta(days=3 - i)).isoformat(), "channel": "search"}
              for i, t in enumerate(["ad_click", "page_view", "product_view"])]
    assert app_client.post("/events", json={"events": events}, headers=h_in).json()[
        "inserted"] == 3
    out = app_client.post("/predict", json={"customer_id": "newbie"}, headers=h_pr)
    assert out.status_code == 200 and out.json()["current_stage"] == "consideration"


def test_ingest_errors_reject_the_whole_request(app_client: TestClient, served: Served) -> None:
    h = served.headers(Role.ingest)
    good = {"event_id": "e-good", "customer_id": "c-err", "event_type": "page_view",
            "ts": "2025-11-01T00:00:00Z"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "ts": "2025-11-01T00:00:00"}, "events[1].ts"),
        ({**good, "ts": 1761955200}, "events[1].ts"),  # epoch seconds: refused, not guessed
        ({**good, "event_type": "teleport"}, "events[1].event_type"),
        ({**good, "value": "lots"}, "events[1].value"),
        ({k: v for k, v in good.items() if k != "event_id"}, "events[1].event_id"),
        ({**good, "customer_id": ""}, "events[1].customer_id"),
        ({**good, "ts": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "events[1].ts"),
    ]
    for bad, field in cases:
        body = {"events": [good, {**bad, "event_id": bad.get("event_id", "x") + "-b"}
                           if "event_id" in bad else bad]}
        got = error(app_client.post("/events", json=body, headers=h), 422, "bad_request", field)
        assert not got["message"].startswith(f"{field}: Value error"), got  # the validator's words
    # nothing of a refused request was stored, so the good event is still new
    assert app_client.post("/events", json={"events": [good]}, headers=h).json()[
        "inserted"] == 1


# -- models, reload, misc --------------------------------------------------------------------

def test_models_and_reload(app_client: TestClient, served: Served) -> None:
    out = ModelsOut.model_validate(app_client.get(
        "/models", headers=served.headers(Role.marketer)).json())
    assert out.models == served.versions and out.alias == "champion"
    assert out.last_load_error is None and out.loaded_at is not None
    assert out.loaded_at_iso is not None and out.loaded_at_iso.endswith("Z")
    assert datetime.fromisoformat(out.loaded_at_iso).timestamp() == pytest.approx(out.loaded_at)
    r = app_client.post("/admin/reload", headers=served.headers(Role.admin))
    assert r.json() == {"changed": False, "models": served.versions, "error": None}


def test_unknown_routes_and_docs(app_client: TestClient) -> None:
    error(app_client.get("/nope"), 404, "not_found")
    error(app_client.get("/predict"), 405, "method_not_allowed")
    schema = app_client.get("/openapi.json").json()
    assert {"/events", "/predict", "/predict/batch", "/recommend", "/healthz", "/readyz",
            "/metrics", "/models", "/admin/reload"} <= set(schema["paths"])
    assert "X-API-Key" in json.dumps(schema["components"]["securitySchemes"])
    assert app_client.get("/docs").status_code == 200


def test_per_request_routes_match_first() -> None:
    from serving.app import HOT_ROUTES

    app = create_app()
    paths = [getattr(r, "path", None) for r in app.router.routes]
    assert paths[: len(HOT_ROUTES)] == list(HOT_ROUTES)
    assert {"/openapi.json", "/docs", "/healthz", "/models"} <= set(paths)
    assert len(paths) == len(set(paths))  # moved, not copied
