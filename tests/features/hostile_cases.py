"""Hostile source files, built in a test's tmp_path, and what loading each must give.

Each builder writes one file mixing valid rows with broken ones and returns a ``Hostile``: the
event ids that must be stored (once each), the rejects that must be reported as (line, reason
category), and how many valid rows repeat an id already seen.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.readers import MAX_FIELD_BYTES, MAX_ROW_BYTES

BOM = b"\xef\xbb\xbf"
CSV_HEADER = b"event_id,customer_id,ts,event_type,value"
# The reader regression tests (test_hostile_*.py): a minimal CSV header, a JSON line.
HEADER = "customer_id,ts,event_type\n"
OK = '{"customer_id": "%s", "ts": "2024-01-01", "event_type": "page_view"}\n'


def rows_of(n: int) -> str:
    return "".join(f"c{i},2024-01-01,page_view\n" for i in range(n))


@dataclass
class Hostile:
    path: Path
    stored: set[str]  # event ids that must end up in the store
    rejects: list[tuple[int, str]]  # (line, reason category) in line order
    repeats: int = 0  # valid rows whose id was stored already (counted as duplicates)
    first_values: dict[str, object] = field(default_factory=dict)  # id -> value the store keeps

    @property
    def valid(self) -> int:
        return len(self.stored) + self.repeats


def hostile_csv(folder: Path, name: str = "hostile.csv") -> Hostile:
    """CSV with a BOM and CRLF line ends, a 2 MB field and a 5 MB row among the rows."""
    big_field = b"y" * (2 * MAX_FIELD_BYTES)
    big_row = b"z" * (MAX_ROW_BYTES + (1 << 20))
    lines = [
        CSV_HEADER,  # 1
        b"e01,c1,2024-01-01T10:00:00Z,page_view,",  # 2 valid
        b"e02,c1,2024-01-02,purchase,9.5",  # 3 valid
        b'e03,c2,"2024-01-03,page_view,',  # 4 a quote that never closes
        b"e04,c2,2024-01-04,page_view,",  # 5 valid: swallowed by line 4, then read again
        b"e05,c\xff3,2024-01-05,page_view,",  # 6 invalid UTF-8
        b"e06,c\x003,2024-01-05,page_view,",  # 7 NUL byte
        b"e07,c3,garbage,page_view,",  # 8
        b"e08,c3,99999-01-01,page_view,",  # 9
        b"e09,c3,,page_view,",  # 10
        b"e10,c3,epoch,page_view,",  # 11 a word DuckDB would read as 1970-01-01
        b"e11,c4,2024-01-06,page_view," + big_field,  # 12 a field past the field limit
        b"e12,c4,2024-01-06,page_view," + big_row,  # 13 a row past the row limit
        b"e13,c4,2024-01-07,page_view,,extra",  # 14 too many fields
        b"e14,c4,2024-01-08",  # 15 too few
        b"e01,c1,2024-01-09,purchase,1",  # 16 valid, but e01 is stored already
        b"e15,c5,2024-01-10,page_view,",  # 17 valid
        b"e16,c5,2024-01-1",  # 18 the last line, cut mid-field (no line end)
    ]
    path = folder / name
    path.write_bytes(BOM + b"\r\n".join(lines))
    rejects = [
        (4, "unterminated quote"),
        (6, "invalid UTF-8 bytes"),
        (7, "NUL byte"),
        (8, "unparseable timestamp"),
        (9, "timestamp outside 1970-2100"),
        (10, "missing timestamp"),
        (11, "unparseable timestamp"),
        (12, "malformed CSV row"),  # the csv module's words: "field larger than field limit"
        (13, f"row longer than {MAX_ROW_BYTES} characters"),
        (14, "wrong number of fields"),
        (15, "wrong number of fields"),
        (18, "wrong number of fields"),
    ]
    # e01 twice: the first one (line 2, no value) is kept.
    return Hostile(path, {"e01", "e02", "e04", "e15"}, rejects, repeats=1,
                   first_values={"e01": None})


def _jsonl(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def hostile_jsonl(folder: Path, name: str = "hostile.jsonl") -> Hostile:
    """JSON lines with a BOM and CRLF line ends."""
    ok = {"customer_id": "k1", "ts": "2024-02-01T00:00:00Z", "event_type": "page_view"}
    lines = [
        BOM + _jsonl(event_id="j01", **ok),  # 1 valid
        _jsonl(event_id="j02", **ok | {"properties": {"a": {"b": 1}}}),  # 2 valid
        b'{"event_id": "j03", "customer_id": "k\xff", "ts": "2024-02-01", "event_type": "x"}',
        _jsonl(event_id="j04", **ok | {"customer_id": "k\x004"}),  # 4 NUL (as \u0000)
        _jsonl(event_id="j05", **ok | {"ts": "garbage"}),  # 5
        _jsonl(event_id="j06", **ok | {"ts": "99999-01-01"}),  # 6
        _jsonl(event_id="j07", **ok | {"ts": ""}),  # 7
        _jsonl(event_id="j08", **ok | {"note": "x" * (2 * MAX_FIELD_BYTES)}),  # 8 huge line
        b"[" * 100_000 + b"]" * 100_000,  # 9 nested past Python's recursion limit
        b'{"event_id": "j10", "customer_id": ' + b"1" * 5000 + b"}",  # 10 a 5000-digit number
        b"[1, 2]",  # 11 not an object
        _jsonl(event_id="j01", **ok | {"ts": "2024-02-09"}),  # 12 valid, j01 stored already
        _jsonl(event_id="j13", **ok | {"customer_id": "k2"}),  # 13 valid
        _jsonl(event_id="j14", ts="2024-02-01", event_type="page_view"),  # 14 no customer_id
        b'{"event_id": "j15", "customer_id": "k9", "ts": "2024-0',  # 15 cut mid-line
    ]
    path = folder / name
    path.write_bytes(b"\r\n".join(lines))
    rejects = [
        (3, "invalid UTF-8 bytes"),
        (4, "NUL byte"),
        (5, "unparseable timestamp"),
        (6, "timestamp outside 1970-2100"),
        (7, "missing timestamp"),
        (8, f"line longer than {MAX_FIELD_BYTES} bytes"),
        (9, "malformed JSON"),
        (10, "malformed JSON"),
        (11, "a JSON line must be an object"),
        (14, "missing customer_id"),
        (15, "malformed JSON"),
    ]
    return Hostile(path, {"j01", "j02", "j13"}, rejects, repeats=1)


def hostile_parquet(folder: Path, name: str = "hostile.parquet") -> Hostile:
    """Parquet with a NUL in an id, timestamps past DuckDB's range, a null id, a column named
    like the reader's line column, and two columns of one (unused) name."""
    n = 7
    arrays = [
        pa.array([f"p{i:02d}" for i in range(1, n)] + ["p01"]),
        pa.array(["q1", "q\x002", "q3", None, "q5", "q6", "q7"]),
        pa.array([datetime(2024, 3, 1), datetime(2024, 3, 2), datetime(2024, 3, 3),
                  datetime(2024, 3, 4), datetime(2024, 3, 5), datetime(2024, 3, 6),
                  datetime(2024, 3, 7)], pa.timestamp("s")),
        pa.array(["page_view"] * n),
        pa.array(range(100, 100 + n)),  # "_line": not the reader's line numbers
        pa.array(["a"] * n),
        pa.array(["b"] * n),
    ]
    names = ["event_id", "customer_id", "ts", "event_type", "_line", "note", "note"]
    table = pa.Table.from_arrays(arrays, names=names)
    # Row 5: a timestamp in year 287168 (9e12 s), past what DuckDB's cast could take before.
    ts = table["ts"].to_pylist()
    secs = [int(t.timestamp()) for t in ts]
    secs[4] = 9_000_000_000_000
    table = table.set_column(2, "ts", pa.array(secs, pa.timestamp("s")))
    path = folder / name
    pq.write_table(table, path, row_group_size=3)
    rejects = [(2, "NUL byte"), (4, "missing customer_id"), (5, "timestamp outside 1970-2100")]
    return Hostile(path, {"p01", "p03", "p06"}, rejects, repeats=1)


def cut_gzip_csv(folder: Path, rows: int = 4000, name: str = "cut.csv.gz") -> tuple[Path, int]:
    """A gzipped CSV cut in the middle; (path, how many rows are readable before the cut)."""
    text = CSV_HEADER + b"\n" + b"".join(
        f"g{i:05d},c{i % 97},2024-04-01T00:{i % 60:02d}:00Z,page_view,{i}\n".encode()
        for i in range(rows)
    )
    packed = gzip.compress(text, compresslevel=1)  # level 1: the cut lands mid-file
    path = folder / name
    path.write_bytes(packed[: len(packed) // 2])
    stream = gzip.GzipFile(fileobj=io.BytesIO(packed[: len(packed) // 2]))
    readable = b""
    try:
        while chunk := stream.read1(1 << 16):
            readable += chunk
    except EOFError:
        pass
    return path, readable.count(b"\n") - 1  # complete lines, less the header
