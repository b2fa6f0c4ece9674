"""Loading good rows in every format; timestamps; event types, channels and properties."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import SourceError
from features.mapping import load_preset, mapping_from_dict
from features.taxonomy import Taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import (
    GOOD_ROWS,
    assert_good_rows,
    csv_text,
    good_jsonl_rows,
    jsonl_text,
    utc,
)


# -- good rows in every format ---------------------------------------------------------------------
def test_csv_good_rows(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.csv"
    path.write_text(csv_text(GOOD_ROWS), encoding="utf-8")
    got = load(path)
    assert_good_rows(got.rows)
    assert got.report.files == [str(path)]
    assert got.report.rows_read == 3 and got.report.valid == 3
    assert got.report.rejected_total == 0
    assert got.rejects == []
    assert not got.report.rejects_path.exists()  # type: ignore[union-attr]  # no rejects, no file
    assert got.table.schema.field("ts").type == pa.timestamp("us", tz="UTC")


def test_csv_gz_matches_csv(tmp_path: Path, load: LoadFn) -> None:
    plain = tmp_path / "events.csv"
    plain.write_text(csv_text(GOOD_ROWS), encoding="utf-8")
    packed = tmp_path / "events.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    got = load(packed)
    assert_good_rows(got.rows)
    assert got.table.equals(load(plain).table)  # derived ids are content-based: equal too


def test_tsv_good_rows(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.tsv"
    path.write_text(csv_text(GOOD_ROWS, delimiter="\t"), encoding="utf-8")
    assert_good_rows(load(path).rows)


def test_csv_with_bom_and_crlf(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.CSV"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(GOOD_ROWS).replace("\n", "\r\n").encode())
    assert_good_rows(load(path).rows)


def test_jsonl_good_rows_with_nested_objects(tmp_path: Path, load: LoadFn) -> None:
    rows = good_jsonl_rows()
    rows[0]["properties"] = {"page": "/home"}
    rows[1]["properties"] = {"items": [{"sku": "A", "qty": 2}], "coupon": {"code": "X"}}
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl_text(rows), encoding="utf-8")
    got = load(path).rows
    assert got[0]["properties"] == '{"page": "/home"}'
    assert json.loads(str(got[1]["properties"])) == {
        "coupon": {"code": "X"},
        "items": [{"sku": "A", "qty": 2}],
    }
    got[1]["properties"] = None
    assert_good_rows(got)


def test_jsonl_gz_good_rows(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl_text(good_jsonl_rows()).encode()))
    assert_good_rows(load(path).rows)


def test_jsonl_nested_columns_are_flattened_for_the_mapping(tmp_path: Path, load: LoadFn) -> None:
    record = {
        "userId": "u1",
        "messageId": "m-1",
        "timestamp": "2024-02-01T12:00:00.250Z",
        "event": "Order Completed",
        "context": {"campaign": {"source": "Newsletter", "medium": "email"}},
        "properties": {"revenue": 49.9, "products": [{"sku": "A"}]},
    }
    other = {
        "userId": "u2",
        "messageId": "m-2",
        "timestamp": "2024-02-01T13:00:00Z",
        "event": "Product Added",
        "properties": {"revenue": None},
    }
    path = tmp_path / "segment.ndjson"
    path.write_text(jsonl_text([record, other]), encoding="utf-8")
    got = load(path, load_preset("segment")).rows
    assert [r["event_id"] for r in got] == ["m-1", "m-2"]
    assert got[0]["customer_id"] == "u1"
    assert got[0]["ts"] == utc(2024, 2, 1, 12, 0, 0, 250_000)
    assert got[0]["event_type"] == "purchase"
    assert got[0]["channel"] == "newsletter"  # context.campaign.source -> context_campaign_source
    assert got[0]["value"] == pytest.approx(49.9)  # properties.revenue -> properties_revenue
    assert got[1]["event_type"] == "add_to_cart"
    assert got[1]["channel"] == "unknown"
    assert got[1]["value"] is None


def test_jsonl_scalars_become_text(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(
        jsonl_text(
            [
                {
                    "customer_id": 12345,
                    "ts": "2024-01-01",
                    "event_type": "purchase",
                    "value": 7,
                    "action": True,
                },
            ]
        ),
        encoding="utf-8",
    )
    (row,) = load(path).rows
    assert row["customer_id"] == "12345"
    assert row["value"] == 7.0
    assert row["action"] == "true"


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


# -- event types, channels, properties -------------------------------------------------------------
def test_event_type_renaming_and_normalisation(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type\n"
        "c,2024-01-01,Bought\n"
        "c,2024-01-01,Add To Cart\n"
        "c,2024-01-01,product-view\n"
        "c,2024-01-01,  Page   View  \n"
        "c,2024-01-01,PURCHASE\n"
        "c,2024-01-01,Sneezed\n"
        "c,2024-01-01,bought\n",
        encoding="utf-8",
    )
    mapping = mapping_from_dict(
        {
            "columns": {f: f for f in ("customer_id", "ts", "event_type")},
            "event_types": {"Bought": "purchase", "Sneezed": "teleport"},
        },
        "m",
    )
    got = load(path, mapping)
    assert got.column("event_type") == [
        "purchase",
        "add_to_cart",
        "product_view",
        "page_view",
        "purchase",
    ]
    # A renamed type must still be in the taxonomy, and renaming matches the raw value exactly
    # (case included); the reject shows the raw value.
    assert got.reject_tuples() == [
        (7, "event_type", "event_type unknown to the taxonomy", "Sneezed"),
        (8, "event_type", "event_type unknown to the taxonomy", "bought"),
    ]


def test_unknown_event_type_kept_under_keep_policy(
    tmp_path: Path, load: LoadFn, taxonomy: Taxonomy
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type\nc,2024-01-01,Pop-up Email Viewed\nc,2024-01-01,page_view\n",
        encoding="utf-8",
    )
    rejected = load(path)
    assert rejected.column("event_type") == ["page_view"]
    assert rejected.reject_tuples() == [
        (2, "event_type", "event_type unknown to the taxonomy", "Pop-up Email Viewed")
    ]
    kept = load(path, tax=taxonomy.with_policy("keep"))
    assert kept.column("event_type") == ["pop_up_email_viewed", "page_view"]
    assert kept.rejects == []
    assert taxonomy.with_policy("keep").stage_of("pop_up_email_viewed") is None


def test_channel_default_constant_and_lowercasing(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type,channel\nc,2024-01-01,page_view,\n"
        "c,2024-01-01,page_view,Paid Social\n",
        encoding="utf-8",
    )
    assert load(path).column("channel") == ["unknown", "paid social"]
    cols = {f: f for f in ("customer_id", "ts", "event_type", "channel")}
    with_default = mapping_from_dict({"columns": cols, "defaults": {"channel": "Web"}}, "m")
    assert load(path, with_default).column("channel") == ["web", "paid social"]
    constant = mapping_from_dict(
        {
            "columns": {f: f for f in ("customer_id", "ts", "event_type")},
            "constants": {"channel": "store"},
        },
        "m",
    )
    assert load(path, constant).column("channel") == ["store", "store"]


def test_properties_packing_of_extra_columns(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,date,number_of_cds,dollar_value,ignored\n"
        "00001,19970101,1,11.77,x\n"
        "00002,19970112,,12.00,y\n",
        encoding="utf-8",
    )
    got = load(path, load_preset("purchases"))
    assert got.column("customer_id") == ["00001", "00002"]  # leading zeros kept
    assert got.column("ts") == [utc(1997, 1, 1), utc(1997, 1, 12)]
    assert got.column("value") == [11.77, 12.0]
    props = [json.loads(str(p)) for p in got.column("properties")]
    assert props == [{"number_of_cds": "1"}, {"number_of_cds": None}]


def test_extra_columns_merge_into_a_properties_object(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type,props,sku\n"
        'c1,2024-01-01,purchase,"{""a"": 1, ""sku"": ""old""}",X\n'
        "c2,2024-01-01,purchase,,Y\n"
        'c3,2024-01-01,purchase,"[1, 2]",Z\n'
        "c4,2024-01-01,purchase,garbage,W\n"
        "c5,2024-01-01,purchase,42,V\n",
        encoding="utf-8",
    )
    mapping = mapping_from_dict(
        {
            "columns": {
                "customer_id": "customer_id",
                "ts": "ts",
                "event_type": "event_type",
                "properties": "props",
            },
            "properties": ["sku"],
        },
        "m",
    )
    got = load(path, mapping)
    assert got.column("customer_id") == ["c1", "c2"]
    props = [json.loads(str(p)) for p in got.column("properties")]
    assert props == [{"a": 1, "sku": "X"}, {"sku": "Y"}]
    # A base that is not a JSON object is rejected, not silently replaced by the extras.
    assert sorted(got.reject_tuples()) == [
        (4, "properties", "properties is not a JSON object", "[1, 2]"),
        (5, "properties", "properties is not a JSON object", "garbage"),
        (6, "properties", "properties is not a JSON object", "42"),
    ]
