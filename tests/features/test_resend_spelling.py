"""A re-sent event is a re-send, not a conflict, when only its spelling differs from the stored
copy: properties written with other spacing (a file's {"csat": "2"}, the service's compact
{"csat":"2"}), or an action "" where the store holds none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from features.mapping import identity_mapping
from features.schema import events_table
from features.store import EventStore
from features.store_conflicts import differing_ids
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties\n"
ROW = 'e1,c1,2024-01-05T10:00:00Z,support_ticket,web,,,"{""csat"": ""2"", ""n"": 1e2}"\n'


def stored_event(**fields: object) -> dict[str, object]:
    return {"event_id": "e1", "customer_id": "c1", "ts": datetime(2024, 1, 5, 10, tzinfo=UTC),
            "event_type": "support_ticket", "channel": "web", "value": None, "action": None,
            "properties": '{"csat":"2","n":100.0}', **fields}


@pytest.fixture
def store(tmp_path: Path, taxonomy: Taxonomy) -> EventStore:
    (tmp_path / "in.csv").write_text(HEADER + ROW, encoding="utf-8")
    es = EventStore(tmp_path / "s.duckdb")
    es.ingest(tmp_path / "in.csv", identity_mapping(), taxonomy)
    return es


@pytest.mark.parametrize("fields", [{}, {"action": ""}, {"action": " \t"},
                                    {"properties": '{"csat": "2", "n": 100.0}'}])
def test_a_respelled_resend_is_no_conflict(store: EventStore, fields: dict[str, object]) -> None:
    with store:
        batch = events_table([stored_event(**fields)])
        assert differing_ids(store.con, batch) == []
        result = store.append(batch)
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 1, 0)


@pytest.mark.parametrize(("fields", "named"), [
    ({"properties": '{"csat":"3","n":100.0}'}, "properties"),
    ({"properties": '{"n":100.0,"csat":"2"}'}, "properties"),  # key order is content here
    ({"properties": "not json"}, "properties"),
    ({"properties": None}, "properties"),
    ({"action": "discount_email"}, "action"),
    ({"action": "x", "channel": "app"}, "channel, action")])
def test_a_changed_event_still_conflicts(store: EventStore, fields: dict[str, object],
                                         named: str) -> None:
    with store:
        batch = events_table([stored_event(**fields)])
        assert differing_ids(store.con, batch) == [("e1", named)]
        assert store.append(batch).conflicts == 1


def test_a_reloaded_file_with_other_spacing_is_a_resend(store: EventStore, tmp_path: Path,
                                                        taxonomy: Taxonomy) -> None:
    again = tmp_path / "again.csv"
    again.write_text(HEADER + ROW.replace('"", ""n""', '"",""n""'), encoding="utf-8")
    with store:
        report = store.ingest(again, identity_mapping(), taxonomy)
    assert (report.append.inserted, report.append.conflicts) == (0, 0)
