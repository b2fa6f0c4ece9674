"""JSON lines -> raw batches.

Each line is one object. Nested objects are flattened into ``parent_child`` columns (Segment's
``context.campaign.source`` becomes ``context_campaign_source``), but only along the names the
mapping can use: flattening everything copies a deep object once per level, and objects keyed by
ids (``{"sku123": …}``) would add a column per id, so a few MB of such lines took gigabytes.
"""

from __future__ import annotations

import codecs
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from features.read_base import (
    LINE_COLUMN,
    MAX_LISTED_COLUMNS,
    STREAM_ERRORS,
    BinarySource,
    RawBatch,
    ReadLimits,
    Reject,
    clip,
    stream_error_reason,
    strings_table,
)

SKIP_CHUNK = 1 << 16
# Without a mapping to say which columns matter, nested objects are flattened this deep only.
MAX_FLATTEN_DEPTH = 8
# A batch without a mapping (every key a column) is handed on past this many cells.
MAX_BATCH_CELLS = 10_000_000


class _LineTooLongError(Exception):
    pass


@dataclass(frozen=True)
class _Projection:
    names: frozenset[str] | None  # the columns to keep; None: all of them
    prefixes: frozenset[str]  # names that have a wanted column nested under them

    @classmethod
    def of(cls, wanted: frozenset[str] | None) -> _Projection:
        if wanted is None:
            return cls(None, frozenset())
        prefixes = {w[:i] for w in wanted for i, ch in enumerate(w) if ch == "_" and i}
        return cls(wanted, frozenset(prefixes))

    def keeps(self, name: str) -> bool:
        # A key named like the line column would collide with it: never read.
        return name in self.names if self.names is not None else name != LINE_COLUMN

    def descends(self, name: str, depth: int) -> bool:
        return name in self.prefixes if self.names is not None else depth < MAX_FLATTEN_DEPTH


class _JsonBatch:
    """Records of one batch and its rejects. With a mapping, the columns seen stay in every later
    batch of the file, so a batch whose records all lack one still has it (as nulls)."""

    def __init__(self, projection: _Projection) -> None:
        self._projection = projection
        self.records: list[dict[str, Any]] = []
        self.lines: list[int] = []
        self.rejects: list[Reject] = []
        self.columns: dict[str, None] = {}
        self.listed: dict[str, None] = {}  # source keys, for messages about missing columns
        self.chars = 0

    def add(self, line: int, obj: dict[str, Any], flat: dict[str, Any], size: int) -> None:
        self.records.append(flat)
        self.lines.append(line)
        self.columns.update(dict.fromkeys(flat))
        room = MAX_LISTED_COLUMNS - len(self.listed)
        if room > 0:
            self.listed.update(dict.fromkeys(itertools.islice(obj, room)))
        self.chars += size

    def full(self, batch_rows: int, limits: ReadLimits) -> bool:
        return (len(self.lines) + len(self.rejects) >= batch_rows
                or self.chars >= limits.max_batch_bytes
                or len(self.columns) * len(self.lines) >= MAX_BATCH_CELLS)

    def flush(self) -> RawBatch:
        names = list(self.columns)
        columns = [[rec.get(k) for rec in self.records] for k in names]
        listed = list(self.listed) + [n for n in names if n not in self.listed]
        out = RawBatch(strings_table(names, columns, self.lines), self.rejects, listed)
        self.records, self.lines, self.rejects, self.chars = [], [], [], 0
        if self._projection.names is None:
            self.columns = {}
        return out


def read_jsonl(binary: BinarySource, source: str, batch_rows: int, limits: ReadLimits,
               wanted: frozenset[str] | None) -> Iterator[RawBatch]:
    projection = _Projection.of(wanted)
    batch = _JsonBatch(projection)
    limit = limits.max_field_bytes
    number = 0
    while True:
        number += 1
        try:
            raw = _read_line(binary, limit)
        except _LineTooLongError:
            batch.rejects.append(Reject(source, number, f"line longer than {limit} bytes"))
            continue
        except STREAM_ERRORS as exc:
            batch.rejects.append(Reject(source, number, stream_error_reason(exc)))
            break
        if not raw:
            break
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        if raw.strip():
            parsed = _parse_json_line(raw, source, number, projection)
            if isinstance(parsed, Reject):
                batch.rejects.append(parsed)
            else:
                batch.add(number, parsed[0], parsed[1], len(raw))
        if batch.full(batch_rows, limits):
            yield batch.flush()
    yield batch.flush()


def _read_line(binary: BinarySource, limit: int) -> bytes:
    """The next line (b"" at the end); an over-long one is skipped unread and raises."""
    raw = binary.readline(limit + 1)
    if len(raw) <= limit or raw.endswith(b"\n"):
        return raw
    while raw and not raw.endswith(b"\n"):
        raw = binary.readline(SKIP_CHUNK)
    raise _LineTooLongError


def _parse_json_line(raw: bytes, source: str, number: int,
                     projection: _Projection) -> tuple[dict[str, Any], dict[str, Any]] | Reject:
    """(the object, its flattened wanted columns) or why the line is rejected."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject(source, number, f"invalid UTF-8 bytes: at byte {exc.start}",
                      clip(raw.decode("utf-8", "replace")))
    try:
        obj = json.loads(text)
        if not isinstance(obj, dict):
            return Reject(source, number, "a JSON line must be an object", clip(text))
        flat = _flatten(obj, projection)
    except json.JSONDecodeError as exc:
        return Reject(source, number, f"malformed JSON: {exc.msg} at column {exc.colno}",
                      clip(text))
    except RecursionError:
        return Reject(source, number, "malformed JSON: nested too deeply", clip(text))
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return Reject(source, number, f"malformed JSON: {str(exc).split(';')[0]}", clip(text))
    if "\\u0000" in text and any(isinstance(v, str) and "\x00" in v for v in flat.values()):
        return Reject(source, number, "NUL byte: in the row", clip(text))
    return obj, flat


def _flatten(obj: dict[str, Any], projection: _Projection, prefix: str = "",
             depth: int = 0) -> dict[str, Any]:
    """Wanted columns of one object: nested objects become ``parent_child`` columns and stay
    available whole as JSON text; lists stay JSON text; scalars become text."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if projection.keeps(name):
                flat[name] = json.dumps(value, ensure_ascii=False, sort_keys=True)
            if projection.descends(name, depth):
                flat.update(_flatten(value, projection, f"{name}_", depth + 1))
        elif not projection.keeps(name):
            continue
        elif isinstance(value, list):
            flat[name] = json.dumps(value, ensure_ascii=False)
        elif value is None:
            flat[name] = None
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        else:
            flat[name] = str(value)
    return flat
