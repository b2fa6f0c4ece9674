"""Loading timestamps: ISO text, the 1970-2100 range, epoch numbers and the mapping's formats."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.mapping import load_preset, mapping_from_dict

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import jsonl_text, utc


# -- timestamps ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-06T07:08:09Z", utc(2024, 5, 6, 7, 8, 9)),
        ("2024-05-06T07:08:09.123456Z", utc(2024, 5, 6, 7, 8, 9, 123456)),
        ("2024-05-06T07:08:09+02:00", utc(2024, 5, 6, 5, 8, 9)),
        ("2024-05-06T07:08:09-05:30", utc(2024, 5, 6, 12, 38, 9)),
        ("2024-05-06 23:30:00+0100", utc(2024, 5, 6, 22, 30)),
        ("2024-05-06 07:08:09", utc(2024, 5, 6, 7, 8, 9)),  # naive -> UTC
        ("2024-05-06", utc(2024, 5, 6)),
        ("1970-01-01T00:00:00Z", utc(1970, 1, 1)),  # the lower bound is allowed
        ("2099-12-31T23:59:59Z", utc(2099, 12, 31, 23, 59, 59)),
    ],
)
def test_iso_timestamps(tmp_path: Path, load: LoadFn, raw: str, expected: datetime) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"customer_id,ts,event_type\nc1,{raw},page_view\n", encoding="utf-8")
    assert load(path).column("ts") == [expected]


@pytest.mark.parametrize(
    "raw", ["1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "0001-01-01", "2150-07-01T00:00:00Z"]
)
def test_timestamps_out_of_range(tmp_path: Path, load: LoadFn, raw: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"customer_id,ts,event_type\nc1,{raw},page_view\n", encoding="utf-8")
    got = load(path)
    assert got.reject_tuples() == [(2, "ts", "timestamp outside 1970-2100", raw)]


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("epoch_ms", "1700000000123", utc(2023, 11, 14, 22, 13, 20, 123000)),
        ("epoch_s", "1700000000", utc(2023, 11, 14, 22, 13, 20)),
        ("epoch_s", "1700000000.5", utc(2023, 11, 14, 22, 13, 20, 500000)),
        ("epoch_us", "1700000000000001", utc(2023, 11, 14, 22, 13, 20, 1)),
        ("%Y%m%d", "20240131", utc(2024, 1, 31)),
        ("%d/%m/%Y %H:%M", "31/01/2024 18:45", utc(2024, 1, 31, 18, 45)),
    ],
)
def test_ts_format_from_mapping(
    tmp_path: Path, load: LoadFn, fmt: str, raw: str, expected: datetime
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"visitorid,timestamp,event\nv1,{raw},page_view\nv2,garbage,page_view\n")
    mapping = mapping_from_dict(
        {
            "columns": {"customer_id": "visitorid", "ts": "timestamp", "event_type": "event"},
            "ts_format": fmt,
        },
        "m",
    )
    got = load(path, mapping)
    assert got.column("ts") == [expected]
    assert got.column("customer_id") == ["v1"]
    assert got.reject_tuples() == [(3, "ts", "unparseable timestamp", "garbage")]


def test_epoch_ms_in_json_numbers(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(jsonl_text([{"visitorid": 7, "timestamp": 1433221332117, "event": "view"}]))
    mapping = mapping_from_dict(
        {
            "columns": {"customer_id": "visitorid", "ts": "timestamp", "event_type": "event"},
            "ts_format": "epoch_ms",
            "event_types": {"view": "product_view"},
        },
        "retailrocket",
    )
    (row,) = load(path, mapping).rows
    assert row["ts"] == utc(2015, 6, 2, 5, 2, 12, 117000)
    assert row["event_type"] == "product_view"
    assert row["customer_id"] == "7"


def test_several_ts_formats_are_tried_in_order(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,date,amount\n"
        "a,2024-01-31T05:00:00Z,1\n"
        "b,20240131,2\n"
        "c,2024/01/31,3\n"
        "d,31.01.2024,4\n",
        encoding="utf-8",
    )
    got = load(path, load_preset("purchases"))
    assert got.column("ts") == [utc(2024, 1, 31, 5), utc(2024, 1, 31), utc(2024, 1, 31)]
    assert got.column("event_type") == ["purchase"] * 3  # the preset's constant
    assert got.reject_tuples() == [(5, "ts", "unparseable timestamp", "31.01.2024")]


@pytest.mark.parametrize("kind", ["timestamp", "date"])
def test_typed_parquet_timestamps_missing_and_out_of_range(
        tmp_path: Path, load: LoadFn, kind: str) -> None:
    days = [date(2025, 3, 1), None, date(1960, 5, 4), date(2150, 1, 2), date(1970, 1, 1)]
    ts = (pa.array(days, pa.date32()) if kind == "date" else pa.array(
        [None if d is None else datetime(d.year, d.month, d.day, 13, 5, 7) for d in days],
        pa.timestamp("us", tz="UTC")))
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"customer_id": ["c1", "c2", "c3", "c4", "c5"], "ts": ts,
                             "event_type": ["page_view"] * 5}), path)
    got = load(path)
    assert got.column("customer_id") == ["c1", "c5"]
    clock = "" if kind == "date" else " 13:05:07+00"
    assert got.reject_tuples() == [
        (2, "ts", "missing timestamp", ""),  # a Parquet row's line is its number, from 1
        (3, "ts", "timestamp outside 1970-2100", f"1960-05-04{clock}"),
        (4, "ts", "timestamp outside 1970-2100", f"2150-01-02{clock}"),
    ]
