"""Local times at daylight-saving changes, with a zone name: a time the change skipped never
happened and is rejected (DuckDB would move it on by the gap, without a word); a repeated
time is kept, read as the later of its two moments (standard time after the change)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.mapping import ColumnMapping, identity_mapping
from features.normalize_zones import SKIPPED_LOCAL_TIME
from tests.features.loader_cases import utc

if TYPE_CHECKING:
    from tests.conftest import LoadFn

# (text, the stored instant); None: rejected as a skipped local time.
CASES: list[tuple[str, datetime | None]] = [
    ("2024-03-10 02:30:00 America/New_York", None),  # spring forward: 02:00 -> 03:00
    ("2024-03-10T02:00:00 america/new_york", None),  # its first moment; names in any case
    ("2024-03-10 01:59:59 America/New_York", utc(2024, 3, 10, 6, 59, 59)),
    ("2024-03-10 03:00:00 America/New_York", utc(2024, 3, 10, 7)),
    ("2024-03-31 01:30:00 Europe/London", None),
    ("2024-10-06 02:15:00 Australia/Lord_Howe", None),  # a 30-minute change
    ("2011-12-30 12:00:00 Pacific/Apia", None),  # Samoa skipped the whole day
    ("2024-03-10 02:30:00-05:00", utc(2024, 3, 10, 7, 30)),  # an offset says which moment
    ("2024-03-10 02:30:00", utc(2024, 3, 10, 2, 30)),  # no zone: UTC
    ("2024-03-10 02:30:00 UTC", utc(2024, 3, 10, 2, 30)),
    ("2024-03-10 02:30:00Z", utc(2024, 3, 10, 2, 30)),
    # Fall back: 01:00-02:00 happens twice; the later reading (EST, GMT, LHST).
    ("2024-11-03 01:30:00 America/New_York", utc(2024, 11, 3, 6, 30)),
    ("2024-10-27 01:30:00 Europe/London", utc(2024, 10, 27, 1, 30)),
    ("2024-04-07 01:45:00 Australia/Lord_Howe", utc(2024, 4, 6, 15, 15)),
    ("2024-06-01 10:00:00 America/New_York", utc(2024, 6, 1, 14)),
]


def _formats(*formats: str) -> ColumnMapping:
    return replace(identity_mapping(), ts_format=formats)


def _csv(tmp_path: Path, texts: list[str]) -> Path:
    path = tmp_path / "dst.csv"
    path.write_text("customer_id,ts,event_type\n"
                    + "".join(f"c,{text},page_view\n" for text in texts), encoding="utf-8")
    return path


def test_skipped_times_are_rejected_and_repeated_ones_read_late(
        tmp_path: Path, load: LoadFn) -> None:
    got = load(_csv(tmp_path, [text for text, _ in CASES]))
    want_rejected = [(i + 2, "ts", SKIPPED_LOCAL_TIME, text)
                     for i, (text, want) in enumerate(CASES) if want is None]
    assert got.reject_tuples() == want_rejected
    assert got.column("ts") == [want for _, want in CASES if want is not None]
    assert got.report.rejected == {"local time skipped by a daylight-saving change": 5}


def test_a_pattern_ending_in_a_zone_name_is_checked_too(tmp_path: Path, load: LoadFn) -> None:
    path = _csv(tmp_path, ["10/03/2024 02:30 America/New_York",
                           "10/03/2024 03:30 America/New_York",
                           "03/11/2024 01:30 America/New_York"])
    got = load(path, _formats("%d/%m/%Y %H:%M %Z"))
    assert [(line, reason) for line, _, reason, _ in got.reject_tuples()] == [
        (2, SKIPPED_LOCAL_TIME)]
    assert got.column("ts") == [utc(2024, 3, 10, 7, 30), utc(2024, 11, 3, 6, 30)]


@pytest.mark.parametrize("fmt", ["epoch_s", "%Y-%m-%d %H:%M:%S"])
def test_formats_without_zone_names_are_not_checked(fmt: str, tmp_path: Path,
                                                    load: LoadFn) -> None:
    text = "1710037800" if fmt == "epoch_s" else "2024-03-10 02:30:00"
    got = load(_csv(tmp_path, [text]), _formats(fmt))
    assert got.column("ts") == [utc(2024, 3, 10, 2, 30)]
