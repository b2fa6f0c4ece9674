"""Reader fixes for hostile files (issue #8, item 5): encodings, stray bytes, headers, bad gzip."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import SourceError
from features.readers import ReadLimits, read_batches
from tests.features.hostile_cases import HEADER, OK, rows_of

if TYPE_CHECKING:
    from tests.conftest import LoadFn

pytestmark = pytest.mark.timeout(60)


# -- encodings and bytes ---------------------------------------------------------------------------
def test_invalid_utf8_in_a_row_of_the_wrong_width(tmp_path: Path, load: LoadFn) -> None:
    """The rejects file could not encode the row's raw text: the load crashed."""
    path = tmp_path / "e.csv"
    path.write_bytes(HEADER.encode() + b"c\xff1,2024-01-01\nc2,2024-01-01,page_view\n")
    got = load(path)
    assert got.column("customer_id") == ["c2"]
    assert got.reject_tuples() == [
        (2, "", "wrong number of fields: expected 3, got 2", "c\ufffd1,2024-01-01")
    ]


def test_nul_bytes_are_rejected_in_every_format(tmp_path: Path, load: LoadFn) -> None:
    csv_path = tmp_path / "e.csv"
    csv_path.write_bytes(HEADER.encode() + b"c\x001,2024-01-01,page_view\n"
                         b"c2,2024-01-01,page_view\n")
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_bytes((OK % "c\\u00001").encode() + (OK % "c2").encode()
                      + b'{"customer_id": "c\x003", "ts": "2024-01-01"}\n')
    parquet = tmp_path / "e.parquet"
    pq.write_table(pa.table({
        "customer_id": pa.array(["c\x001", "c2"], pa.large_string()),
        "ts": ["2024-01-01"] * 2,
        "event_type": pa.array(["page\x00view", "page_view"]).dictionary_encode(),
    }), parquet)
    for path, expected in [
        (csv_path, [(2, "NUL byte: in the row")]),
        (jsonl, [(1, "NUL byte: in the row"), (3, "malformed JSON: Invalid control character")]),
        (parquet, [(1, "NUL byte: in column 'customer_id'")]),
    ]:
        got = load(path)
        assert got.column("customer_id") == ["c2"], path
        assert [(t[0], t[2][: len(r)]) for t, r in
                zip(got.reject_tuples(), (r for _, r in expected), strict=True)] == expected
    # The rejects file shows where the NUL was, without writing one.
    assert load(csv_path).reject_tuples()[0][3] == "c\u24001,2024-01-01,page_view"


def test_jsonl_with_a_bom(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (OK % "c1").encode() + (OK % "c2").encode())
    got = load(path)
    assert got.column("customer_id") == ["c1", "c2"]
    assert got.rejects == []


def test_csv_with_old_mac_line_ends(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b"customer_id,ts,event_type\rc1,2024-01-01,page_view\rc2,bad,page_view\r")
    got = load(path)
    assert got.column("customer_id") == ["c1"]
    assert got.reject_tuples() == [(3, "ts", "unparseable timestamp", "bad")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfec\x00u\x00", "the header is not valid UTF-8 (is the file UTF-16"),
        ("customer_id,ts,event_type\n".encode("utf-16-le"), "the header is not valid UTF-8"),
        (b'"customer_id,ts,event_type\nc1,2024-01-01,page_view\n', "unreadable header: "
         "unterminated quote"),
        (b"customer_id,ts,event_type," + b"x" * 300 + b"\n", "unreadable header: row longer"),
    ],
)
def test_unreadable_headers(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(data)
    with pytest.raises(SourceError, match=r"line 1: ") as info:
        list(read_batches(path, limits=ReadLimits(max_field_bytes=100, max_row_bytes=200)))
    assert message in str(info.value)


# -- compressed data -------------------------------------------------------------------------------
def test_corrupt_deflate_data_keeps_the_rows_before_it(tmp_path: Path, load: LoadFn) -> None:
    text = (HEADER + rows_of(20_000)).encode()
    packed = bytearray(gzip.compress(text, compresslevel=1))
    middle = len(packed) // 2
    packed[middle : middle + 64] = b"\xff" * 64
    path = tmp_path / "e.csv.gz"
    path.write_bytes(bytes(packed))
    got = load(path)
    n = got.table.num_rows
    assert 0 < n < 20_000
    assert got.column("customer_id") == [f"c{i}" for i in range(n)]
    [(line, _, reason, _)] = got.reject_tuples()
    assert line == n + 2
    assert reason.split(":")[0] in ("corrupt compressed data", "file ends early")
