"""POST /v1/events stores an action as the file loader does: trimmed, blank as none. Stored as
sent, "" counted as a marketing action in batch and Spark features and as none online, and
" discount_email " as an unknown action where a file gave discount_email. And an event a file
loaded, re-sent with its properties in compact JSON, is a re-send, not a conflict."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from features.mapping import identity_mapping
from features.store import EventStore
from features.taxonomy import load_taxonomy
from serving.app import create_app
from serving.keys import Role
from tests.serving.conftest import Served
from tests.serving.test_event_contract import event


def test_actions_are_stored_as_the_loader_stores_them(served: Served, tmp_path: Any) -> None:
    copy = served.store_copy(tmp_path)
    sent = {"ct-act-0": "", "ct-act-1": " \t", "ct-act-2": " discount_email\n",
            "ct-act-3": "loyalty_offer", "ct-act-4": None}
    with TestClient(create_app(served.settings(copy), background=False)) as client:
        r = client.post("/events", headers=served.headers(Role.ingest), json={"events": [
            event(i, event_id=eid, event_type="action_sent", action=action)
            for i, (eid, action) in enumerate(sent.items())]})
        assert r.status_code == 200, r.text
        assert r.json()["inserted"] == 5
        predicted = client.post("/predict", headers=served.headers(Role.predict), json={
            "customer_id": "ct-inline", "events": [
                {"ts": "2024-01-01T00:00:00Z", "event_type": "page_view", "action": "  "}]})
        assert predicted.status_code == 200, predicted.text
    with EventStore(copy, read_only=True) as store:
        rows = dict(store.con.execute("SELECT event_id, action FROM events "
                                      "WHERE event_id LIKE 'ct-act-%'").fetchall())
    assert rows == {"ct-act-0": None, "ct-act-1": None, "ct-act-2": "discount_email",
                    "ct-act-3": "loyalty_offer", "ct-act-4": None}


def test_a_file_loaded_event_re_sent_is_a_duplicate(served: Served, tmp_path: Any) -> None:
    """The file held {"csat": "2"} (with a space) and no action; the service stores compact
    JSON, and a sender may write the action as "": a re-send, not a changed event."""
    copy = served.store_copy(tmp_path)
    source = tmp_path / "tickets.csv"
    source.write_text("event_id,customer_id,ts,event_type,channel,properties\n"
                      'ct-file-1,ct-file,2025-11-01T10:00:00Z,support_ticket,email,'
                      '"{""csat"": ""2""}"\n', encoding="utf-8")
    with EventStore(copy) as store:
        store.ingest(source, identity_mapping(), load_taxonomy())
    with TestClient(create_app(served.settings(copy), background=False)) as client:
        r = client.post("/events", headers=served.headers(Role.ingest), json={"events": [
            {"event_id": "ct-file-1", "customer_id": "ct-file", "ts": "2025-11-01T10:00:00Z",
             "event_type": "support_ticket", "channel": "email", "action": "",
             "properties": {"csat": "2"}}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duplicate_event_ids"] == ["ct-file-1"]
    assert body["conflicting_event_ids"] == [] and body["warnings"] == []
