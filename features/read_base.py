"""What every raw reader shares: rejects, raw batches, size limits, and how a bad byte stream
is described.

A reader turns one source file into batches of source rows (projected onto the columns the
mapping can use) plus the rows it could not parse, each with its line. Limits keep one hostile
row, or one hostile file, from taking the process's memory: a row is rejected, never loaded,
when it is too large, and a batch is handed on when it holds enough text.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from dataclasses import dataclass, field

import pyarrow as pa

from features.errors import ConfigError

LINE_COLUMN = "_line"
# Reject reasons read "category: details"; the load report counts rejects per category.
BATCH_ROWS = 100_000
MAX_FIELD_BYTES = 1 << 20  # a single field above 1 MiB is rejected, not loaded
# A CSV row may hold several fields, or run over several physical lines inside quotes; past this
# it is rejected without being read into memory (a 50 MB line costs 4 MiB, not 50 MB+).
MAX_ROW_BYTES = 4 << 20
# A batch is handed on once it holds this much text, whatever its row count: 100k rows of 1 MiB
# fields would otherwise be 100 GB in memory.
MAX_BATCH_BYTES = 64 << 20
MAX_RAW_CHARS = 500  # how much of a rejected row the rejects file keeps
MAX_LISTED_COLUMNS = 200  # source column names kept for error messages (JSON keys can be many)
# What reading a compressed stream raises when its data ends early or is corrupt.
STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
STREAM_CATEGORIES = ("file ends early", "corrupt compressed data")
# What a text reader reads from: a plain or a gzip-decompressing binary stream.
BinarySource = io.BufferedReader | gzip.GzipFile


@dataclass(frozen=True)
class ReadLimits:
    """Size limits of one load. Delimited text is measured in characters (bytes for ASCII),
    JSON lines in bytes; a JSON line is held to the field limit (its values are its fields)."""

    max_field_bytes: int = MAX_FIELD_BYTES
    max_row_bytes: int = MAX_ROW_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES

    def __post_init__(self) -> None:
        if min(self.max_field_bytes, self.max_row_bytes, self.max_batch_bytes) < 1:
            raise ConfigError(f"read limits must be positive: {self}")
        if self.max_row_bytes < self.max_field_bytes:
            raise ConfigError(
                f"max_row_bytes ({self.max_row_bytes}) is below max_field_bytes "
                f"({self.max_field_bytes}): a row holds its fields"
            )


@dataclass(frozen=True)
class TextFormat:
    """How delimited text is written: its delimiter (None: by file type, `,` or tab) and its
    character encoding. JSON Lines are UTF-8 by definition and Parquet carries its own types, so
    anything else is for CSV and TSV only."""

    delimiter: str | None = None
    encoding: str = "utf-8"

    @property
    def utf8(self) -> bool:
        return self.encoding in ("utf-8", "utf-8-sig")

    @property
    def default(self) -> bool:
        return self.delimiter is None and self.utf8


UTF8_TEXT = TextFormat()  # the default: by file type, UTF-8

# What users type for a tab, which a shell or YAML may hand over spelled out.
TAB_SPELLINGS = {"\\t": "\t", "tab": "\t", "TAB": "\t"}


def text_format(delimiter: str | None, encoding: str | None, where: str) -> TextFormat:
    """A checked TextFormat; ``where`` names the option or mapping key in the error."""
    if delimiter is not None:
        delimiter = TAB_SPELLINGS.get(delimiter, delimiter)
        if len(delimiter) != 1 or delimiter in "\"\r\n" or delimiter.isalnum():
            raise ConfigError(f"{where}delimiter {delimiter!r}: must be one character other "
                              "than a letter, digit, quote or line break (e.g. ';', '|', 'tab')")
    name = "utf-8"
    if encoding is not None:
        try:
            info = codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(f"{where}encoding {encoding!r}: not an encoding Python knows "
                              "(e.g. utf-8, cp1252, latin-1, utf-16)") from None
        if not getattr(info, "_is_text_encoding", True):
            raise ConfigError(f"{where}encoding {encoding!r}: not a text encoding")
        name = info.name
    return TextFormat(delimiter, name)


@dataclass(frozen=True)
class Reject:
    source: str
    line: int
    reason: str
    raw: str = ""
    field: str = ""  # the field at fault, when the reader knows it (a JSON key given twice)


@dataclass
class RawBatch:
    """Source rows (the wanted columns as read) plus a ``_line`` column, the rows that failed to
    parse, and the file's column names in source order (for messages about missing columns)."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    source_columns: list[str] | None = None


def clip(text: str) -> str:
    """A rejected row as the rejects file keeps it: at most MAX_RAW_CHARS, valid UTF-8 (bytes
    that were not UTF-8 arrive as lone surrogates and would stop the rejects file's encoder)."""
    text = text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "…"
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    # A NUL would end the value early in tools that read the rejects file as C strings.
    return text.replace("\x00", "\u2400") if "\x00" in text else text


def invalid_utf8(values: list[str]) -> bool:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape").
    for v in values:
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def stream_error_reason(exc: BaseException) -> str:
    """Why reading stopped: a compressed file cut short, or one that is not (or no longer)
    valid compressed data."""
    if isinstance(exc, EOFError):
        return f"file ends early: truncated compressed data ({exc})"
    return f"corrupt compressed data: {exc}"


def is_stream_error(reason: str) -> bool:
    return reason.startswith(STREAM_CATEGORIES)


def strings_table(names: list[str], columns: list[list[str | None]], lines: list[int]) -> pa.Table:
    arrays = [pa.array(col, pa.string()) for col in columns]
    arrays.append(pa.array(lines, pa.int64()))
    return pa.Table.from_arrays(arrays, names=[*names, LINE_COLUMN])


def wanted_names(wanted: frozenset[str] | None) -> frozenset[str] | None:
    """The wanted source columns, without the reserved line column (a source column of that
    name is never read: it would collide with the line numbers)."""
    return None if wanted is None else wanted - {LINE_COLUMN}
