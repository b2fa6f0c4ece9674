"""ISO timestamps with and without a zone: each row is read on its own, whatever the other rows
of its batch say (DuckDB's text -> TIMESTAMPTZ cast carries a zone name over to later rows)."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from features.errors import MappingError
from features.mapping import identity_mapping
from features.normalize import Normalizer
from features.readers import LINE_COLUMN
from features.taxonomy import Taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import utc

# (text, the instant it means); None: rejected as unparseable.
CASES: list[tuple[str, datetime | None]] = [
    ("2024-01-01 10:00:00", utc(2024, 1, 1, 10)),
    ("2024-01-01 10:00:00 Asia/Tokyo", utc(2024, 1, 1, 1)),
    ("2024-06-01 10:00:00", utc(2024, 6, 1, 10)),
    ("2024-06-01", utc(2024, 6, 1)),
    ("2024-06-01T10:00", utc(2024, 6, 1, 10)),
    ("2024-06-01 10:00:00+00", utc(2024, 6, 1, 10)),
    ("2024-06-01 10:00:00+05:30", utc(2024, 6, 1, 4, 30)),
    ("2024-06-01T10:00:00.5-0700", utc(2024, 6, 1, 17, 0, 0, 500000)),
    ("2024-06-01T10:00:00Z", utc(2024, 6, 1, 10)),
    ("2024-06-01 10:00:00 UTC", utc(2024, 6, 1, 10)),
    ("2024-06-01 10:00:00 America/New_York", utc(2024, 6, 1, 14)),  # summer time
    ("2024-12-01 10:00:00 America/New_York", utc(2024, 12, 1, 15)),
    ("2024-06-01 10:00:00 europe/london", utc(2024, 6, 1, 9)),  # names in any case
    ("2024-06-01 10:00:00 EST", None),  # an abbreviation: ambiguous, refused
    ("2024-06-01 10:00:00 Etc/GMT+2", utc(2024, 6, 1, 12)),
    ("2024-06-01 10:00:00 Nowhere/Zone", None),
    ("2024-06-01 10:00:00+05 Asia/Tokyo", None),  # an offset and a zone
    ("epoch", None),
]


def _normalise(texts: list[str], taxonomy: Taxonomy) -> dict[int, datetime | None]:
    """line -> the stored instant (None: rejected) of one batch of CSV-like text rows."""
    raw = pa.table({"customer_id": ["c"] * len(texts), "ts": texts,
                    "event_type": ["page_view"] * len(texts),
                    LINE_COLUMN: pa.array(range(len(texts)), pa.int64())})
    normalizer = Normalizer(identity_mapping(), taxonomy)
    try:
        valid, rejects = normalizer(raw, "t.csv")
    finally:
        normalizer.close()
    got: dict[int, datetime | None] = dict.fromkeys(rejects["line"].to_pylist())
    kept = [line for line in range(len(texts)) if line not in got]  # valid rows keep their order
    got.update(zip(kept, valid["ts"].to_pylist(), strict=True))
    return got


def test_the_audit_file(tmp_path: Path, load: LoadFn) -> None:
    """/tmp/audit-de/bad/tz2.csv: every zone-less row after the Tokyo one was stored as 01:00."""
    path = tmp_path / "tz2.csv"
    path.write_text("event_id,customer_id,ts,event_type\n"
                    "y1,c1,2024-01-01 10:00:00,page_view\n"
                    "y2,c1,2024-01-01 10:00:00 Asia/Tokyo,page_view\n"
                    "y3,c1,2024-01-01 10:00:00,page_view\n"
                    "y4,c1,2024-06-01 10:00:00,page_view\n"
                    "y5,c1,2024-01-01 10:00:00+00,page_view\n"
                    "y6,c1,2024-01-01 10:00:00,page_view\n", encoding="utf-8")
    got = load(path)
    assert got.column("ts") == [utc(2024, 1, 1, 10), utc(2024, 1, 1, 1), utc(2024, 1, 1, 10),
                                utc(2024, 6, 1, 10), utc(2024, 1, 1, 10), utc(2024, 1, 1, 10)]


@pytest.mark.parametrize("order", ["as listed", "reversed", "zones first", "zones last"])
def test_each_row_is_read_on_its_own(taxonomy: Taxonomy, order: str) -> None:
    cases = list(CASES)
    if order == "reversed":
        cases.reverse()
    elif order != "as listed":
        named = [c for c in cases if c[0][-1].isalpha()]
        rest = [c for c in cases if not c[0][-1].isalpha()]
        cases = named + rest if order == "zones first" else rest + named
    got = _normalise([text for text, _ in cases], taxonomy)
    assert [got[i] for i in range(len(cases))] == [want for _, want in cases]


def test_large_shuffled_batches(taxonomy: Taxonomy) -> None:
    """Across DuckDB's vectors (2048 rows) and threads, in random orders."""
    rng = random.Random(7)
    cases = list(itertools.islice(itertools.cycle(CASES), 12_000))
    rng.shuffle(cases)
    got = _normalise([text for text, _ in cases], taxonomy)
    wrong = [(cases[i][0], got[i]) for i in range(len(cases)) if got[i] != cases[i][1]]
    assert wrong == []


def test_a_query_failing_on_no_rows_stops(taxonomy: Taxonomy) -> None:
    """A query that fails whatever the rows (here a strptime pattern DuckDB refuses, which the
    mapping's check would have caught) is an error, not a RecursionError from halving."""
    broken = replace(identity_mapping(), ts_format=("%Y%m%d", "%Q"), source="m.yaml")
    raw = pa.table({"customer_id": ["c"], "ts": ["20240101"], "event_type": ["page_view"],
                    LINE_COLUMN: pa.array([2], pa.int64())})
    normalizer = Normalizer(broken, taxonomy)
    try:
        with pytest.raises(MappingError, match=r"m.yaml: the validation query fails whatever"):
            normalizer(raw, "t.csv")
    finally:
        normalizer.close()
