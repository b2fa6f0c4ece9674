"""Regression tests of the reader fixes for hostile files (issue #8, item 5): one per bug found."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import ConfigError, MappingError, SourceError
from features.loaders import LoadReport, load_events
from features.mapping import identity_mapping, load_preset, mapping_from_dict
from features.normalize import Normalizer
from features.readers import LINE_COLUMN, ReadLimits, read_batches
from features.store import EventStore
from features.taxonomy import Taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

pytestmark = pytest.mark.timeout(60)
HEADER = "customer_id,ts,event_type\n"
OK = '{"customer_id": "%s", "ts": "2024-01-01", "event_type": "page_view"}\n'


def rows_of(n: int) -> str:
    return "".join(f"c{i},2024-01-01,page_view\n" for i in range(n))


# -- unterminated quotes (they swallowed every row after them) -----------------------------------
def test_rows_after_an_unterminated_quote_load(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + "c0,2024-01-01,page_view\n" + 'c1,"2024-01-01,page_view\n'
                    + "c2,2024-01-01,page_view\nc3,2024-01-01,page_view\n")
    got = load(path)
    assert got.column("customer_id") == ["c0", "c2", "c3"]
    [(line, fld, reason, value)] = got.reject_tuples()
    assert (line, fld, value) == (3, "", 'c1,"2024-01-01,page_view')
    assert reason == ("unterminated quote: a quoted field opened on this line runs over 3 lines; "
                      "the lines after it are read again one by one")


def test_a_quote_closed_lines_later_costs_only_its_own_line(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + 'c1,"2024-01-01,page_view\nc2,2024-01-01,page_view\n'
                    + 'c3,2024-01-01,"page_view"\nc4,2024-01-01,page_view\n')
    got = load(path)
    assert got.column("customer_id") == ["c2", "c3", "c4"]
    assert [t[0] for t in got.reject_tuples()] == [2]
    assert got.reject_tuples()[0][2] == (
        "unterminated quote: a quoted field opened on this line runs over 3 lines "
        "(2 fields, expected 3); the lines after it are read again one by one")


def test_the_last_line_cut_inside_quotes(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + 'c1,2024-01-01,page_view\nc2,2024-01-01,"page_v')
    got = load(path)
    assert got.column("customer_id") == ["c1"]
    assert got.reject_tuples() == [
        (3, "", "unterminated quote: the file ends inside a quoted field",
         'c2,2024-01-01,"page_v')
    ]


def test_a_stray_quote_on_every_line_stays_linear(tmp_path: Path, load: LoadFn) -> None:
    """Each line is parsed at most twice (once inside the runaway record, once on its own)."""
    path = tmp_path / "e.csv"
    path.write_text(HEADER + 'c1,"2024-01-01,page_view\n' * 60_000 + rows_of(2))
    started = time.perf_counter()
    got = load(path)
    assert time.perf_counter() - started < 30
    assert got.column("customer_id") == ["c0", "c1"]
    assert got.report.rejected_total > 0


def test_a_multiline_field_is_held_to_the_field_limit_as_one_row(
    tmp_path: Path, load: LoadFn
) -> None:
    path = tmp_path / "e.csv"
    note = "\n".join(["x" * 40] * 20)  # 819 characters over 20 lines
    path.write_text("customer_id,ts,event_type,note\n"
                    f'c1,2024-01-01,page_view,"{note}"\nc2,2024-01-01,page_view,x\n')
    got = load(path, limits=ReadLimits(max_field_bytes=500, max_row_bytes=5000))
    assert got.column("customer_id") == ["c2"]
    assert got.reject_tuples() == [
        (2, "", "malformed CSV row: field larger than field limit (500)", "")
    ]


def test_a_record_of_many_tiny_lines_is_held_to_the_row_limit(
    tmp_path: Path, load: LoadFn
) -> None:
    """Each remembered line counts its overhead too, not only its characters."""
    path = tmp_path / "e.csv"
    note = "\n".join(["y"] * 100)  # 199 characters, but 100 lines to remember
    path.write_text("customer_id,ts,event_type,note\n"
                    f'c1,2024-01-01,page_view,"{note}"\nc2,2024-01-01,page_view,x\n')
    got = load(path, limits=ReadLimits(max_field_bytes=500, max_row_bytes=2000))
    assert "c2" in got.column("customer_id")
    first = got.reject_tuples()[0]
    assert first[0] == 2
    assert first[2].startswith("unterminated quote: a quoted field opened on this line runs over")
    assert "(row longer than 2000 characters)" in first[2]


def test_read_limits_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive"):
        ReadLimits(max_field_bytes=0)
    with pytest.raises(ConfigError, match="below max_field_bytes"):
        ReadLimits(max_field_bytes=100, max_row_bytes=50)


def test_store_ingest_takes_read_limits(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type,note\nc1,2024-01-01,page_view," + "n" * 300
                    + "\nc2,2024-01-01,page_view,n\n")
    with EventStore(tmp_path / "s.duckdb") as es:
        report = es.ingest(path, identity_mapping(), taxonomy,
                           limits=ReadLimits(max_field_bytes=100, max_row_bytes=200))
    assert report.append.inserted == 1
    assert report.load.rejected == Counter({"row longer than 200 characters": 1})


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
        (b"\xff\xfec\x00u\x00", "the header is not valid UTF-8 (is the file UTF-16?"),
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


# -- timestamps ----------------------------------------------------------------------------------
def test_epoch_numbers_past_duckdbs_range(tmp_path: Path, load: LoadFn) -> None:
    """make_timestamp raised on them, and the whole batch (the load) failed."""
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type\nc1,9223372036854775000,page_view\n"
                    "c2,-9223372036854775000,page_view\nc3,99999999999999999,page_view\n"
                    "c4,1700000000000000,page_view\n")
    mapping = mapping_from_dict({"columns": {f: f for f in ("customer_id", "ts", "event_type")},
                                 "ts_format": "epoch_us"}, "m")
    got = load(path, mapping)
    assert got.column("customer_id") == ["c4"]
    assert [t[:3] for t in got.reject_tuples()] == [
        (2, "ts", "timestamp outside 1970-2100"),
        (3, "ts", "timestamp outside 1970-2100"),
        (4, "ts", "timestamp outside 1970-2100"),
    ]


@pytest.mark.parametrize("word", ["epoch", "infinity", "-infinity", "now", "allballs"])
def test_words_are_not_timestamps(tmp_path: Path, load: LoadFn, word: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"{HEADER}c1,{word},page_view\n")
    assert load(path).reject_tuples() == [(2, "ts", "unparseable timestamp", word)]


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


# -- whatever the checks did not foresee, and files that cannot be read --------------------------
def test_a_database_error_on_some_rows_rejects_only_those(
    tmp_path: Path, load: LoadFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DuckDB error on one value failed the whole batch (the load); the batch is now halved
    until the rows that cause it are found, and they are rejected with the error."""
    original = Normalizer._ts_expr

    def fragile(self: Normalizer, schema: pa.Schema, resolved: dict[str, tuple[str, ...]]) -> str:
        good = original(self, schema, resolved)
        return ('CASE WHEN starts_with("customer_id", \'boom\') THEN '
                f'CAST(CAST("customer_id" AS INTEGER) AS TIMESTAMPTZ) ELSE {good} END')

    monkeypatch.setattr(Normalizer, "_ts_expr", fragile)
    path = tmp_path / "e.csv"
    ids = [f"boom{i}" if i in (3, 7) else f"c{i}" for i in range(10)]
    path.write_text(HEADER + "".join(f"{c},2024-01-01,page_view\n" for c in ids))
    got = load(path)
    assert got.column("customer_id") == [c for c in ids if not c.startswith("boom")]
    assert [(t[0], t[2].split(":")[0]) for t in got.reject_tuples()] == [
        (5, "value the checks did not foresee"), (9, "value the checks did not foresee")]
    assert "Conversion Error" in got.reject_tuples()[0][2]


def test_parquet_timestamps_past_duckdbs_range(tmp_path: Path, load: LoadFn) -> None:
    """DuckDB cannot scan these seconds as microseconds: the batch failed, and with it the load.
    Found by the halving above, they are rejected one by one."""
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({
        "customer_id": ["c1", "c2", "c3"],
        "ts": pa.array([1_700_000_000, 9 * 10**15, -9 * 10**15], pa.timestamp("s")),
        "event_type": ["page_view"] * 3,
    }), path)
    got = load(path)
    assert got.column("customer_id") == ["c1"]
    assert [(t[0], t[2].split(":")[0]) for t in got.reject_tuples()] == [
        (2, "value the checks did not foresee"), (3, "value the checks did not foresee")]


def test_isolating_failing_rows_has_a_query_budget(
    tmp_path: Path, load: LoadFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the budget a failing part is rejected whole: unbounded halving costs about two
    queries a row when every row fails (200k for a batch of 100k)."""
    monkeypatch.setattr("features.normalize.MAX_ISOLATING_QUERIES", 2)
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({
        "customer_id": [f"c{i}" for i in range(8)],
        "ts": pa.array([1_700_000_000] * 4 + [9 * 10**15] + [1_700_000_000] * 3,
                       pa.timestamp("s")),
        "event_type": ["page_view"] * 8,
    }), path)
    got = load(path)
    assert got.column("customer_id") == ["c0", "c1", "c2", "c3"]  # the half without the bad row
    assert [t[0] for t in got.reject_tuples()] == [5, 6, 7, 8]


def test_an_os_error_while_reading_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER)

    def denied(p: Path, gz: bool) -> None:
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr("features.readers._open", denied)
    with pytest.raises(SourceError, match=r"e\.csv: cannot be read: .*Permission denied"):
        list(read_batches(path))


# -- memory stays bounded by batch, not by file --------------------------------------------------
def test_batches_are_cut_by_rejects_and_by_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "x\n" * 1000)  # only rejects: they were held until the file's end
    batches = list(read_batches(bad, batch_rows=100))
    assert len(batches) >= 10
    assert sum(len(b.rejects) for b in batches) == 1000
    wide = tmp_path / "wide.csv"
    wide.write_text("customer_id,ts,event_type,note\n"
                    + "".join(f"c{i},2024-01-01,page_view,{'n' * 500}\n" for i in range(100)))
    batches = list(read_batches(wide, limits=ReadLimits(max_batch_bytes=5000)))
    assert len(batches) >= 10
    assert sum(b.table.num_rows for b in batches) == 100
