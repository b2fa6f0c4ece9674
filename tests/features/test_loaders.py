"""Loading good rows from CSV, TSV and JSON lines files, plain and gzipped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from features.mapping import load_preset

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
    assert got.report.rejects_path is not None
    assert not got.report.rejects_path.exists()  # no rejects, no file
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
