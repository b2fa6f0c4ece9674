"""A write the event store cannot make (a full disk, an invalidated connection) answers a 503
saying so and what to do, never a path; an invalidated store refuses every later write and
/readyz reports it (a supervisor restarts the service), while predictions go on."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from features.store import AppendResult
from serving.errors import StoreFailedError
from serving.keys import Role
from serving.store_guard import StoreGuard
from tests.serving.conftest import Served, state_of
from tests.serving.test_app import customers, error

FULL = ('IO Error: Could not write file "/home/alice/journey/events.duckdb.wal": No space '
        'left on device')
FATAL = ("FATAL Error: Failed: database has been invalidated because of a previous fatal "
         'error. Original error: "Transaction COMMIT succeeded and is durable, but the '
         'autocheckpoint failed: Could not write file "/home/alice/journey/events.duckdb": '
         'No space left on device"')


class _Store:
    def __init__(self, *raises: Exception) -> None:
        self.raises = list(raises)
        self.calls = 0

    def append(self, table: pa.Table, returning: bool = False) -> Any:
        self.calls += 1
        if self.raises:
            raise self.raises.pop(0)
        return "appended"


def test_a_full_disk_refuses_that_request_only() -> None:
    guard, store = StoreGuard(), _Store(duckdb.IOException(FULL))
    with pytest.raises(StoreFailedError) as err:
        guard.append(store, pa.table({}))  # type: ignore[arg-type]
    said = str(err.value)
    assert "the disk is full" in said and "none of this request's events were stored" in said
    assert "/home/alice" not in said and "events.duckdb" not in said
    assert guard.failure is None
    assert guard.append(store, pa.table({})) == "appended"  # type: ignore[arg-type,comparison-overlap]


def test_an_invalidated_store_refuses_every_later_write() -> None:
    guard, store = StoreGuard(), _Store(duckdb.FatalException(FATAL))
    with pytest.raises(StoreFailedError, match="until the service restarts"):
        guard.append(store, pa.table({}))  # type: ignore[arg-type]
    assert guard.failure is not None and "the disk is full" in guard.failure
    assert "/home/alice" not in guard.failure
    with pytest.raises(StoreFailedError, match="until the service restarts"):
        guard.append(store, pa.table({}))  # type: ignore[arg-type]
    assert store.calls == 1  # not tried again: the connection is gone


def test_the_service_answers_503_and_readyz_tells(app_client: TestClient, served: Served,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    state = state_of(app_client)
    assert state.store is not None
    monkeypatch.setattr(state, "store_guard", StoreGuard())
    raises = [duckdb.IOException(FULL), duckdb.FatalException(FATAL)]

    def append(table: pa.Table, returning: bool = False) -> AppendResult:
        raise raises.pop(0)

    monkeypatch.setattr(state.store, "append", append)
    who = customers(served, 1)[0]
    h = served.headers(Role.admin)
    event = {"event_id": "guard-1", "customer_id": who, "event_type": "page_view",
             "channel": "web", "ts": "2025-11-14T12:00:00Z"}
    full = app_client.post("/events", json={"events": [event]}, headers=h)
    assert "the disk is full" in error(full, 503, "store_unavailable")["message"]
    assert app_client.get("/readyz").status_code == 200  # that request only
    fatal = app_client.post("/events", json={"events": [event]}, headers=h)
    assert "until the service restarts" in error(fatal, 503, "store_unavailable")["message"]
    ready = app_client.get("/readyz")
    assert ready.status_code == 503 and "can no longer write" in ready.json()["message"]
    again = app_client.post("/events", json={"events": [event]}, headers=h)
    assert error(again, 503, "store_unavailable")
    assert app_client.post("/predict", json={"customer_id": who}, headers=h).status_code == 200
