"""JSON lines that spell half a UTF-16 pair (``"\\ud800"``): the row is rejected at its line,
naming the field, and the load goes on (it used to stop with a UnicodeEncodeError)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.read_base import ReadLimits
from features.readers import read_batches

if TYPE_CHECKING:
    from tests.conftest import LoadFn

TS = '"ts":"2025-12-20T00:00:00Z","event_type":"page_view"'
LINES = [
    '{"event_id":"ok1","customer_id":"A",' + TS + "}",
    '{"event_id":"sur","customer_id":"A\\ud800B",' + TS + "}",
    '{"event_id":"ok2","customer_id":"B",' + TS + ',"properties":{"emoji":"\\ud83d\\ude00"}}',
    '{"event_id":"nested","customer_id":"C",' + TS + ',"properties":{"note":"x\\udfffy"}}',
    '{"event_id":"key","customer_id":"D",' + TS + ',"bad\\udc00key":1}',
    '{"event_id":"ok3","customer_id":"E",' + TS + "}",
]


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="ascii")
    return path


def test_lone_surrogates_are_rejected_by_line_and_field(tmp_path: Path, load: LoadFn) -> None:
    got = load(_write(tmp_path))
    # A valid pair (an emoji written as two escapes) is a character: that row loads, and so
    # does one with a bad key the mapping does not read.
    assert got.column("event_id") == ["ok1", "ok2", "key", "ok3"]
    assert got.column("properties")[1] == '{"emoji": "\U0001f600"}'
    assert [(line, field) for line, field, _, _ in got.reject_tuples()] == [
        (2, "customer_id"), (4, "properties")]
    _, _, reason, value = got.reject_tuples()[0]
    assert reason == ("invalid Unicode: customer_id holds a lone surrogate (\\ud800), half "
                      "of a UTF-16 pair, which is no character")
    assert value.strip() == LINES[1]  # the line as written (its escape is ASCII): writable
    assert got.report.rejected == {"invalid Unicode": 2}


@pytest.mark.parametrize("wanted", [None, frozenset({"event_id", "customer_id"})])
def test_the_reader_never_hands_on_a_surrogate(tmp_path: Path,
                                               wanted: frozenset[str] | None) -> None:
    """With or without a mapping's projection: what the reader keeps is valid UTF-8 (a bad
    key is a column name when every key is read), and a surrogate in a column the mapping
    does not read rejects nothing; such a key is listed (for messages) escaped."""
    batches = list(read_batches(_write(tmp_path), limits=ReadLimits(), wanted=wanted))
    kept = sum(b.table.num_rows for b in batches)
    rejected = sorted(r.line for b in batches for r in b.rejects)
    assert rejected == ([2, 4, 5] if wanted is None else [2])
    assert kept + len(rejected) == len(LINES)
    listed = [name for b in batches for name in b.source_columns or []]
    if wanted is not None:
        assert "bad\\udc00key" in listed
    for name in listed:
        name.encode("utf-8")
