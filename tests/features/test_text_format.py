"""CSV/TSV in other delimiters and encodings (features.read_base.TextFormat): checked options,
files read with them, and the hints a file read the wrong way gets."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from features.errors import ConfigError, MappingError, SourceError
from features.mapping import identity_mapping, mapping_from_dict, with_text_options
from features.read_base import TextFormat, text_format
from features.readers import read_batches

EUROPEAN = "customer_id;ts;event_type;value\nc1;2025-03-01T10:00:00Z;purchase;12,50\n" \
           "Zoë;2025-03-02T10:00:00Z;page_view;\n"


def rows(path: Path, text: TextFormat) -> tuple[pa.Table, list[str]]:
    batches = list(read_batches(path, text=text))
    table = pa.concat_tables([b.table for b in batches])
    return table, [r.reason for b in batches for r in b.rejects]


def test_a_semicolon_cp1252_file_reads_with_its_delimiter_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(EUROPEAN.encode("cp1252"))
    table, rejects = rows(path, text_format(";", "cp1252", "--"))
    assert rejects == []
    assert table.column("customer_id").to_pylist() == ["c1", "Zoë"]
    assert table.column("value").to_pylist() == ["12,50", ""]  # the comma stays in its field


def test_the_same_file_read_as_utf8_rejects_the_row_it_cannot_decode(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(EUROPEAN.encode("cp1252"))
    table, rejects = rows(path, text_format(";", None, "--"))
    assert table.column("customer_id").to_pylist() == ["c1"]
    assert rejects == ["invalid UTF-8 bytes"]


def test_bytes_the_named_encoding_lacks_are_rejected_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"customer_id,ts\nc1,2025-03-01\nc\x81,2025-03-01\n")  # 0x81: not cp1252
    table, rejects = rows(path, text_format(None, "cp1252", "--"))
    assert table.column("customer_id").to_pylist() == ["c1"]
    assert rejects == ["bytes not valid cp1252"]


def test_utf16_with_its_encoding_reads_and_without_it_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "export.tsv"
    path.write_bytes("customer_id\tts\nc1\t2025-03-01\n".encode("utf-16"))
    table, _ = rows(path, text_format(None, "utf-16", "--"))
    assert table.column("customer_id").to_pylist() == ["c1"]
    with pytest.raises(SourceError, match=r"line 1: the header is not valid UTF-8 \(is the file "
                                          r"UTF-16 or cp1252\? name the encoding with --encoding"):
        rows(path, TextFormat())


@pytest.mark.parametrize(("given", "want"), [("tab", "\t"), ("\\t", "\t"), ("|", "|")])
def test_a_tab_can_be_spelled_out(given: str, want: str) -> None:
    assert text_format(given, None, "--").delimiter == want


@pytest.mark.parametrize(("delimiter", "encoding", "says"), [
    (";;", None, "--delimiter ';;': must be one character"),
    ('"', None, "--delimiter '\"': must be one character other than a letter, digit, quote"),
    ("x", None, "--delimiter 'x'"),
    (None, "klingon", "--encoding 'klingon': not an encoding Python knows"),
    (None, "base64", "--encoding 'base64': not a text encoding"),
])
def test_bad_options_are_refused_by_name(delimiter: str | None, encoding: str | None,
                                         says: str) -> None:
    with pytest.raises(ConfigError) as err:
        text_format(delimiter, encoding, "--")
    assert says in str(err.value)


def test_a_mapping_file_carries_them_and_the_command_line_overrides(tmp_path: Path) -> None:
    m = mapping_from_dict({"columns": {"customer_id": "id"}, "delimiter": ";",
                           "encoding": "latin-1"}, "m.yaml")
    assert m.text == TextFormat(";", "iso8859-1")
    assert with_text_options(m, None, "cp1252").text == TextFormat(";", "cp1252")
    assert with_text_options(m, "tab", None).text == TextFormat("\t", "iso8859-1")
    with pytest.raises(MappingError, match=r"m\.yaml: delimiter 'ab': must be one character"):
        mapping_from_dict({"delimiter": "ab"}, "m.yaml")
    with pytest.raises(MappingError, match=r"m\.yaml: encoding: expected text, got 1252"):
        mapping_from_dict({"encoding": 1252}, "m.yaml")


def test_json_lines_and_parquet_refuse_them(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"customer_id": "c1"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match="a delimiter or encoding applies to CSV and TSV files"):
        rows(path, text_format(None, "latin-1", "--"))


def test_a_header_read_as_one_column_suggests_the_delimiter() -> None:
    with pytest.raises(MappingError) as err:
        identity_mapping().resolve(["customer_id;ts;event_type"], "export.csv")
    assert ("a header of one column holding ';' suggests the file is delimited by ';': pass "
            "--delimiter ';'") in str(err.value)
