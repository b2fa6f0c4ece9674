"""Hostile files through the store (issue #8, item 5): truncated lines, bad encodings, bad
timestamps, huge fields, duplicates, wrong column counts, a gzip cut short. Every valid row is
stored exactly once, every invalid one is reported with its file, line and reason, and the load
returns (each test runs under a timeout) without an unhandled exception."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import SourceError
from features.loaders import LoadReport, load_events
from features.mapping import identity_mapping
from features.readers import MAX_ROW_BYTES
from features.store import EventStore, IngestReport
from features.taxonomy import Taxonomy
from tests.features.hostile_cases import (
    CSV_HEADER,
    Hostile,
    cut_gzip_csv,
    hostile_csv,
    hostile_jsonl,
    hostile_parquet,
)
from tests.journey.cli_helpers import fails, ok

pytestmark = pytest.mark.timeout(60)


def ingest(store: Path, source: Path, taxonomy: Taxonomy,
           rejects: Path) -> tuple[IngestReport, list[dict[str, str]]]:
    """Ingest into ``store``; the report and the rejects file's rows."""
    with EventStore(store) as es:
        report = es.ingest(source, identity_mapping(), taxonomy, rejects)
    rows: list[dict[str, str]] = []
    if rejects.exists():
        with rejects.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    assert report.load.rows_read == report.load.valid + report.load.rejected_total
    assert len(rows) == report.load.rejected_total
    return report, rows


def stored_ids(store: Path) -> list[str]:
    with EventStore(store, read_only=True) as es:
        return [r[0] for r in es.con.execute("SELECT event_id FROM events ORDER BY 1").fetchall()]


def categories(rows: list[dict[str, str]], source: Path) -> list[tuple[int, str]]:
    """(line, reason category) of one file's rejects, in line order."""
    mine = [r for r in rows if r["source"] == str(source)]
    return sorted((int(r["line"]), r["reason"].split(":")[0]) for r in mine)


def check(h: Hostile, report: IngestReport, rows: list[dict[str, str]]) -> None:
    assert categories(rows, h.path) == h.rejects
    assert report.load.valid == h.valid


@pytest.mark.parametrize("build", [hostile_csv, hostile_jsonl, hostile_parquet])
def test_every_valid_row_once_every_invalid_one_reported(
    tmp_path: Path, taxonomy: Taxonomy, build: Callable[[Path], Hostile]
) -> None:
    h = build(tmp_path)
    store = tmp_path / "events.duckdb"
    report, rows = ingest(store, h.path, taxonomy, tmp_path / "rejects.csv")
    check(h, report, rows)
    assert stored_ids(store) == sorted(h.stored)
    assert report.append.inserted == len(h.stored)
    assert report.append.duplicates == h.repeats
    for row in rows:
        assert row["reason"] and row["line"].isdigit()
        assert len(row["value"]) <= 501  # clipped, and never the 5 MB of the huge row

    again, _ = ingest(store, h.path, taxonomy, tmp_path / "rejects-2.csv")  # the same file again
    assert again.append.inserted == 0
    assert again.append.duplicates == h.valid
    assert stored_ids(store) == sorted(h.stored)


def test_first_of_repeated_ids_is_kept(tmp_path: Path, taxonomy: Taxonomy) -> None:
    h = hostile_csv(tmp_path)
    store = tmp_path / "events.duckdb"
    ingest(store, h.path, taxonomy, tmp_path / "rejects.csv")
    with EventStore(store, read_only=True) as es:
        row = es.con.execute(
            "SELECT event_type, value, strftime(ts, '%Y-%m-%d') FROM events WHERE event_id = 'e01'"
        ).fetchone()
    assert row == ("page_view", None, "2024-01-01")  # line 2, not the repeat on line 16


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.gz"])
def test_gzip_cut_short_keeps_the_rows_before_the_cut(
    tmp_path: Path, taxonomy: Taxonomy, suffix: str
) -> None:
    if suffix == ".csv.gz":
        path, readable = cut_gzip_csv(tmp_path)
        stop_line = readable + 2  # the header, the readable rows, then the line that was cut
    else:
        lines = [f'{{"event_id": "g{i:05d}", "customer_id": "c{i % 97}", "ts": "2024-04-01", '
                 f'"event_type": "page_view"}}\n' for i in range(4000)]
        packed = gzip.compress("".join(lines).encode(), compresslevel=1)
        path = tmp_path / "cut.jsonl.gz"
        path.write_bytes(packed[: len(packed) // 2])
        readable = gzip.decompress(packed)[: _readable_bytes(path)].count(b"\n")
        stop_line = readable + 1  # the readable lines, then the line that was cut
    store = tmp_path / "events.duckdb"
    _, rows = ingest(store, path, taxonomy, tmp_path / "rejects.csv")
    assert 0 < readable < 4000
    assert stored_ids(store) == [f"g{i:05d}" for i in range(readable)]  # a clean prefix
    [reject] = rows
    assert (reject["source"], int(reject["line"])) == (str(path), stop_line)
    assert reject["reason"].startswith("file ends early: truncated compressed data")


def _readable_bytes(path: Path) -> int:
    """How many bytes a cut gzip file decompresses to before it ends."""
    total = 0
    with gzip.open(path, "rb") as fh:
        try:
            while chunk := fh.read1(1 << 16):
                total += len(chunk)
        except EOFError:
            pass
    return total


def test_gzip_that_is_not_gzip_and_gzip_with_trailing_garbage(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    plain = tmp_path / "plain.csv.gz"
    plain.write_bytes(CSV_HEADER + b"\nx1,c1,2024-01-01,page_view,\n")
    tail = tmp_path / "tail.csv.gz"
    tail.write_bytes(gzip.compress(CSV_HEADER + b"\nt1,c1,2024-01-01,page_view,\n") + b"junk!")
    store = tmp_path / "events.duckdb"
    _, rows = ingest(store, plain, taxonomy, tmp_path / "r1.csv")
    assert [(r["line"], r["reason"]) for r in rows] == [
        ("1", "corrupt compressed data: Not a gzipped file (b'ev')")
    ]
    _, rows = ingest(store, tail, taxonomy, tmp_path / "r2.csv")
    assert [(r["line"], r["reason"].split(":")[0]) for r in rows] == [
        ("3", "corrupt compressed data")
    ]
    assert stored_ids(store) == ["t1"]  # the rows before the garbage stay


EMPTY_FILES = [
    ("empty.csv", b""),
    ("header_only.csv", CSV_HEADER + b"\r\n"),
    ("header_no_newline.csv", CSV_HEADER),
    ("bom_only.csv", b"\xef\xbb\xbf"),
    ("blank_lines.csv", b"\n\r\n\n"),
    ("empty.jsonl", b""),
    ("blank_lines.jsonl", b"\n  \n\r\n"),
    # mtime=0: otherwise the gzip header holds the clock and the test id differs per worker
    ("empty.csv.gz", gzip.compress(b"", mtime=0)),
]


# ids by file name alone: every xdist worker must collect the same ids
@pytest.mark.parametrize(("name", "data"), EMPTY_FILES, ids=[name for name, _ in EMPTY_FILES])
def test_empty_files_load_nothing_and_report_nothing(
    tmp_path: Path, taxonomy: Taxonomy, name: str, data: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    store = tmp_path / "events.duckdb"
    report, rows = ingest(store, path, taxonomy, tmp_path / "rejects.csv")
    assert (report.load.rows_read, report.append.inserted, rows) == (0, 0, [])
    assert stored_ids(store) == []


def _mixed_folder(folder: Path) -> tuple[list[Hostile], Path, int]:
    folder.mkdir()
    hostile = [hostile_csv(folder, "a.csv"), hostile_jsonl(folder, "b.jsonl"),
               hostile_parquet(folder, "c.parquet")]
    cut, readable = cut_gzip_csv(folder, name="d.csv.gz")
    (folder / "e.csv.gz").write_bytes(b"not gzip at all\n")
    (folder / "f.csv").write_bytes(b"")
    (folder / "g.csv").write_bytes(CSV_HEADER + b"\n")
    (folder / "notes.md").write_text("not data\n")
    return hostile, cut, readable


def test_a_directory_of_hostile_files(tmp_path: Path, taxonomy: Taxonomy) -> None:
    hostile, cut, readable = _mixed_folder(tmp_path / "drop")
    store = tmp_path / "events.duckdb"
    report, rows = ingest(store, tmp_path / "drop", taxonomy, tmp_path / "rejects.csv")
    for h in hostile:
        assert categories(rows, h.path) == h.rejects
    assert categories(rows, cut) == [(readable + 2, "file ends early")]
    assert categories(rows, tmp_path / "drop" / "e.csv.gz") == [(1, "corrupt compressed data")]
    expected = set().union(*(h.stored for h in hostile)) | {f"g{i:05d}" for i in range(readable)}
    assert stored_ids(store) == sorted(expected)
    assert report.append.duplicates == sum(h.repeats for h in hostile)
    assert len(report.load.files) == 7


def test_a_file_that_cannot_be_read_fails_the_load_cleanly(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    """A file-level error (here a header that is not UTF-8) names the file and line; the load is
    one transaction, so nothing of the directory is stored and the store stays usable."""
    folder = tmp_path / "drop"
    folder.mkdir()
    hostile_csv(folder, "a.csv")
    (folder / "b.csv").write_bytes(b"customer_id,t\xffs,event_type\nc,2024-01-01,page_view\n")
    store = tmp_path / "events.duckdb"
    with pytest.raises(SourceError, match=r"b\.csv: line 1: the header is not valid UTF-8"):
        ingest(store, folder, taxonomy, tmp_path / "rejects.csv")
    assert stored_ids(store) == []
    (folder / "b.csv").unlink()
    report, _ = ingest(store, folder, taxonomy, tmp_path / "rejects.csv")
    assert report.append.inserted == 4


def test_a_50_mb_line_costs_a_few_mb(tmp_path: Path, taxonomy: Taxonomy) -> None:
    """One line far past the row limit is rejected without being read into memory whole."""
    line = b"c2,2024-01-01,page_view," + b"w" * 50_000_000
    good = b'{"customer_id": "c1", "ts": "2024-01-01", "event_type": "page_view"}\n'
    for suffix in (".csv", ".jsonl"):
        path = tmp_path / f"huge{suffix}"
        if suffix == ".csv":
            path.write_bytes(b"customer_id,ts,event_type,note\nc1,2024-01-01,page_view,x\n"
                             + line + b"\nc3,2024-01-01,page_view,x\n")
        else:
            path.write_bytes(good + b'{"note": "' + line + b'"}\n' + good.replace(b"c1", b"c3"))
        small = tmp_path / f"small{suffix}"  # first loads import lazily: not the line's cost
        small.write_bytes(good if suffix == ".jsonl" else b"customer_id,ts,event_type\n"
                          b"c0,2024-01-01,page_view\n")
        list(load_events(small, identity_mapping(), taxonomy, LoadReport()))
        report = LoadReport()
        tracemalloc.start()
        try:
            batches = list(load_events(path, identity_mapping(), taxonomy, report))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2 * MAX_ROW_BYTES + (8 << 20), peak  # the line is 50 MB; about 8 MB
        assert pa.concat_tables(batches)["customer_id"].to_pylist() == ["c1", "c3"]
        assert report.rejected_total == 1


# -- the command line ----------------------------------------------------------------------------
def test_journey_ingest_on_a_hostile_directory(tmp_path: Path) -> None:
    """In a process of its own (a crash or a hang would show), then in process: counts printed,
    exit code 0 with rejects, the same counts on a re-run with nothing new stored."""
    hostile, _, readable = _mixed_folder(tmp_path / "drop")
    store = tmp_path / "home" / "events.duckdb"
    env = os.environ | {"JOURNEY_HOME": str(tmp_path / "home"), "BENTOML_DO_NOT_TRACK": "true",
                        "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "journey", "ingest", str(tmp_path / "drop"), "--store", str(store)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    inserted = len(set().union(*(h.stored for h in hostile))) + readable
    valid = sum(h.valid for h in hostile) + readable
    rejected = sum(len(h.rejects) for h in hostile) + 2  # and the cut gzip, the one not gzip
    lines = done.stdout.splitlines()
    assert lines[0] == (f"read {valid + rejected:,} rows from 7 file(s): "
                        f"{valid:,} valid, {rejected:,} rejected")
    assert f"stored {inserted:,} new events; 3 already stored or repeated" in done.stdout
    assert any(line.startswith("rejected rows (file, line, field, reason, value): ")
               for line in lines)

    again = ok("ingest", tmp_path / "drop", "--store", store)
    assert f"stored 0 new events; {valid:,} already stored or repeated" in "\n".join(again)


def test_journey_ingest_exits_2_on_a_file_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_bytes("customer_id,ts,event_type\nc1,2024-01-01,page_view\n".encode("utf-16"))
    message = fails("ingest", path, "--store", tmp_path / "events.duckdb")
    assert f"{path}: line 1: the header is not valid UTF-8 (is the file UTF-16" in message


def test_parquet_file_with_a_duplicated_wanted_column(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays(
        [pa.array(["c1"]), pa.array(["c2"]), pa.array(["2024-01-01"]), pa.array(["page_view"])],
        names=["customer_id", "customer_id", "ts", "event_type"]), path)
    with pytest.raises(SourceError, match=r"duplicate column names \['customer_id'\]"):
        ingest(tmp_path / "events.duckdb", path, taxonomy, tmp_path / "rejects.csv")
