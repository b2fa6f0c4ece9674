"""A key given twice in one JSON object of a request body is refused (422, naming the key and
where): every parser the service uses kept the last one silently, so /events stored, and
/predict scored, what the sender may not have meant."""

from __future__ import annotations

import json

import orjson
import pytest
from fastapi.testclient import TestClient

from features.store import EventStore
from serving.json_keys import SMALL_BODY, may_be_refused, repeated_key
from serving.keys import Role
from tests.serving.conftest import Served, state_of
from tests.serving.test_app import error
from tests.serving.test_event_contract import event

REPEATS = [
    (b'{"customer_id": "C1", "customer_id": "X"}', "customer_id"),
    (b'{"events": [{"a": 1}, {"a": 1, "b": 2, "a": 3}]}', "events[1].a"),
    (b'{"e": [{"p": {"x": 1, "x": 2}}], "e": []}', "e[0].p.x"),  # the inner one comes first
    (b'{"customer_id": "C1", "customer\\u005fid": "X"}', "customer_id"),  # escaped, same key
    (b'{"a" :1,\n "a"\t: 2}', "a"),
]
ONCE = [b'{"customer_id": "C1"}', b'{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}',
        b'{"a": "x\\":", "b": "\\" :"}', b"[1, 2]", b"not json", b'{"a": 1, "A": 2}']


@pytest.mark.parametrize(("body", "where"), REPEATS)
def test_the_first_repeat_is_named_with_its_path(body: bytes, where: str) -> None:
    assert repeated_key(body) == where
    assert may_be_refused(body, orjson.loads(body))


@pytest.mark.parametrize("body", ONCE)
def test_keys_given_once_are_not_repeats(body: bytes) -> None:
    assert repeated_key(body) is None


@pytest.mark.parametrize("body", [b for b in ONCE if b != b"not json"])
def test_the_bound_clears_bodies_without_repeats(body: bytes) -> None:
    """Except when a string holds a key's ending (`\\":`): then the exact check decides."""
    cleared = not may_be_refused(body, orjson.loads(body))
    assert cleared == (b'\\"' not in body)


def test_a_large_body_is_checked_exactly() -> None:
    pad = "x" * SMALL_BODY
    body = f'{{"pad": "{pad}", "e": [{{"k": 1, "k": 2}}]}}'.encode()
    assert may_be_refused(body, orjson.loads(body))
    assert not may_be_refused(body.replace(b'"k": 2', b'"j": 2'), orjson.loads(body))


def test_events_refuses_a_repeated_key_naming_it(app_client: TestClient, served: Served) -> None:
    h = {**served.headers(Role.ingest), "Content-Type": "application/json"}
    first = json.dumps(event(60))
    repeated = first[:-1] + ', "customer_id": "someone-else"}'
    body = f'{{"events": [{json.dumps(event(61))}, {repeated}]}}'.encode()
    got = error(app_client.post("/events", content=body, headers=h), 422, "bad_request",
                "events[1].customer_id")
    assert got["message"].startswith("events[1].customer_id: given twice")
    assert got["errors"] == [{"field": "events[1].customer_id", "message": "given twice"}]
    store = state_of(app_client).store
    assert store is not None  # nothing of the batch was stored
    assert store.con.execute("SELECT count(*) FROM events WHERE event_id IN "
                             "('ct-60', 'ct-61')").fetchone() == (0,)


@pytest.mark.parametrize("fast", [True, False])
def test_predict_refuses_a_repeated_key_on_both_paths(app_client: TestClient, served: Served,
                                                      fast: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The last customer_id is a stored customer: kept silently, it was answered 200."""
    with EventStore(served.world.store, read_only=True) as es:
        row = es.con.execute("SELECT min(customer_id) FROM customers").fetchone()
    assert row is not None
    cid = row[0]
    h = {**served.headers(Role.predict), "Content-Type": "application/json"}
    monkeypatch.setattr(state_of(app_client).settings, "fast_predict", fast)
    body = f'{{"customer_id": "no-such", "customer_id": "{cid}"}}'.encode()
    got = error(app_client.post("/predict", content=body, headers=h), 422, "bad_request",
                "customer_id")
    assert got["message"].startswith("customer_id: given twice")
    once = app_client.post("/predict", content=f'{{"customer_id": "{cid}"}}'.encode(), headers=h)
    assert once.status_code == 200
