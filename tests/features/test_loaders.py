"""load_events: every format, timestamp formats, mappings, and one reject per kind of bad row."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import MappingError, SourceError
from features.loaders import LoadReport, load_events
from features.mapping import identity_mapping, load_preset, mapping_from_dict
from features.normalize import DERIVED_ID
from features.readers import MAX_FIELD_BYTES
from features.schema import EVENT_FIELDS, MAX_ID_CHARS, MAX_LABEL_CHARS, MAX_PROPERTIES_CHARS
from features.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

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
    other = {"userId": "u2", "messageId": "m-2", "timestamp": "2024-02-01T13:00:00Z",
             "event": "Product Added", "properties": {"revenue": None}}
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
    path.write_text(jsonl_text([
        {"customer_id": 12345, "ts": "2024-01-01", "event_type": "purchase", "value": 7,
         "action": True},
    ]), encoding="utf-8")
    (row,) = load(path).rows
    assert row["customer_id"] == "12345"
    assert row["value"] == 7.0
    assert row["action"] == "true"


def test_parquet_with_timestamp_and_numeric_columns(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.parquet"
    table = pa.table({
        "customer_id": ["c1", "c2", "c3", "c4"],
        "ts": pa.array(
            [datetime(2024, 1, 1, 10), datetime(2024, 1, 2), datetime(2024, 1, 3, 23, 59, 59),
             datetime(2024, 1, 4)],
            pa.timestamp("ms"),
        ),
        "event_type": ["purchase", "purchase", "page_view", "purchase"],
        "value": pa.array([12.5, 0.0, None, 3.0], pa.float64()),
        "channel": ["Store", None, "app", "app"],
    })
    pq.write_table(table, path)
    got = load(path)
    assert got.column("customer_id") == ["c1", "c2", "c3", "c4"]
    assert got.column("ts") == [utc(2024, 1, 1, 10), utc(2024, 1, 2), utc(2024, 1, 3, 23, 59, 59),
                                utc(2024, 1, 4)]
    assert got.column("value") == [12.5, 0.0, None, 3.0]
    assert got.column("channel") == ["store", "unknown", "app", "app"]
    assert got.rejects == []


def test_parquet_integer_value_and_zoned_timestamp(tmp_path: Path, load: LoadFn) -> None:
    new_york = timezone(timedelta(hours=-5))
    path = tmp_path / "events.pq"
    pq.write_table(pa.table({
        "customer_id": ["c1", "c2"],
        "ts": pa.array([datetime(2024, 1, 1, 10, tzinfo=new_york), datetime(2024, 1, 1, 23,
                        tzinfo=new_york)], pa.timestamp("us", tz="America/New_York")),
        "event_type": ["purchase", "purchase"],
        "value": pa.array([3, 250], pa.int64()),
    }), path)
    got = load(path)
    assert got.column("ts") == [utc(2024, 1, 1, 15), utc(2024, 1, 2, 4)]
    assert got.column("value") == [3.0, 250.0]


def test_parquet_date_column_and_bad_rows_use_row_numbers(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table({
        "customer_id": ["c1", None, "c3", "c4", "c5", "c6"],
        "ts": pa.array([date(2024, 1, 1), date(2024, 1, 2), None, date(2024, 1, 4),
                        date(2024, 1, 5), date(2024, 1, 6)], pa.date32()),
        "event_type": ["purchase"] * 6,
        "value": pa.array([1.0, 1.0, 1.0, float("nan"), -2.5, float("inf")], pa.float64()),
    }), path, row_group_size=4)
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
    pq.write_table(pa.table({
        "customer_id": [f"c{i}" for i in range(6)],
        "ts": ["2024-01-01"] * 6,
        "event_type": ["page_view"] * 6,
    }), path, row_group_size=3)
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start:start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
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
        {"columns": {"customer_id": "visitorid", "ts": "timestamp", "event_type": "event"},
         "ts_format": fmt},
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
        {"columns": {"customer_id": "visitorid", "ts": "timestamp", "event_type": "event"},
         "ts_format": "epoch_ms", "event_types": {"view": "product_view"}},
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
        {"columns": {f: f for f in ("customer_id", "ts", "event_type")},
         "event_types": {"Bought": "purchase", "Sneezed": "teleport"}},
        "m",
    )
    got = load(path, mapping)
    assert got.column("event_type") == [
        "purchase", "add_to_cart", "product_view", "page_view", "purchase"
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
    path.write_text("customer_id,ts,event_type\nc,2024-01-01,Pop-up Email Viewed\nc,2024-01-01,"
                    "page_view\n", encoding="utf-8")
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
    path.write_text("customer_id,ts,event_type,channel\nc,2024-01-01,page_view,\n"
                    "c,2024-01-01,page_view,Paid Social\n", encoding="utf-8")
    assert load(path).column("channel") == ["unknown", "paid social"]
    cols = {f: f for f in ("customer_id", "ts", "event_type", "channel")}
    with_default = mapping_from_dict({"columns": cols, "defaults": {"channel": "Web"}}, "m")
    assert load(path, with_default).column("channel") == ["web", "paid social"]
    constant = mapping_from_dict(
        {"columns": {f: f for f in ("customer_id", "ts", "event_type")},
         "constants": {"channel": "store"}}, "m")
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
        {"columns": {"customer_id": "customer_id", "ts": "ts", "event_type": "event_type",
                     "properties": "props"}, "properties": ["sku"]},
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


# -- every kind of bad row -------------------------------------------------------------------------
LONG_ID = "x" * (MAX_ID_CHARS + 1)


def test_every_bad_row_reason(tmp_path: Path, load: LoadFn) -> None:
    lines = [
        CANONICAL_HEADER.encode(),                                       # 1
        b"e01,c1,2024-01-01T10:00:00Z,page_view,Email,,,",               # 2 valid
        b"e02,,2024-01-01,page_view,,,,",                                # 3
        b"e03,c1,yesterday,page_view,,,,",                               # 4
        b"e04,c1,,page_view,,,,",                                        # 5
        b"e05,c1,0001-01-01T00:00:00Z,page_view,,,,",                    # 6
        b"e06,c1,2150-06-01,page_view,,,,",                              # 7
        b"e07,c1,2024-01-01,,,,,",                                       # 8
        b"e08,c1,2024-01-01,teleport,,,,",                               # 9
        b"e09,c1,2024-01-01,purchase,,12.5 USD,,",                       # 10
        b"e10,c1,2024-01-01,purchase,,-3,,",                             # 11
        b"e11,c1,2024-01-01,purchase,,nan,,",                            # 12
        b"e12,c1,2024-01-01,purchase,,inf,,",                            # 13
        b'e13,c1,2024-01-01,purchase,,,,"[1,2]"',                       # 14
        b"e14,c1,2024-01-01,purchase,,,,not json",                       # 15
        f"e15,{LONG_ID},2024-01-01,purchase,,,,".encode(),               # 16
        f"{LONG_ID},c1,2024-01-01,purchase,,,,".encode(),                # 17
        b"e17,c1,2024-01-01,purchase",                                   # 18
        b"e18,c1,2024-01-01,purchase,,,,,extra",                         # 19
        b"e19,c\xe91,2024-01-01,purchase,,,,",                           # 20
        b"e20,c1,2024-03-01,Add To Cart,, 7 ,,",                         # 21 valid
        b",c2,2024-01-01,purchase,,-inf,,",                              # 22
        b",c2,2024-01-01,purchase,,NaN,,",                               # 23
        b'e22,c1,2024-01-01,purchase,,,,"""quoted"""',                   # 24
        b"e23,c1,20240101,page_view,,,,",                                # 25
        b"e24,,notadate,,,,,",                                           # 26 first failing check
        b",c3,2024-01-01,purchase,,1e3,,",                               # 27 valid
    ]
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    got = load(path)

    assert [r["event_id"] for r in got.rows][:2] == ["e01", "e20"]
    assert got.column("value") == [None, 7.0, 1000.0]
    assert got.column("event_type") == ["page_view", "add_to_cart", "purchase"]

    src = str(path)
    assert {r["source"] for r in got.rejects} == {src}
    assert sorted(got.reject_tuples()) == [
        (3, "customer_id", "missing customer_id", ""),
        (4, "ts", "unparseable timestamp", "yesterday"),
        (5, "ts", "missing timestamp", ""),
        (6, "ts", "timestamp outside 1970-2100", "0001-01-01T00:00:00Z"),
        (7, "ts", "timestamp outside 1970-2100", "2150-06-01"),
        (8, "event_type", "missing event_type", ""),
        (9, "event_type", "event_type unknown to the taxonomy", "teleport"),
        (10, "value", "value is not a number", "12.5 USD"),
        (11, "value", "negative value", "-3"),
        (12, "value", "value is not finite", "nan"),
        (13, "value", "value is not finite", "inf"),
        (14, "properties", "properties is not a JSON object", "[1,2]"),
        (15, "properties", "properties is not a JSON object", "not json"),
        (16, "customer_id", "customer_id longer than 256 characters", "x" * 80),
        (17, "event_id", "event_id longer than 256 characters", "x" * 80),
        (18, "", "wrong number of fields: expected 8, got 4", "e17,c1,2024-01-01,purchase"),
        (19, "", "wrong number of fields: expected 8, got 9",
         "e18,c1,2024-01-01,purchase,,,,,extra"),
        (20, "", "invalid UTF-8 bytes", "e19,c\ufffd1,2024-01-01,purchase,,,,"),
        (22, "value", "value is not finite", "-inf"),
        (23, "value", "value is not finite", "NaN"),
        (24, "properties", "properties is not a JSON object", '"quoted"'),
        (25, "ts", "unparseable timestamp", "20240101"),
        (26, "customer_id", "missing customer_id", ""),
    ]
    assert got.report.rows_read == 26
    assert got.report.valid == 3
    assert got.report.rejected == Counter({
        "missing customer_id": 2,
        "unparseable timestamp": 2,
        "missing timestamp": 1,
        "timestamp outside 1970-2100": 2,
        "missing event_type": 1,
        "event_type unknown to the taxonomy": 1,
        "value is not a number": 1,
        "negative value": 1,
        "value is not finite": 4,
        "properties is not a JSON object": 3,
        "customer_id longer than 256 characters": 1,
        "event_id longer than 256 characters": 1,
        "wrong number of fields": 2,
        "invalid UTF-8 bytes": 1,
    })


def test_length_limits_are_inclusive(tmp_path: Path, load: LoadFn) -> None:
    ok_id = "i" * MAX_ID_CHARS
    path = tmp_path / "e.csv"
    path.write_text(f"{CANONICAL_HEADER}\n{ok_id},{ok_id},2024-01-01,page_view,,,,\n")
    got = load(path)
    assert got.column("customer_id") == [ok_id]
    assert got.column("event_id") == [ok_id]


@pytest.mark.parametrize(
    ("column", "text", "reason"),
    [
        ("event_type", "t" * (MAX_LABEL_CHARS + 1), "event_type longer than 128 characters"),
        ("channel", "c" * (MAX_LABEL_CHARS + 1), "channel longer than 128 characters"),
        ("action", "a" * (MAX_LABEL_CHARS + 1), "action longer than 128 characters"),
        (
            "properties",
            json.dumps({"k": "v" * MAX_PROPERTIES_CHARS}),
            "properties longer than 65536 characters",
        ),
    ],
)
def test_label_and_properties_limits(
    tmp_path: Path, load: LoadFn, column: str, text: str, reason: str
) -> None:
    row = {f: "" for f in EVENT_FIELDS} | {"customer_id": "c", "ts": "2024-01-01",
                                          "event_type": "page_view"}
    row[column] = text
    path = tmp_path / "e.csv"
    path.write_text(csv_text([row]), encoding="utf-8")
    got = load(path)
    assert got.reject_tuples() == [(2, column, reason, text[:80])]


def test_bad_json_lines(tmp_path: Path, load: LoadFn) -> None:
    good = {"customer_id": "c1", "ts": "2024-01-01", "event_type": "page_view"}
    lines = [
        json.dumps(good).encode(),                                                      # 1
        b"",                                                                            # 2 blank
        b'{"customer_id": "c2", "ts": ',                                                # 3
        b"[1, 2]",                                                                      # 4
        b'"just a string"',                                                             # 5
        b'{"customer_id": "c\xff", "ts": "2024-01-01", "event_type": "page_view"}',     # 6
        b'{"customer_id": "cccc\xfe\xfe", "ts": "2024-01-01", "event_type": "x"}',      # 7
        json.dumps(good | {"value": "abc"}).encode(),                                   # 8
        json.dumps(good | {"properties": [1]}).encode(),                                # 9
        json.dumps(good | {"properties": "x"}).encode(),                                # 10
        json.dumps(good | {"customer_id": None}).encode(),                              # 11
        b"   ",                                                                         # 12 blank
        json.dumps(good | {"customer_id": "c13", "extra": {"a": 1}}).encode(),          # 13
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines))  # no newline after the last line
    got = load(path)
    assert got.column("customer_id") == ["c1", "c13"]
    tuples = sorted(got.reject_tuples())
    assert tuples[0][2].startswith("malformed JSON: Expecting value")
    assert [(line, fld, reason) for line, fld, reason, _ in tuples[1:]] == [
        (4, "", "a JSON line must be an object"),
        (5, "", "a JSON line must be an object"),
        (6, "", "invalid UTF-8 bytes: at byte 18"),
        (7, "", "invalid UTF-8 bytes: at byte 21"),
        (8, "value", "value is not a number"),
        (9, "properties", "properties is not a JSON object"),
        (10, "properties", "properties is not a JSON object"),
        (11, "customer_id", "missing customer_id"),
    ]
    assert tuples[1][3] == "[1, 2]\n"
    assert tuples[3][3].startswith('{"customer_id": "c\ufffd"')
    assert got.report.rows_read == 11
    # Read-level reasons are counted per category, whatever their details.
    assert got.report.rejected == Counter({
        "malformed JSON": 1,
        "a JSON line must be an object": 2,
        "invalid UTF-8 bytes": 2,
        "value is not a number": 1,
        "properties is not a JSON object": 2,
        "missing customer_id": 1,
    })


# -- truncated and oversized input -----------------------------------------------------------------
def _random_rows(n: int) -> list[dict[str, str]]:
    rng = random.Random(42)
    return [
        {"customer_id": f"c{rng.randrange(10**12)}", "ts": f"2024-01-01T00:{i % 60:02d}:00Z",
         "event_type": "page_view", "value": f"{rng.random():.12f}"}
        for i in range(n)
    ]


def test_gzip_csv_cut_short(tmp_path: Path, load: LoadFn) -> None:
    rows = _random_rows(3000)
    text = "customer_id,ts,event_type,value\n" + "".join(
        f"{r['customer_id']},{r['ts']},{r['event_type']},{r['value']}\n" for r in rows
    )
    packed = gzip.compress(text.encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    got = load(path)
    k = got.table.num_rows
    assert 0 < k < len(rows)
    assert got.column("customer_id") == [r["customer_id"] for r in rows[:k]]  # a clean prefix
    (reject,) = got.rejects
    assert reject["source"] == str(path)
    assert int(reject["line"]) == k + 2  # header + k rows, then the row that was cut
    assert reject["field"] == ""
    assert reject["reason"].startswith("file ends early: truncated compressed data")
    assert got.report.rejected == Counter({"file ends early": 1})
    assert got.report.rows_read == k + 1


def test_gzip_jsonl_cut_short(tmp_path: Path, load: LoadFn) -> None:
    rows = _random_rows(3000)
    packed = gzip.compress(jsonl_text(rows).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: int(len(packed) * 0.7)])
    got = load(path, batch_rows=500)
    k = got.table.num_rows
    assert 0 < k < len(rows)
    assert got.column("customer_id") == [r["customer_id"] for r in rows[:k]]
    assert got.reject_tuples()[0][:2] == (k + 1, "")
    assert got.report.rejected == Counter({"file ends early": 1})


def test_gzip_cut_inside_its_header(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "stub.csv.gz"
    path.write_bytes(gzip.compress(b"customer_id,ts,event_type\n")[:6])
    got = load(path)
    assert got.table.num_rows == 0
    assert got.reject_tuples()[0][:2] == (1, "")
    assert got.report.rejected == Counter({"file ends early": 1})


def test_oversized_csv_field(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "big.csv"
    path.write_text(
        "customer_id,ts,event_type,note\n"
        "c1,2024-01-01,page_view,small\n"
        f"c2,2024-01-01,page_view,{'x' * (MAX_FIELD_BYTES + 10)}\n"
        "c3,2024-01-01,page_view,small\n",
        encoding="utf-8",
    )
    got = load(path)
    assert got.column("customer_id") == ["c1", "c3"]
    assert got.reject_tuples() == [
        (3, "", f"malformed CSV row: field larger than field limit ({MAX_FIELD_BYTES})", "")
    ]
    assert got.report.rejected == Counter({"malformed CSV row": 1})


def test_oversized_json_line(tmp_path: Path, load: LoadFn) -> None:
    base = {"customer_id": "c", "ts": "2024-01-01", "event_type": "page_view"}
    path = tmp_path / "big.jsonl"
    path.write_text(jsonl_text([
        base | {"customer_id": "c1"},
        base | {"customer_id": "c2", "note": "x" * MAX_FIELD_BYTES},
        base | {"customer_id": "c3"},
    ]), encoding="utf-8")
    got = load(path)
    assert got.column("customer_id") == ["c1", "c3"]
    assert got.reject_tuples() == [(2, "", f"line longer than {MAX_FIELD_BYTES} bytes", "")]


# -- line numbers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_are_physical_lines(tmp_path: Path, load: LoadFn, newline: str) -> None:
    text = newline.join([
        "customer_id,ts,event_type,note",   # 1
        'c1,2024-01-01,page_view,"two',      # 2
        'lines"',                            # 3
        "c2,2024-01-01,teleport,",           # 4
        "",                                  # 5 blank
        'c3,2024-01-01,page_view,"a',        # 6
        "b",                                 # 7
        'c"',                                # 8
        "c4,notadate,page_view,",            # 9
        "c5,2024-01-01",                     # 10
        ",2024-01-01,page_view,",            # 11
    ]) + newline
    path = tmp_path / "e.csv"
    path.write_bytes(text.encode())
    got = load(path)
    assert got.column("customer_id") == ["c1", "c3"]
    assert [t[:3] for t in sorted(got.reject_tuples())] == [
        (4, "event_type", "event_type unknown to the taxonomy"),
        (9, "ts", "unparseable timestamp"),
        (10, "", "wrong number of fields: expected 4, got 2"),
        (11, "customer_id", "missing customer_id"),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_line_numbers_across_batches(tmp_path: Path, load: LoadFn, suffix: str) -> None:
    rows = [{"customer_id": f"c{i}", "ts": "2024-01-01", "event_type": "page_view"}
            for i in range(10)]
    rows[6]["event_type"] = "teleport"
    rows[8]["ts"] = "soon"
    path = tmp_path / f"e{suffix}"
    if suffix == ".csv":
        path.write_text("customer_id,ts,event_type\n" + "".join(
            f"{r['customer_id']},{r['ts']},{r['event_type']}\n" for r in rows))
        offset = 2
    else:
        path.write_text(jsonl_text(rows))
        offset = 1
    got = load(path, batch_rows=3)
    assert got.batches >= 3
    assert got.column("customer_id") == [f"c{i}" for i in range(10) if i not in (6, 8)]
    assert [t[:2] for t in sorted(got.reject_tuples())] == [
        (6 + offset, "event_type"), (8 + offset, "ts")
    ]


# -- sources, directories, report ------------------------------------------------------------------
def test_directory_loads_every_file(tmp_path: Path, load: LoadFn) -> None:
    folder = tmp_path / "logs"
    (folder / "sub").mkdir(parents=True)
    header = "customer_id,ts,event_type\n"
    (folder / "a.csv").write_text(header + "a1,2024-01-01,page_view\na2,bad,page_view\n")
    (folder / "b.csv.gz").write_bytes(gzip.compress((header + "b1,2024-01-02,purchase\n").encode()))
    (folder / "sub" / "c.jsonl").write_text(
        jsonl_text([{"customer_id": "c1", "ts": "2024-01-03", "event_type": "review"}]))
    pq.write_table(pa.table({"customer_id": ["d1"], "ts": ["2024-01-04"],
                             "event_type": ["referral"]}), folder / "d.parquet")
    (folder / ".hidden.csv").write_text(header + "h,2024-01-01,page_view\n")
    (folder / "_partial.csv").write_text(header + "p,2024-01-01,page_view\n")
    (folder / "README.md").write_text("not data\n")
    got = load(folder)
    assert got.report.files == [str(folder / n) for n in ("a.csv", "b.csv.gz", "d.parquet",
                                                          "sub/c.jsonl")]
    assert got.column("customer_id") == ["a1", "b1", "d1", "c1"]
    assert got.reject_tuples() == [(3, "ts", "unparseable timestamp", "bad")]
    assert got.rejects[0]["source"] == str(folder / "a.csv")
    assert got.report.rows_read == 5


def test_directory_without_loadable_files(tmp_path: Path, load: LoadFn) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt.bak").write_text("x")
    with pytest.raises(SourceError, match="directory holds no loadable files"):
        load(tmp_path / "empty")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("events.xlsx", "unknown file type"),
        ("events", "unknown file type"),
        ("events.gz", "unknown file type"),
        ("events.parquet.gz", "gzipped Parquet is not supported"),
    ],
)
def test_unknown_file_types(tmp_path: Path, load: LoadFn, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_text("customer_id,ts,event_type\n")
    with pytest.raises(SourceError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path, load: LoadFn) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load(tmp_path / "nope.csv")


def test_duplicate_header_names(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("customer_id,ts,ts,event_type\nc,2024-01-01,2024-01-02,page_view\n")
    with pytest.raises(SourceError, match=r"duplicate column names \['ts'\]"):
        load(path)


def test_header_only_and_empty_files(tmp_path: Path, load: LoadFn) -> None:
    header_only = tmp_path / "h.csv"
    header_only.write_text("customer_id,ts,event_type\n")
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    for path in (header_only, empty):
        got = load(path)
        assert got.table.num_rows == 0
        assert got.report.rows_read == 0


def test_missing_required_column_raises_mapping_error(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text("user,ts,event_type\nu,2024-01-01,page_view\n")
    with pytest.raises(MappingError) as info:
        load(path)
    assert str(path) in str(info.value)
    assert "'customer_id'" in str(info.value)
    assert "['user', 'ts', 'event_type']" in str(info.value)


def test_report_without_rejects_file(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type\nc,2024-01-01,page_view\nc,never,page_view\n")
    report = LoadReport()
    batches = list(load_events(path, identity_mapping(), taxonomy, report))
    assert sum(b.num_rows for b in batches) == 1
    assert report.rejected == Counter({"unparseable timestamp": 1})
    assert report.rejects_path is None
    assert report.lines() == [
        "read 2 rows from 1 file(s): 1 valid, 1 rejected",
        "  rejected          1  unparseable timestamp",
    ]
    assert list(tmp_path.iterdir()) == [path]


def test_report_lines_name_the_rejects_file(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type\n" + "c,never,page_view\n" * 2
                    + ",2024-01-01,page_view\n")
    got = load(path)
    lines = got.report.lines()
    assert lines[0] == "read 3 rows from 1 file(s): 0 valid, 3 rejected"
    assert lines[1] == "  rejected          2  unparseable timestamp"
    assert lines[2] == "  rejected          1  missing customer_id"
    rejects_path = got.report.rejects_path
    assert lines[3] == f"rejected rows (file, line, field, reason, value): {rejects_path}"


def test_header_with_invalid_utf8(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"customer_id,t\xffs,event_type\nc,2024-01-01,page_view\n")
    with pytest.raises(SourceError, match="line 1: the header is not valid UTF-8"):
        load(path)


def test_rejected_raw_row_is_clipped(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    long_row = "c," + "y" * 1000
    path.write_text(f"customer_id,ts,event_type\n{long_row}\n")
    (reject,) = load(path).rejects
    assert reject["reason"] == "wrong number of fields: expected 3, got 2"
    assert reject["value"] == long_row[:500] + "…"


def test_jsonl_rows_with_different_keys(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(jsonl_text([
        {"customer_id": "c1", "ts": "2024-01-01", "event_type": "page_view"},
        {"event_type": "purchase", "value": "5.5", "ts": "2024-01-02", "customer_id": "c2",
         "channel": "App"},
    ]))
    got = load(path)
    assert got.column("value") == [None, 5.5]
    assert got.column("channel") == ["unknown", "app"]


def test_segment_rows_without_user_id_fall_back_to_anonymous_id(tmp_path: Path) -> None:
    src = tmp_path / "segment.jsonl"
    src.write_text(
        '{"messageId": "m1", "userId": "u1", "anonymousId": "a1", "event": "Product Viewed",'
        ' "timestamp": "2024-01-01T10:00:00Z"}\n'
        '{"messageId": "m2", "userId": null, "anonymousId": "a2", "event": "Order Completed",'
        ' "timestamp": "2024-01-01T11:00:00Z", "properties": {"revenue": 25.5}}\n'
        '{"messageId": "m3", "userId": "", "anonymousId": "", "event": "Page",'
        ' "timestamp": "2024-01-01T12:00:00Z"}\n',
        encoding="utf-8",
    )
    report = LoadReport()
    rows = pa.concat_tables(
        load_events(src, load_preset("segment"), load_taxonomy(), report, tmp_path / "rej.csv")
    ).to_pylist()
    assert [(r["customer_id"], r["event_type"], r["value"]) for r in rows] == [
        ("u1", "product_view", None),
        ("a2", "purchase", 25.5),
    ]
    assert dict(report.rejected) == {"missing customer_id": 1}
