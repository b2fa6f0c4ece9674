"""Reader fixes for hostile files (issue #8, item 5): deep or huge JSON lines, column clashes."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import MappingError
from features.loaders import LoadReport, load_events
from features.mapping import identity_mapping, load_preset
from features.readers import LINE_COLUMN, read_batches
from features.taxonomy import Taxonomy
from tests.features.hostile_cases import OK

if TYPE_CHECKING:
    from tests.conftest import LoadFn

pytestmark = pytest.mark.timeout(60)


# -- JSON lines that crashed the load or took its memory -----------------------------------------
def test_json_nested_too_deeply_or_with_huge_numbers(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"[" * 50_000 + b"]" * 50_000 + b"\n"
                     + b'{"customer_id": "c", "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001 + b"\n"
                     + b'{"customer_id": ' + b"9" * 5000 + b"}\n" + (OK % "c4").encode())
    got = load(path)
    assert got.column("customer_id") == ["c4"]
    assert [(t[0], t[2]) for t in got.reject_tuples()] == [
        (1, "malformed JSON: nested too deeply"),
        (2, "malformed JSON: nested too deeply"),
        (3, "malformed JSON: Exceeds the limit (4300 digits) for integer string conversion: "
            "value has 5000 digits"),
    ]


def test_flattening_a_deep_object_stays_small(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """Each nesting level was flattened into a column holding the rest as JSON text: 900 levels
    over a 900 kB string took 1.8 GB. Now only the mapping's columns are flattened (and without
    a mapping, 8 levels)."""
    inner: object = "z" * 900_000
    for _ in range(900):
        inner = {"a": inner}
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"customer_id": "c1", "ts": "2024-01-01", "event_type": "page_view",
                                "deep": inner}) + "\n")
    for wanted in (identity_mapping().wanted_columns(), None):
        tracemalloc.start()
        try:
            [batch] = list(read_batches(path, wanted=wanted))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 40 << 20, peak
        assert len(batch.table.column_names) <= (4 if wanted else 13)


def test_objects_keyed_by_ids_do_not_become_columns(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """Properties keyed by SKU made one column per SKU: 30k such lines (5 MB) ran out of memory
    (30k rows x 150k columns). Only the mapping's columns are kept."""
    path = tmp_path / "e.jsonl"
    with path.open("w") as fh:
        for i in range(30_000):
            fh.write(json.dumps({"customer_id": f"c{i}", "ts": "2024-01-01",
                                 "event_type": "page_view",
                                 "properties": {f"sku{i}_{j}": j for j in range(5)}}) + "\n")
    batches = list(read_batches(path, wanted=identity_mapping().wanted_columns()))
    assert sum(b.table.num_rows for b in batches) == 30_000
    assert sorted(batches[0].table.column_names) == sorted(
        ["customer_id", "ts", "event_type", "properties", LINE_COLUMN])
    report = LoadReport()
    loaded = list(load_events(path, identity_mapping(), taxonomy, report))
    assert sum(t.num_rows for t in loaded) == 30_000
    assert json.loads(loaded[0]["properties"][0].as_py()) == {f"sku0_{j}": j for j in range(5)}


def test_flattened_columns_the_mapping_names_are_still_read(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"userId": "u1", "event": "Order Completed",
                                "timestamp": "2024-01-01T00:00:00Z",
                                "context": {"campaign": {"source": "News", "id": 7}, "ip": "x"},
                                "properties": {"revenue": 12.5, "items": {"a": 1}}}) + "\n")
    [row] = load(path, load_preset("segment")).rows
    assert (row["channel"], row["value"]) == ("news", 12.5)


def test_missing_column_messages_still_name_every_source_column(
    tmp_path: Path, load: LoadFn
) -> None:
    csv_path = tmp_path / "e.csv"
    csv_path.write_text("user,note,ts,event_type\nu,n,2024-01-01,page_view\n")
    with pytest.raises(MappingError, match=r"\['user', 'note', 'ts', 'event_type'\]"):
        load(csv_path)
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text('{"user": "u", "ts": "2024-01-01", "event_type": "page_view", "x": {}}\n')
    with pytest.raises(MappingError, match=r"\['user', 'ts', 'event_type', 'x'\]"):
        load(jsonl)


def test_a_later_json_batch_without_a_required_key_rejects_its_rows(
    tmp_path: Path, load: LoadFn
) -> None:
    """Batches are cut by rows and by bytes; one whose records all lack a key the file has had
    raised MappingError and failed the whole load."""
    path = tmp_path / "e.jsonl"
    path.write_text(OK % "c1" + OK % "c2" + '{"ts": "2024-01-01", "event_type": "page_view"}\n' * 2
                    + OK % "c5")
    got = load(path, batch_rows=2)
    assert got.column("customer_id") == ["c1", "c2", "c5"]
    assert [t[:3] for t in got.reject_tuples()] == [
        (3, "customer_id", "missing customer_id"), (4, "customer_id", "missing customer_id")]


# -- columns that collided or were refused -------------------------------------------------------
def test_a_source_column_named_like_the_line_column(tmp_path: Path, load: LoadFn) -> None:
    csv_path = tmp_path / "e.csv"
    csv_path.write_text("customer_id,_line,ts,event_type\nc1,9,2024-01-01,page_view\n"
                        "c2,9,never,page_view\n")
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text('{"customer_id": "c1", "_line": 9, "ts": "2024-01-01", "event_type": "x"}\n')
    parquet = tmp_path / "e.parquet"
    pq.write_table(pa.table({"customer_id": ["c1"], "_line": [9], "ts": ["2024-01-01"],
                             "event_type": ["page_view"]}), parquet)
    assert load(csv_path).reject_tuples() == [(3, "ts", "unparseable timestamp", "never")]
    assert load(jsonl).reject_tuples()[0][:1] == (1,)
    assert load(parquet).column("customer_id") == ["c1"]
    # Without a mapping to say what to keep, the column is still never read.
    [batch] = list(read_batches(csv_path))
    assert batch.table.column_names == ["customer_id", "ts", "event_type", LINE_COLUMN]


def test_unused_columns_may_repeat_or_be_unnamed(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "export.csv"
    path.write_text("customer_id,ts,event_type,,,note,note\nc1,2024-01-01,page_view,,,a,b\n")
    assert load(path).column("customer_id") == ["c1"]


# -- a key written twice -----------------------------------------------------------------------
def test_a_key_written_twice_rejects_the_row_naming_it(tmp_path: Path, load: LoadFn) -> None:
    # json.loads keeps the last of the two: c2's event would be stored without a word.
    path = tmp_path / "e.jsonl"
    path.write_text(
        (OK % "c1")
        + '{"customer_id": "c1", "customer_id": "c2", "ts": "2024-01-01", "event_type": "x"}\n'
        + '{"customer_id": "c3", "ts": "2024-01-01", "event_type": "page_view", '
          '"properties": {"page": "/a", "page": "/b"}}\n'
        + '{"customer_id": "c4", "ts": "2024-01-01", "event_type": "page_view", '
          '"context": {"items": [{"sku": 1, "sku": 2}]}}\n'
        + (OK % "c5"), encoding="utf-8")
    got = load(path)
    assert got.column("customer_id") == ["c1", "c5"]
    assert [t[:3] for t in got.reject_tuples()] == [
        (2, "customer_id", "duplicate key: customer_id given twice"),
        (3, "properties.page", "duplicate key: properties.page given twice"),
        # Wherever it is: the row is ambiguous JSON, whichever columns the mapping reads.
        (4, "context.items[0].sku", "duplicate key: context.items[0].sku given twice"),
    ]
    assert got.reject_tuples()[0][3].startswith('{"customer_id": "c1", "customer_id": "c2"')
    assert got.report.rejected["duplicate key"] == 3
