"""Raw readers: a source file -> batches of source rows with their line numbers.

Readers never crash on bad content: rows they cannot parse (wrong field count, invalid UTF-8,
NUL bytes, oversized rows or fields, an unterminated quote, malformed JSON, a gzip stream cut
short or corrupt) become rejects with the line, and reading goes on with the next row where the
format allows it. A file that cannot be read at all (missing, unknown type, not Parquet, an
unreadable header) is a SourceError naming it. Only the columns the mapping can use are kept
(``wanted``), so memory follows what is loaded, not what the file carries.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.errors import SourceError
from features.read_base import (
    BATCH_ROWS,
    LINE_COLUMN,
    MAX_FIELD_BYTES,
    MAX_RAW_CHARS,
    MAX_ROW_BYTES,
    UTF8_TEXT,
    BinarySource,
    RawBatch,
    ReadLimits,
    Reject,
    TextFormat,
    wanted_names,
)
from features.read_csv import read_delimited
from features.read_jsonl import read_jsonl

__all__ = [
    "BATCH_ROWS", "FORMATS", "LINE_COLUMN", "MAX_FIELD_BYTES", "MAX_RAW_CHARS", "MAX_ROW_BYTES",
    "RawBatch", "ReadLimits", "Reject", "detect_format", "read_batches", "source_files",
]
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


def read_batches(
    path: Path,
    batch_rows: int = BATCH_ROWS,
    limits: ReadLimits | None = None,
    wanted: frozenset[str] | None = None,
    text: TextFormat = UTF8_TEXT,
) -> Iterator[RawBatch]:
    """Raw batches of one file: the ``wanted`` source columns (None: all) and the rejects.
    ``text``: the delimiter and encoding of CSV and TSV files (refused for other types)."""
    fmt, gz = detect_format(path)
    limits = limits or ReadLimits()
    wanted = wanted_names(wanted)
    if fmt in ("jsonl", "parquet") and not text.default:
        raise SourceError(f"{path}: a delimiter or encoding applies to CSV and TSV files only "
                          "(JSON Lines are UTF-8, Parquet carries its own types); load this "
                          "file without them")
    try:
        if fmt == "parquet":
            yield from _read_parquet(path, batch_rows, wanted)
            return
        with _open(path, gz) as binary:
            if fmt == "jsonl":
                yield from read_jsonl(binary, str(path), batch_rows, limits, wanted)
            else:
                delimiter = text.delimiter or ("\t" if fmt == "tsv" else ",")
                yield from read_delimited(binary, str(path), delimiter, batch_rows, limits,
                                          wanted, text.encoding)
    except OSError as exc:  # permissions, I/O errors: the file as a whole cannot be read
        raise SourceError(f"{path}: cannot be read: {exc}") from exc


def _open(path: Path, gz: bool) -> AbstractContextManager[BinarySource]:
    if gz:
        return cast(AbstractContextManager[BinarySource], gzip.open(path, "rb"))
    return path.open("rb")


def _parquet_columns(path: Path, names: list[str], wanted: frozenset[str] | None) -> list[str]:
    """The file's columns to read: the wanted ones present, each once."""
    keep = [n for n in names if n != LINE_COLUMN and (wanted is None or n in wanted)]
    dupes = sorted(n for n, k in Counter(keep).items() if k > 1)
    if dupes:
        raise SourceError(f"{path}: duplicate column names {dupes}")
    return keep


def _read_parquet(path: Path, batch_rows: int,
                  wanted: frozenset[str] | None) -> Iterator[RawBatch]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file: {exc}") from exc
    names = list(pf.schema_arrow.names)
    columns = _parquet_columns(path, names, wanted)
    first_row = 1
    for group in range(pf.num_row_groups):
        n = pf.metadata.row_group(group).num_rows
        try:
            table = pf.read_row_group(group, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            last_row = first_row + n - 1
            reason = f"unreadable row group: group {group}, rows {first_row}-{last_row}: {exc}"
            reject = Reject(str(path), first_row, reason)
            yield RawBatch(pa.table({LINE_COLUMN: pa.array([], pa.int64())}), [reject], names)
            first_row += n
            continue
        for start in range(0, n, batch_rows):
            part = table.slice(start, batch_rows)
            first = first_row + start
            lines = pa.array(range(first, first + part.num_rows), pa.int64())
            part, rejects = _without_nul_rows(part.append_column(LINE_COLUMN, lines), str(path))
            yield RawBatch(part, rejects, names)
        first_row += n


def _without_nul_rows(table: pa.Table, source: str) -> tuple[pa.Table, list[Reject]]:
    """Rows with a NUL in a text column become rejects (text formats reject them when read)."""
    bad = None
    first_bad: dict[int, str] = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_dictionary(column.type):
            # Looking at the few distinct values first spares decoding the column.
            if not any(_has_nul(chunk.dictionary) for chunk in column.chunks):
                continue
            column = column.cast(column.type.value_type)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        hit = pc.fill_null(pc.match_substring(column, "\x00"), False)
        if not pc.any(hit).as_py():
            continue
        for i in pc.indices_nonzero(hit).to_pylist():
            first_bad.setdefault(i, name)
        bad = hit if bad is None else pc.or_(bad, hit)
    if bad is None:
        return table, []
    lines = table[LINE_COLUMN].to_pylist()
    rejects = [Reject(source, lines[i], f"NUL byte: in column {name!r}")
               for i, name in sorted(first_bad.items())]
    return table.filter(pc.invert(bad)), rejects


def _has_nul(values: pa.Array) -> bool:
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    return bool(pc.any(pc.match_substring(values, "\x00")).as_py())
