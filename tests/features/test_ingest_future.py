"""A load whose events run past now says how many and the latest (the API refuses them; a file
is loaded as it is); a load of past events says nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from features.ingest_channels import future_note, last_rowid
from features.schema import events_table
from features.store import EventStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _event(i: int, ts: str) -> dict[str, object]:
    return {"event_id": f"e{i}", "customer_id": f"c{i % 3}", "ts": datetime.fromisoformat(ts),
            "event_type": "page_view", "channel": "web"}


def test_only_this_loads_future_events_are_counted(tmp_path: Path) -> None:
    with EventStore(tmp_path / "events.duckdb") as es:
        es.append(events_table([_event(0, "2026-03-01T00:00:00+00:00")]))  # an earlier load
        after = last_rowid(es)
        es.append(events_table([_event(1, "2025-12-31T23:00:00+00:00"),
                                _event(2, "2026-01-01T00:00:01+00:00"),
                                _event(3, "2026-06-30T12:00:00+00:00")]))
        assert future_note(es, after, NOW) == [
            "warning: 2 events of this load are after now (the latest 2026-06-30T12:00:00Z): "
            "predictions and features count them once the clock reaches them (or under a "
            "JOURNEY_AS_OF pinned later); is the source's clock or time zone off?"]
        after = last_rowid(es)
        es.append(events_table([_event(4, "2025-06-01T00:00:00+00:00")]))
        assert future_note(es, after, NOW) == []
