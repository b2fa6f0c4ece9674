"""A float id column in an attributes or detail Parquet file (pandas' integers with a missing
value) names what events from any file name: 7.0 is customer (or event) "7", as ingest reads
it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.store import EventStore
from features.store_attributes import load_attributes, read_attribute_file
from features.taxonomy import Taxonomy
from tests.features.details_cases import load_joined, write


def test_a_whole_float_id_is_its_integer(tmp_path: Path) -> None:
    path = tmp_path / "attrs.parquet"
    pq.write_table(pa.table({"customer_id": pa.array([7.0, None, 8.5], pa.float64()),
                             "region": ["north", "south", "east"]}), path)
    table, rejects = read_attribute_file(path)
    assert rejects == []
    with EventStore(tmp_path / "events.duckdb") as es:
        load_attributes(es.con, table)
        rows = es.con.execute(
            "SELECT customer_id, value FROM attributes ORDER BY customer_id").fetchall()
    assert rows == [("7", "north"), ("8.5", "east")]


def test_a_whole_float_key_in_a_detail_file_joins_its_event(tmp_path: Path,
                                                             taxonomy: Taxonomy) -> None:
    events = write(tmp_path / "events.csv", "user_id,event_type,event_id,ts\n"
                   "u1,Order Completed,7,2024-01-01T10:05:00Z\n"
                   "u2,Order Completed,8,2024-01-02T10:00:00Z\n")
    orders = tmp_path / "orders.parquet"  # pandas' integers with a missing value: float64
    pq.write_table(pa.table({"id": pa.array([7.0, None], pa.float64()),
                             "total_price": [69.73, 1.0]}), orders)
    got = load_joined(tmp_path, taxonomy, events, details=[orders])
    assert got.value("7") == 69.73
    assert got.value("8") is None
