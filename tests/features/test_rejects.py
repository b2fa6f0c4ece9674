"""Every kind of bad row is rejected with its line, field and reason; truncated and oversized
input; physical line numbers."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.readers import MAX_FIELD_BYTES
from features.schema import EVENT_FIELDS, MAX_ID_CHARS, MAX_LABEL_CHARS, MAX_PROPERTIES_CHARS

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import (
    CANONICAL_HEADER,
    csv_text,
    jsonl_text,
)

# -- every kind of bad row -------------------------------------------------------------------------
LONG_ID = "x" * (MAX_ID_CHARS + 1)


BAD_ROWS = [
    CANONICAL_HEADER.encode(),  # 1
    b"e01,c1,2024-01-01T10:00:00Z,page_view,Email,,,",  # 2 valid
    b"e02,,2024-01-01,page_view,,,,",  # 3
    b"e03,c1,yesterday,page_view,,,,",  # 4
    b"e04,c1,,page_view,,,,",  # 5
    b"e05,c1,0001-01-01T00:00:00Z,page_view,,,,",  # 6
    b"e06,c1,2150-06-01,page_view,,,,",  # 7
    b"e07,c1,2024-01-01,,,,,",  # 8
    b"e08,c1,2024-01-01,teleport,,,,",  # 9
    b"e09,c1,2024-01-01,purchase,,12.5 USD,,",  # 10
    b"e10,c1,2024-01-01,purchase,,-3,,",  # 11
    b"e11,c1,2024-01-01,purchase,,nan,,",  # 12
    b"e12,c1,2024-01-01,purchase,,inf,,",  # 13
    b'e13,c1,2024-01-01,purchase,,,,"[1,2]"',  # 14
    b"e14,c1,2024-01-01,purchase,,,,not json",  # 15
    f"e15,{LONG_ID},2024-01-01,purchase,,,,".encode(),  # 16
    f"{LONG_ID},c1,2024-01-01,purchase,,,,".encode(),  # 17
    b"e17,c1,2024-01-01,purchase",  # 18
    b"e18,c1,2024-01-01,purchase,,,,,extra",  # 19
    b"e19,c\xe91,2024-01-01,purchase,,,,",  # 20
    b"e20,c1,2024-03-01,Add To Cart,, 7 ,,",  # 21 valid
    b",c2,2024-01-01,purchase,,-inf,,",  # 22
    b",c2,2024-01-01,purchase,,NaN,,",  # 23
    b'e22,c1,2024-01-01,purchase,,,,"""quoted"""',  # 24
    b"e23,c1,20240101,page_view,,,,",  # 25
    b"e24,,notadate,,,,,",  # 26 first failing check
    b",c3,2024-01-01,purchase,,1e3,,",  # 27 valid
    b"e25,c1,2024-01-01,purchase,,1e308,,",  # 28 overflows any revenue sum
    b",c3,2024-01-02,purchase,,1e12,,",  # 29 valid: the bound itself
]

# (line, field, reason, value) of each rejected row of BAD_ROWS, sorted
EXPECTED_REJECTS = [
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
    (
        19,
        "",
        "wrong number of fields: expected 8, got 9",
        "e18,c1,2024-01-01,purchase,,,,,extra",
    ),
    (20, "", "invalid UTF-8 bytes", "e19,c\ufffd1,2024-01-01,purchase,,,,"),
    (22, "value", "value is not finite", "-inf"),
    (23, "value", "value is not finite", "NaN"),
    (24, "properties", "properties is not a JSON object", '"quoted"'),
    (25, "ts", "unparseable timestamp", "20240101"),
    (26, "customer_id", "missing customer_id", ""),
    (28, "value", "value above 1,000,000,000,000", "1e308"),
]


def test_every_bad_row_reason(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\n".join(BAD_ROWS) + b"\n")
    got = load(path)

    assert [r["event_id"] for r in got.rows][:2] == ["e01", "e20"]
    assert got.column("value") == [None, 7.0, 1000.0, 1e12]
    assert got.column("event_type") == ["page_view", "add_to_cart", "purchase", "purchase"]

    src = str(path)
    assert {r["source"] for r in got.rejects} == {src}
    assert sorted(got.reject_tuples()) == EXPECTED_REJECTS
    assert got.report.rows_read == 28
    assert got.report.valid == 4
    assert got.report.rejected == Counter(
        {
            "missing customer_id": 2,
            "unparseable timestamp": 2,
            "missing timestamp": 1,
            "timestamp outside 1970-2100": 2,
            "missing event_type": 1,
            "event_type unknown to the taxonomy": 1,
            "value is not a number": 1,
            "negative value": 1,
            "value above 1,000,000,000,000": 1,
            "value is not finite": 4,
            "properties is not a JSON object": 3,
            "customer_id longer than 256 characters": 1,
            "event_id longer than 256 characters": 1,
            "wrong number of fields": 2,
            "invalid UTF-8 bytes": 1,
        }
    )


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
    row = {f: "" for f in EVENT_FIELDS} | {
        "customer_id": "c",
        "ts": "2024-01-01",
        "event_type": "page_view",
    }
    row[column] = text
    path = tmp_path / "e.csv"
    path.write_text(csv_text([row]), encoding="utf-8")
    got = load(path)
    assert got.reject_tuples() == [(2, column, reason, text[:80])]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # DuckDB reads these as numbers; the project's rule for a number in text does not.
        ("1_000", "value is not a plain decimal number: ASCII digits, a point and an exponent "
                  "only (no _)"),
        ("12_345.5", "value is not a plain decimal number: ASCII digits, a point and an exponent "
                     "only (no _)"),
        ("\u0663", "value is not a number"),  # an Arabic-Indic three
        ("\uff11\uff12", "value is not a number"),  # full-width 12
        ("0x10", "value is not a number"),
    ],
)
def test_a_value_must_be_a_plain_decimal(tmp_path: Path, load: LoadFn, text: str,
                                         reason: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type,value\nc1,2024-01-01,page_view,2.5\n"
                    f"c1,2024-01-01,page_view,{text}\n", encoding="utf-8")
    got = load(path)
    assert got.column("value") == [2.5]
    assert got.reject_tuples() == [(3, "value", reason, text)]


def test_a_value_is_trimmed_as_every_text_field_is(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type,value\n c1 ,2024-01-01,page_view, 5 \n"
                    "c1,2024-01-01,page_view,\t+1.5e2\n", encoding="utf-8")
    assert load(path).column("value") == [5.0, 150.0]


def test_bad_json_lines(tmp_path: Path, load: LoadFn) -> None:
    good = {"customer_id": "c1", "ts": "2024-01-01", "event_type": "page_view"}
    lines = [
        json.dumps(good).encode(),  # 1
        b"",  # 2 blank
        b'{"customer_id": "c2", "ts": ',  # 3
        b"[1, 2]",  # 4
        b'"just a string"',  # 5
        b'{"customer_id": "c\xff", "ts": "2024-01-01", "event_type": "page_view"}',  # 6
        b'{"customer_id": "cccc\xfe\xfe", "ts": "2024-01-01", "event_type": "x"}',  # 7
        json.dumps(good | {"value": "abc"}).encode(),  # 8
        json.dumps(good | {"properties": [1]}).encode(),  # 9
        json.dumps(good | {"properties": "x"}).encode(),  # 10
        json.dumps(good | {"customer_id": None}).encode(),  # 11
        b"   ",  # 12 blank
        json.dumps(good | {"customer_id": "c13", "extra": {"a": 1}}).encode(),  # 13
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
    assert got.report.rejected == Counter(
        {
            "malformed JSON": 1,
            "a JSON line must be an object": 2,
            "invalid UTF-8 bytes": 2,
            "value is not a number": 1,
            "properties is not a JSON object": 2,
            "missing customer_id": 1,
        }
    )


# -- truncated and oversized input -----------------------------------------------------------------
def _random_rows(n: int) -> list[dict[str, str]]:
    rng = random.Random(42)
    return [
        {
            "customer_id": f"c{rng.randrange(10**12)}",
            "ts": f"2024-01-01T00:{i % 60:02d}:00Z",
            "event_type": "page_view",
            "value": f"{rng.random():.12f}",
        }
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
    path = tmp_path / "cut_in_header.csv.gz"
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
    path.write_text(
        jsonl_text(
            [
                base | {"customer_id": "c1"},
                base | {"customer_id": "c2", "note": "x" * MAX_FIELD_BYTES},
                base | {"customer_id": "c3"},
            ]
        ),
        encoding="utf-8",
    )
    got = load(path)
    assert got.column("customer_id") == ["c1", "c3"]
    assert got.reject_tuples() == [(2, "", f"line longer than {MAX_FIELD_BYTES} bytes", "")]


# -- line numbers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_are_physical_lines(tmp_path: Path, load: LoadFn, newline: str) -> None:
    text = (
        newline.join(
            [
                "customer_id,ts,event_type,note",  # 1
                'c1,2024-01-01,page_view,"two',  # 2
                'lines"',  # 3
                "c2,2024-01-01,teleport,",  # 4
                "",  # 5 blank
                'c3,2024-01-01,page_view,"a',  # 6
                "b",  # 7
                'c"',  # 8
                "c4,notadate,page_view,",  # 9
                "c5,2024-01-01",  # 10
                ",2024-01-01,page_view,",  # 11
            ]
        )
        + newline
    )
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
    rows = [
        {"customer_id": f"c{i}", "ts": "2024-01-01", "event_type": "page_view"} for i in range(10)
    ]
    rows[6]["event_type"] = "teleport"
    rows[8]["ts"] = "soon"
    path = tmp_path / f"e{suffix}"
    if suffix == ".csv":
        path.write_text(
            "customer_id,ts,event_type\n"
            + "".join(f"{r['customer_id']},{r['ts']},{r['event_type']}\n" for r in rows)
        )
        offset = 2
    else:
        path.write_text(jsonl_text(rows))
        offset = 1
    got = load(path, batch_rows=3)
    assert got.batches >= 3
    assert got.column("customer_id") == [f"c{i}" for i in range(10) if i not in (6, 8)]
    assert [t[:2] for t in sorted(got.reject_tuples())] == [
        (6 + offset, "event_type"),
        (8 + offset, "ts"),
    ]
