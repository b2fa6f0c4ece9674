"""JSON lines: ids must be text or whole numbers, spelled as a CSV file would spell them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from features.mapping import load_preset

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import jsonl_text

TS = "2024-01-01T10:00:00Z"


def _row(line: int, customer: object, **more: object) -> dict[str, object]:
    return {"event_id": f"e{line}", "customer_id": customer, "ts": TS,
            "event_type": "page_view", **more}


def test_ids_without_a_text_spelling_are_rejected(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(jsonl_text([
        _row(1, "c1"),
        _row(2, {"a": 1}),
        _row(3, [1, 2]),
        _row(4, True),
        _row(5, 1.5),
        _row(6, 1e300),
        _row(7, 7),
        {**_row(8, "c8"), "event_id": {"id": 8}},
        _row(9, "c9", properties={"nested": [1, 2]}),  # an object is fine as properties
    ]), encoding="utf-8")
    got = load(path)
    assert got.column("event_id") == ["e1", "e7", "e9"]
    assert got.reject_tuples() == [
        (2, "customer_id", "customer_id is a JSON object, not text or a whole number",
         '{"a": 1}'),
        (3, "customer_id", "customer_id is a JSON list, not text or a whole number", "[1, 2]"),
        (4, "customer_id", "customer_id is true or false, not text or a whole number", "true"),
        (5, "customer_id", "customer_id is a number with a fraction, not text or a whole number",
         "1.5"),
        (6, "customer_id",
         "customer_id is a number too large to be exact, not text or a whole number", "1e+300"),
        (8, "event_id", "event_id is a JSON object, not text or a whole number", '{"id": 8}'),
    ]


def test_an_integral_float_id_is_spelled_as_an_integer(tmp_path: Path, load: LoadFn) -> None:
    """1.0 matches the same customer's "1" from a CSV file."""
    path = tmp_path / "e.jsonl"
    path.write_text(jsonl_text([_row(1, 1.0), _row(2, -0.0), _row(3, 12345678901234567890)]),
                    encoding="utf-8")
    assert load(path).column("customer_id") == ["1", "0", "12345678901234567890"]


def test_only_the_column_that_gives_the_id_counts(tmp_path: Path, load: LoadFn) -> None:
    """Segment: userId, else anonymousId. An object in the column not used is no matter."""
    path = tmp_path / "s.jsonl"
    base = {"timestamp": TS, "event": "Product Viewed"}
    path.write_text(jsonl_text([
        {"messageId": "s1", "userId": "u1", "anonymousId": {"x": 1}, **base},
        {"messageId": "s2", "userId": "", "anonymousId": {"x": 1}, **base},
        {"messageId": "s3", "userId": None, "anonymousId": "a3", **base},
    ]), encoding="utf-8")
    got = load(path, load_preset("segment"))
    assert got.column("customer_id") == ["u1", "a3"]
    assert [(line, field) for line, field, *_ in got.reject_tuples()] == [(2, "customer_id")]
