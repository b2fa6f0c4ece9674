"""Raw readers: a source file -> batches of source rows with their line numbers.

Readers never crash on bad content: rows they cannot parse (wrong field count, invalid UTF-8,
oversized fields, malformed JSON, a gzip stream cut short) become rejects with the line, and
reading goes on with the next row where the format allows it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import SourceError

LINE_COLUMN = "_line"
# Reject reasons read "category: details"; the load report counts rejects per category.
BATCH_ROWS = 100_000
MAX_FIELD_BYTES = 1 << 20  # a single field above 1 MiB is rejected, not loaded
MAX_RAW_CHARS = 500  # how much of a rejected row the rejects file keeps
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# What read_batches opens a text source as: a plain or a gzip-decompressing binary stream.
BinarySource = io.BufferedReader | gzip.GzipFile


@dataclass(frozen=True)
class Reject:
    source: str
    line: int
    reason: str
    raw: str = ""


@dataclass
class RawBatch:
    """Source rows (columns as read) plus a ``_line`` column, and the rows that failed to parse."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)


def detect_format(path: Path) -> tuple[str, bool]:
    """(format, gzipped) from the file name."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise SourceError(
            f"{path}: unknown file type; expected one of "
            f"{sorted(FORMATS)} (optionally .gz) or a directory of them"
        )
    if fmt == "parquet" and gz:
        raise SourceError(f"{path}: gzipped Parquet is not supported; Parquet compresses itself")
    return fmt, gz


def source_files(path: Path) -> list[Path]:
    """A file, or the loadable files of a directory in name order."""
    if path.is_dir():
        files = []
        for p in sorted(path.rglob("*")):
            if not p.is_file() or p.name.startswith((".", "_")):
                continue
            try:
                detect_format(p)
            except SourceError:
                continue
            files.append(p)
        if not files:
            raise SourceError(f"{path}: directory holds no loadable files")
        return files
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    detect_format(path)
    return [path]


def read_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[RawBatch]:
    fmt, gz = detect_format(path)
    if fmt == "parquet":
        yield from _read_parquet(path, batch_rows)
        return
    opener = gzip.open if gz else open
    with opener(path, "rb") as binary:
        if fmt == "jsonl":
            yield from _read_jsonl(binary, str(path), batch_rows)
        else:
            delimiter = "\t" if fmt == "tsv" else ","
            yield from _read_delimited(binary, str(path), delimiter, batch_rows)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "…"


def _invalid_utf8(values: list[str]) -> bool:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape").
    for v in values:
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _strings_table(header: list[str], rows: list[list[Any]], lines: list[int]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    arrays = [pa.array(col, pa.string()) for col in columns]
    arrays.append(pa.array(lines, pa.int64()))
    return pa.Table.from_arrays(arrays, names=[*header, LINE_COLUMN])


_TRUNCATED = (EOFError, zlib.error, gzip.BadGzipFile)


def _read_delimited(
    binary: BinarySource, source: str, delimiter: str, batch_rows: int
) -> Iterator[RawBatch]:
    csv.field_size_limit(MAX_FIELD_BYTES)
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejects.append(Reject(source, start, f"malformed CSV row: {exc}"))
            continue
        except _TRUNCATED as exc:
            rejects.append(
                Reject(source, start, f"file ends early: truncated compressed data ({exc})")
            )
            break
        if not row:
            continue
        if header is None:
            header = _unique_header(row, source)
            continue
        if len(row) != len(header):
            reason = f"wrong number of fields: expected {len(header)}, got {len(row)}"
            rejects.append(Reject(source, start, reason, _clip(delimiter.join(row))))
            continue
        if _invalid_utf8(row):
            raw = delimiter.join(row).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            rejects.append(Reject(source, start, "invalid UTF-8 bytes", _clip(raw)))
            continue
        rows.append(row)
        lines.append(start)
        if len(rows) >= batch_rows:
            yield RawBatch(_strings_table(header, rows, lines), rejects)
            rows, lines, rejects = [], [], []
    if header is None:
        header = []
    yield RawBatch(_strings_table(header, rows, lines), rejects)


def _unique_header(row: list[str], source: str) -> list[str]:
    header = [h.strip() for h in row]
    if _invalid_utf8(header):
        raise SourceError(f"{source}: line 1: the header is not valid UTF-8")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise SourceError(f"{source}: line 1: duplicate column names {dupes}")
    return header


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become ``parent_child`` columns and stay available whole as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat[name] = json.dumps(value, ensure_ascii=False, sort_keys=True)
            flat.update(_flatten(value, f"{name}_"))
        elif isinstance(value, list):
            flat[name] = json.dumps(value, ensure_ascii=False)
        elif value is None:
            flat[name] = None
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        else:
            flat[name] = str(value)
    return flat


def _read_jsonl(binary: BinarySource, source: str, batch_rows: int) -> Iterator[RawBatch]:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    number = 0

    def flush() -> RawBatch:
        keys: dict[str, None] = {}
        for rec in records:
            keys.update(dict.fromkeys(rec))
        header = list(keys)
        rows = [[rec.get(k) for k in header] for rec in records]
        return RawBatch(_strings_table(header, rows, lines), rejects)

    while True:
        number += 1
        try:
            raw = binary.readline(MAX_FIELD_BYTES + 1)
        except _TRUNCATED as exc:
            rejects.append(
                Reject(source, number, f"file ends early: truncated compressed data ({exc})")
            )
            break
        if not raw:
            break
        if len(raw) > MAX_FIELD_BYTES and not raw.endswith(b"\n"):
            if not _skip_rest_of_line(binary):
                rejects.append(Reject(source, number, "file ends early: truncated compressed data"))
                break
            rejects.append(Reject(source, number, f"line longer than {MAX_FIELD_BYTES} bytes"))
            continue
        if not raw.strip():
            continue
        record = _parse_json_line(raw, source, number, rejects)
        if record is None:
            continue
        records.append(record)
        lines.append(number)
        if len(records) >= batch_rows:
            yield flush()
            records, lines, rejects = [], [], []
    yield flush()


def _skip_rest_of_line(binary: BinarySource) -> bool:
    try:
        while True:
            chunk = binary.readline(MAX_FIELD_BYTES)
            if not chunk or chunk.endswith(b"\n"):
                return True
    except _TRUNCATED:
        return False


def _parse_json_line(
    raw: bytes, source: str, number: int, rejects: list[Reject]
) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        rejects.append(Reject(source, number, f"invalid UTF-8 bytes: at byte {exc.start}",
                              _clip(raw.decode("utf-8", "replace"))))
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"malformed JSON: {exc.msg} at column {exc.colno}"
        rejects.append(Reject(source, number, reason, _clip(text)))
        return None
    if not isinstance(obj, dict):
        rejects.append(Reject(source, number, "a JSON line must be an object", _clip(text)))
        return None
    return _flatten(obj)


def _read_parquet(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file: {exc}") from exc
    first_row = 1
    for group in range(pf.num_row_groups):
        n = pf.metadata.row_group(group).num_rows
        try:
            table = pf.read_row_group(group)
        except (pa.ArrowException, OSError) as exc:
            last_row = first_row + n - 1
            reason = f"unreadable row group: group {group}, rows {first_row}-{last_row}: {exc}"
            reject = Reject(str(path), first_row, reason)
            yield RawBatch(pa.table({LINE_COLUMN: pa.array([], pa.int64())}), [reject])
            first_row += n
            continue
        for start in range(0, n, batch_rows):
            part = table.slice(start, batch_rows)
            first = first_row + start
            lines = pa.array(range(first, first + part.num_rows), pa.int64())
            yield RawBatch(part.append_column(LINE_COLUMN, lines))
        first_row += n
