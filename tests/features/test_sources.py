"""Sources (files, directories, unknown types), headers, and the load report."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import MappingError, SourceError
from features.loaders import LoadReport, load_events
from features.mapping import identity_mapping, load_preset
from features.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import (
    jsonl_text,
)


# -- sources, directories, report ------------------------------------------------------------------
def test_directory_loads_every_file(tmp_path: Path, load: LoadFn) -> None:
    folder = tmp_path / "logs"
    (folder / "sub").mkdir(parents=True)
    header = "customer_id,ts,event_type\n"
    (folder / "a.csv").write_text(header + "a1,2024-01-01,page_view\na2,bad,page_view\n")
    (folder / "b.csv.gz").write_bytes(gzip.compress((header + "b1,2024-01-02,purchase\n").encode()))
    (folder / "sub" / "c.jsonl").write_text(
        jsonl_text([{"customer_id": "c1", "ts": "2024-01-03", "event_type": "review"}])
    )
    pq.write_table(
        pa.table({"customer_id": ["d1"], "ts": ["2024-01-04"], "event_type": ["referral"]}),
        folder / "d.parquet",
    )
    (folder / ".hidden.csv").write_text(header + "h,2024-01-01,page_view\n")
    (folder / "_partial.csv").write_text(header + "p,2024-01-01,page_view\n")
    (folder / "README.md").write_text("not data\n")
    got = load(folder)
    assert got.report.files == [
        str(folder / n) for n in ("a.csv", "b.csv.gz", "d.parquet", "sub/c.jsonl")
    ]
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
    path.write_text(
        "customer_id,ts,event_type\n" + "c,never,page_view\n" * 2 + ",2024-01-01,page_view\n"
    )
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
    path.write_text(
        jsonl_text(
            [
                {"customer_id": "c1", "ts": "2024-01-01", "event_type": "page_view"},
                {
                    "event_type": "purchase",
                    "value": "5.5",
                    "ts": "2024-01-02",
                    "customer_id": "c2",
                    "channel": "App",
                },
            ]
        )
    )
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
