"""Delimited text (CSV, TSV) -> raw batches.

Python's csv module parses; this module feeds it physical lines and decides what happens when a
row goes wrong. Lines come from a bounded feed: no line is read into memory past the row limit,
and the lines of the record being parsed are remembered. A record that fails after running over
several lines (a quote opened and never closed swallows the rows after it) is rejected at its
first line, and the lines it swallowed are parsed again one by one, so the valid rows among them
still load. Each line is parsed at most twice, so a file full of stray quotes stays linear.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, deque
from collections.abc import Iterator

from features.errors import SourceError
from features.read_base import (
    LINE_COLUMN,
    BinarySource,
    RawBatch,
    ReadLimits,
    Reject,
    clip,
    invalid_utf8,
    is_stream_error,
    stream_error_reason,
    strings_table,
)
from features.read_base import STREAM_ERRORS as _STREAM_ERRORS

SKIP_CHUNK = 1 << 16  # how much of an over-long line is read at a time while skipping it
# What a remembered line costs beyond its text; counted against the row limit so a record of a
# million one-character lines is held to the limit too.
LINE_COST = 64
Line = tuple[int, str | None]  # (physical line number, text; None: longer than the row limit)
Record = tuple[int, list[str], str]  # (first line, fields, the text they were parsed from)


class _RowTooLongError(Exception):
    """The record passes the row limit (raised by the feed, through the csv reader)."""


class _LineFeed:
    """The csv reader's input: physical lines (\\n, \\r\\n or \\r ends one, as TextIOWrapper with
    newline="" splits them), none held past ``max_chars``; the current record's lines kept."""

    def __init__(self, text: io.TextIOWrapper, max_chars: int) -> None:
        self._text = text
        self._max = max_chars
        self._pending: deque[Line] = deque()
        self.number = 0  # physical lines read so far
        self.record: list[Line] = []
        self.eof_in_record = False  # the file ended while the csv reader wanted more of a record
        self._chars = 0

    def start_record(self) -> None:
        self.record, self._chars, self.eof_in_record = [], 0, False

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        item = self._pending.popleft() if self._pending else self._read()
        if item is None:
            # The csv reader asks for another line mid-record only inside a quoted field.
            self.eof_in_record = bool(self.record)
            raise StopIteration
        line = item[1]
        size = self._max + 1 if line is None else len(line) + LINE_COST
        if self.record and self._chars + size > self._max:
            self._pending.appendleft(item)  # this line starts the next record instead
            raise _RowTooLongError
        self.record.append(item)
        self._chars += size
        if line is None:
            raise _RowTooLongError
        return line

    def _read(self) -> Line | None:
        line = self._text.readline(self._max + 1)
        if not line:
            return None
        self.number += 1
        if len(line) <= self._max:
            return self.number, line
        while line and not line.endswith(("\n", "\r")):  # skip the rest without keeping it
            line = self._text.readline(SKIP_CHUNK)
        return self.number, None

    def stop_line(self) -> int:
        """The line where reading stopped: the start of the record being read, else the next."""
        return self.record[0][0] if self.record else self.number + 1


class _Records:
    """A delimited file's records in order: (first line, fields, text) or a Reject. ``width`` (the
    header's field count, set by the caller once known) tells a runaway record from a row."""

    def __init__(self, binary: BinarySource, source: str, delimiter: str,
                 limits: ReadLimits, encoding: str = "utf-8") -> None:
        # The feed bounds records; the csv module's own (process-wide) field limit must not
        # cut a field shorter than a record may be.
        csv.field_size_limit(max(csv.field_size_limit(), limits.max_row_bytes + 1))
        # Bytes the encoding cannot decode arrive as lone surrogates: the row is rejected.
        text = io.TextIOWrapper(binary, encoding="utf-8-sig" if encoding == "utf-8" else encoding,
                                errors="surrogateescape", newline="")
        self._feed = _LineFeed(text, limits.max_row_bytes)
        self._reader = csv.reader(self._feed, delimiter=delimiter)
        self._source, self._delimiter, self._max = source, delimiter, limits.max_row_bytes
        self.width: int | None = None

    def __iter__(self) -> Iterator[Record | Reject]:
        feed = self._feed
        while True:
            feed.start_record()
            error: str | None = None
            try:
                fields: list[str] | None = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                fields, error = None, f"malformed CSV row: {exc}"
            except _RowTooLongError:
                fields, error = None, f"row longer than {self._max} characters"
            except _STREAM_ERRORS as exc:
                yield Reject(self._source, feed.stop_line(), stream_error_reason(exc))
                return
            record = feed.record
            if error is None and len(record) == 1 and not feed.eof_in_record:
                if fields:  # the common case: one line, one row (of any width: the caller checks)
                    yield record[0][0], fields, record[0][1] or ""
                continue  # else a blank line
            if error is None and feed.eof_in_record:
                error = "unterminated quote: the file ends inside a quoted field"
            yield from self._settle(record, fields, error)

    def _settle(self, record: list[Line], fields: list[str] | None,
                error: str | None) -> list[Record | Reject]:
        """A record that failed, or ran over several lines."""
        first, text = record[0]
        if error is None and fields is not None and len(fields) == (self.width or len(fields)):
            return [(first, fields, "".join(line or "" for _, line in record))]
        if len(record) == 1:
            raw = "" if text is None else clip(text.rstrip("\r\n"))
            return [Reject(self._source, first, error or "", raw)]
        # Several lines and it went wrong: a quote opened on the first line swallowed the rest.
        if error is None:
            error = f"{len(fields or [])} fields, expected {self.width}"
        why = "" if error.startswith("unterminated quote") else f" ({error})"
        reason = (f"unterminated quote: a quoted field opened on this line runs over "
                  f"{len(record)} lines{why}; the lines after it are read again one by one")
        raw = clip((text or "").rstrip("\r\n"))
        out: list[Record | Reject] = [Reject(self._source, first, reason, raw)]
        for number, line in record[1:]:
            single = self._single(number, line or "")
            if single is not None:
                out.append(single)
        return out

    def _single(self, number: int, line: str) -> Record | Reject | None:
        """One line parsed on its own; a quote it leaves open is its own fault, not a reason to
        swallow the next lines again."""
        try:
            fields = next(csv.reader([line], delimiter=self._delimiter, strict=True), [])
        except csv.Error as exc:
            reason = (f"unterminated quote: {exc}" if "unexpected end of data" in str(exc)
                      else f"malformed CSV row: {exc}")
            return Reject(self._source, number, reason, clip(line.rstrip("\r\n")))
        return (number, fields, line) if fields else None


class _CsvBatch:
    """Rows of the wanted columns, column by column, and the rejects, up to one batch."""

    def __init__(self, header: list[str], keep: list[int], rejects: list[Reject]) -> None:
        self.header, self.keep = header, keep
        self.rejects = rejects
        self.columns: list[list[str | None]] = [[] for _ in keep]
        self.lines: list[int] = []
        self.chars = 0

    def add(self, line: int, fields: list[str], chars: int) -> None:
        for column, i in zip(self.columns, self.keep, strict=True):
            column.append(fields[i])
        self.lines.append(line)
        self.chars += chars

    def full(self, batch_rows: int, limits: ReadLimits) -> bool:
        return (len(self.lines) + len(self.rejects) >= batch_rows
                or self.chars >= limits.max_batch_bytes)

    def flush(self) -> RawBatch:
        names = [self.header[i] for i in self.keep]
        out = RawBatch(strings_table(names, self.columns, self.lines), self.rejects, self.header)
        self.columns = [[] for _ in self.keep]
        self.lines, self.rejects, self.chars = [], [], 0
        return out


def read_delimited(binary: BinarySource, source: str, delimiter: str, batch_rows: int,
                   limits: ReadLimits, wanted: frozenset[str] | None,
                   encoding: str = "utf-8") -> Iterator[RawBatch]:
    records = _Records(binary, source, delimiter, limits, encoding)
    invalid = "invalid UTF-8 bytes" if encoding in ("utf-8", "utf-8-sig") else (
        f"bytes not valid {encoding}")
    batch: _CsvBatch | None = None
    early: list[Reject] = []  # a compressed stream that ends before the header
    for item in records:
        if isinstance(item, Reject):
            if batch is not None:
                batch.rejects.append(item)
            elif is_stream_error(item.reason):
                early.append(item)
            else:
                raise SourceError(f"{source}: line {item.line}: unreadable header: {item.reason}")
        elif batch is None:
            header, keep = _header(item[1], item[0], source, wanted, invalid)
            records.width = len(header)
            batch = _CsvBatch(header, keep, early)
        else:
            line, fields, text = item
            reject = _row_reject(fields, text, len(batch.header), source, line, delimiter,
                                 limits, invalid)
            if reject is None:
                batch.add(line, fields, len(text))
            else:
                batch.rejects.append(reject)
        if batch is not None and batch.full(batch_rows, limits):
            yield batch.flush()
    if batch is None:
        yield RawBatch(strings_table([], [], []), early, [])
    else:
        yield batch.flush()


def _row_reject(fields: list[str], text: str, width: int, source: str, line: int,
                delimiter: str, limits: ReadLimits, invalid: str) -> Reject | None:
    """Why a parsed row cannot load, if it cannot; checks on the row's text first (cheap)."""
    if len(fields) != width:
        reason = f"wrong number of fields: expected {width}, got {len(fields)}"
        return Reject(source, line, reason, clip(delimiter.join(fields)))
    if not text.isascii() and invalid_utf8(fields):
        return Reject(source, line, invalid, clip(delimiter.join(fields)))
    if len(text) > limits.max_field_bytes and max(map(len, fields)) > limits.max_field_bytes:
        # The wording of the csv module's own field-limit error, which this check replaced.
        reason = f"malformed CSV row: field larger than field limit ({limits.max_field_bytes})"
        return Reject(source, line, reason)
    if "\x00" in text:
        # C strings end at NUL: such an id or label would read differently downstream.
        return Reject(source, line, "NUL byte: in the row", clip(delimiter.join(fields)))
    return None


def _header(fields: list[str], line: int, source: str, wanted: frozenset[str] | None,
            invalid: str = "invalid UTF-8 bytes") -> tuple[list[str], list[int]]:
    """The column names, and the indexes of the wanted ones (all when nothing is asked for)."""
    header = [h.strip() for h in fields]
    if invalid_utf8(header) or any("\x00" in h for h in header):
        # UTF-16 text read as UTF-8: its BOM is invalid UTF-8, its ASCII letters gain NULs.
        what = ("is not valid UTF-8 (is the file UTF-16 or cp1252?" if "UTF-8" in invalid
                else f"has {invalid} (is it another encoding?")
        raise SourceError(f"{source}: line {line}: the header {what} name the encoding with "
                          "--encoding, or `encoding:` in a mapping file)")
    # A source column named like the line column would collide with it: never read.
    keep = [i for i, h in enumerate(header)
            if h != LINE_COLUMN and (wanted is None or h in wanted)]
    counts = Counter(header[i] for i in keep)
    dupes = sorted(h for h, n in counts.items() if n > 1)
    if dupes:
        raise SourceError(f"{source}: line {line}: duplicate column names {dupes}")
    return header, keep
