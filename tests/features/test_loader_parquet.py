"""Loading Parquet files: column types, time zones, bad rows, broken row groups and fake files."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import SourceError

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import utc

# -- Parquet ---------------------------------------------------------------------------------------


def test_parquet_with_timestamp_and_numeric_columns(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "customer_id": ["c1", "c2", "c3", "c4"],
            "ts": pa.array(
                [
                    datetime(2024, 1, 1, 10),
                    datetime(2024, 1, 2),
                    datetime(2024, 1, 3, 23, 59, 59),
                    datetime(2024, 1, 4),
                ],
                pa.timestamp("ms"),
            ),
            "event_type": ["purchase", "purchase", "page_view", "purchase"],
            "value": pa.array([12.5, 0.0, None, 3.0], pa.float64()),
            "channel": ["Store", None, "app", "app"],
        }
    )
    pq.write_table(table, path)
    got = load(path)
    assert got.column("customer_id") == ["c1", "c2", "c3", "c4"]
    assert got.column("ts") == [
        utc(2024, 1, 1, 10),
        utc(2024, 1, 2),
        utc(2024, 1, 3, 23, 59, 59),
        utc(2024, 1, 4),
    ]
    assert got.column("value") == [12.5, 0.0, None, 3.0]
    assert got.column("channel") == ["store", "unknown", "app", "app"]
    assert got.rejects == []


def test_parquet_integer_value_and_zoned_timestamp(tmp_path: Path, load: LoadFn) -> None:
    new_york = timezone(timedelta(hours=-5))
    path = tmp_path / "events.pq"
    pq.write_table(
        pa.table(
            {
                "customer_id": ["c1", "c2"],
                "ts": pa.array(
                    [
                        datetime(2024, 1, 1, 10, tzinfo=new_york),
                        datetime(2024, 1, 1, 23, tzinfo=new_york),
                    ],
                    pa.timestamp("us", tz="America/New_York"),
                ),
                "event_type": ["purchase", "purchase"],
                "value": pa.array([3, 250], pa.int64()),
            }
        ),
        path,
    )
    got = load(path)
    assert got.column("ts") == [utc(2024, 1, 1, 15), utc(2024, 1, 2, 4)]
    assert got.column("value") == [3.0, 250.0]


def test_parquet_date_column_and_bad_rows_use_row_numbers(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": ["c1", None, "c3", "c4", "c5", "c6"],
                "ts": pa.array(
                    [
                        date(2024, 1, 1),
                        date(2024, 1, 2),
                        None,
                        date(2024, 1, 4),
                        date(2024, 1, 5),
                        date(2024, 1, 6),
                    ],
                    pa.date32(),
                ),
                "event_type": ["purchase"] * 6,
                "value": pa.array([1.0, 1.0, 1.0, float("nan"), -2.5, float("inf")], pa.float64()),
            }
        ),
        path,
        row_group_size=4,
    )
    got = load(path, batch_rows=3)
    assert got.column("customer_id") == ["c1"]
    assert got.column("ts") == [utc(2024, 1, 1)]
    assert sorted(got.reject_tuples()) == [
        (2, "customer_id", "missing customer_id", ""),
        (3, "ts", "missing timestamp", ""),
        (4, "value", "value is not finite", "nan"),
        (5, "value", "negative value", "-2.5"),
        (6, "value", "value is not finite", "inf"),
    ]


def test_parquet_unreadable_row_group_is_rejected_and_reading_goes_on(
    tmp_path: Path, load: LoadFn
) -> None:
    path = tmp_path / "broken.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": [f"c{i}" for i in range(6)],
                "ts": ["2024-01-01"] * 6,
                "event_type": ["page_view"] * 6,
            }
        ),
        path,
        row_group_size=3,
    )
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))
    got = load(path)
    assert got.column("customer_id") == ["c3", "c4", "c5"]
    (reject,) = got.rejects
    assert reject["line"] == "1"
    assert reject["reason"].startswith("unreadable row group: group 0, rows 1-3: ")
    assert got.report.rejected == Counter({"unreadable row group": 1})


def test_parquet_that_is_not_parquet(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("customer_id,ts\n")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        load(path)
