"""Ids from typed Parquet columns are spelt as CSV and JSON spell them: pandas' float64 of an
integer column with a gap (7.0) is customer "7", not "7.0"; what has no such spelling is
rejected with the reason a JSON file gets."""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from features.store import EventStore
from features.taxonomy import Taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from features.mapping import identity_mapping
from tests.features.loader_cases import jsonl_text

TS = "2025-12-20T00:00:00Z"


def _parquet(path: Path, customers: pa.Array, events: pa.Array | None = None) -> Path:
    n = len(customers)
    pq.write_table(pa.table({
        "event_id": events if events is not None else pa.array([f"p{i}" for i in range(n)]),
        "customer_id": customers, "ts": [TS] * n, "event_type": ["page_view"] * n}), path)
    return path


def test_float_ids_are_spelt_as_integers(tmp_path: Path, load: LoadFn) -> None:
    customers = pa.array([7.0, None, 7.5, float("nan"), 1e20, -0.0, float("inf"), 2.0**53])
    got = load(_parquet(tmp_path / "f.parquet", customers,
                        pa.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5])))
    assert got.column("customer_id") == ["7", "0"]
    assert got.column("event_id") == ["1", "6"]
    assert got.reject_tuples() == [
        (2, "customer_id", "missing customer_id", ""),
        (3, "customer_id", "customer_id is a number with a fraction, not text or a whole number",
         "7.5"),
        (4, "customer_id", "customer_id is not a finite number, not text or a whole number",
         "nan"),
        (5, "customer_id", "customer_id is a number too large to be exact, not text or a whole "
         "number", "1e+20"),
        (7, "customer_id", "customer_id is not a finite number, not text or a whole number",
         "inf"),
        (8, "event_id", "event_id is a number with a fraction, not text or a whole number",
         "8.5"),
    ]


def test_other_typed_ids(tmp_path: Path, load: LoadFn) -> None:
    """Decimals are exact: integral ones lose their zeros; a float32 is exact to 2^24; true
    and false are no id (as in JSON)."""
    got = load(_parquet(tmp_path / "d.parquet", pa.array(
        [decimal.Decimal("7.00"), decimal.Decimal("7.50")], pa.decimal128(10, 2))))
    assert got.column("customer_id") == ["7"]
    assert got.reject_tuples()[0][1:3] == (
        "customer_id", "customer_id is a number with a fraction, not text or a whole number")
    got = load(_parquet(tmp_path / "f32.parquet", pa.array([7.0, 2.0**25], pa.float32())))
    assert got.column("customer_id") == ["7"]
    assert got.reject_tuples()[0][2].startswith("customer_id is a number too large to be exact")
    got = load(_parquet(tmp_path / "b.parquet", pa.array([True, False])))
    assert got.table.num_rows == 0
    assert {r[2] for r in got.reject_tuples()} == {
        "customer_id is true or false, not text or a whole number"}


def test_one_customer_whatever_the_format(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """Customer 7 of a CSV file, of a JSON file (as 7.0) and of a Parquet file with a gap in
    the column (float64) is one customer of the store."""
    (tmp_path / "a.csv").write_text(
        f"event_id,customer_id,ts,event_type\nc1,7,{TS},page_view\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(jsonl_text([
        {"event_id": "j1", "customer_id": 7.0, "ts": TS, "event_type": "page_view"}]),
        encoding="utf-8")
    _parquet(tmp_path / "c.parquet", pa.array([7.0, None]), pa.array(["q1", "q2"]))
    with EventStore(tmp_path / "events.duckdb") as es:
        for name in ("a.csv", "b.jsonl", "c.parquet"):
            es.ingest(tmp_path / name, identity_mapping(), taxonomy)
        rows = es.con.execute("SELECT DISTINCT customer_id FROM events").fetchall()
    assert rows == [("7",)]
