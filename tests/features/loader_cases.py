"""Fixtures and builders shared by the loader tests (formats, rejects, sources)."""


from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from features.normalize import DERIVED_ID
from features.schema import EVENT_FIELDS

if TYPE_CHECKING:
    pass

CANONICAL_HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties"
GOOD_ROWS = [
    {"event_id": "e1", "customer_id": "c1", "ts": "2024-03-01T10:00:00Z", "event_type": "page_view",
     "channel": "Email", "value": "", "action": "", "properties": '{"page": "/home"}'},
    {"event_id": "e2", "customer_id": "c1", "ts": "2024-03-01T12:30:00+02:00",
     "event_type": "purchase", "channel": "", "value": "19.99", "action": "discount_10",
     "properties": ""},
    {"event_id": "", "customer_id": "c2", "ts": "2024-03-02 08:15:00", "event_type": "Add To Cart",
     "channel": "search", "value": "0", "action": "", "properties": ""},
]


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def csv_text(rows: list[dict[str, str]], delimiter: str = ",") -> str:
    header = delimiter.join(EVENT_FIELDS)
    lines = [delimiter.join(json_quote(r[f], delimiter) for f in EVENT_FIELDS) for r in rows]
    return "\n".join([header, *lines]) + "\n"


def json_quote(value: str, delimiter: str) -> str:
    if any(ch in value for ch in (delimiter, '"', "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


def jsonl_text(rows: Sequence[Mapping[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def good_jsonl_rows() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for row in GOOD_ROWS:
        rec: dict[str, object] = {k: v for k, v in row.items() if v != ""}
        if "properties" in rec:
            rec["properties"] = json.loads(str(rec["properties"]))
        out.append(rec)
    return out


def assert_good_rows(loaded_rows: list[dict[str, Any]]) -> None:
    """The three GOOD_ROWS, canonicalised."""
    assert len(loaded_rows) == 3
    first, second, third = loaded_rows
    assert first["event_id"] == "e1"
    assert first["customer_id"] == "c1"
    assert first["ts"] == utc(2024, 3, 1, 10)
    assert first["event_type"] == "page_view"
    assert first["channel"] == "email"  # labels are lower-cased
    assert first["value"] is None
    assert first["action"] is None
    assert json.loads(str(first["properties"])) == {"page": "/home"}
    assert first[DERIVED_ID] is False

    assert second["event_id"] == "e2"
    assert second["ts"] == utc(2024, 3, 1, 10, 30)  # +02:00 converted to UTC
    assert second["channel"] == "unknown"  # the default channel
    assert second["value"] == pytest.approx(19.99)
    assert second["action"] == "discount_10"
    assert second["properties"] is None

    assert str(third["event_id"]).startswith("d-")  # derived from the content
    assert third[DERIVED_ID] is True
    assert third["customer_id"] == "c2"
    assert third["ts"] == utc(2024, 3, 2, 8, 15)  # naive: taken as UTC
    assert third["event_type"] == "add_to_cart"  # "Add To Cart" normalised
    assert third["value"] == 0.0
