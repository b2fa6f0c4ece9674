"""JSON lines -> raw batches.

Each line is one object. Nested objects are flattened into ``parent_child`` columns (Segment's
``context.campaign.source`` becomes ``context_campaign_source``), but only along the names the
mapping can use: flattening everything copies a deep object once per level, and objects keyed by
ids (``{"sku123": …}``) would add a column per id, so a few MB of such lines took gigabytes.

Values become text as a CSV file would spell them, so ids match across formats: a number with
an integral value is written without a fraction (``1.0`` -> ``1``, as ``1`` in a CSV). What has
no such spelling (an object, a list, true/false, a fractional or inexact number) is noted per
cell in the batch's schema metadata (``json_kinds``): an id cannot be one, and the normaliser
rejects a row whose customer_id or event_id comes from such a cell, naming line and field.
"""

from __future__ import annotations

import codecs
import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

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
KINDS_KEY = b"journey.json_kinds"  # schema metadata: {column: {line: kind}} of non-text values
MAX_EXACT_FLOAT = 2**53  # past it a float's integer value is not the one written
# JSON can spell half a UTF-16 pair (``"\ud800"``): Python decodes it to a lone surrogate,
# which is no character and which Arrow cannot store as UTF-8. Only a line holding such an
# escape is looked at again (valid pairs, an emoji as ``\ud83d\ude00``, match too: harmless).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
Kinds = dict[str, dict[int, str]]


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
        self.kinds: Kinds = {}
        self.chars = 0

    def add(self, line: int, obj: dict[str, Any], flat: dict[str, Any], size: int,
            kinds: dict[str, str]) -> None:
        self.records.append(flat)
        self.lines.append(line)
        for name, kind in kinds.items():
            self.kinds.setdefault(name, {})[line] = kind
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
        table = strings_table(names, columns, self.lines)
        if self.kinds:
            table = table.replace_schema_metadata({KINDS_KEY: json.dumps(self.kinds)})
        out = RawBatch(table, self.rejects, listed)
        self.records, self.lines, self.rejects, self.chars, self.kinds = [], [], [], 0, {}
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
                batch.add(number, parsed[0], parsed[1], len(raw), parsed[2])
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


def _parse_json_line(
    raw: bytes, source: str, number: int, projection: _Projection
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]] | Reject:
    """(the object, its flattened wanted columns, the kinds of its non-text values) or why the
    line is rejected."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject(source, number, f"invalid UTF-8 bytes: at byte {exc.start}",
                      clip(raw.decode("utf-8", "replace")))
    try:
        obj = _DECODER.decode(text)
        if not isinstance(obj, dict):
            return Reject(source, number, "a JSON line must be an object", clip(text))
        kinds: dict[str, str] = {}
        flat = _flatten(obj, projection, kinds)
    except json.JSONDecodeError as exc:
        return Reject(source, number, f"malformed JSON: {exc.msg} at column {exc.colno}",
                      clip(text))
    except _DuplicateKeyError:
        return _duplicate_key(text, source, number)
    except RecursionError:
        return Reject(source, number, "malformed JSON: nested too deeply", clip(text))
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return Reject(source, number, f"malformed JSON: {str(exc).split(';')[0]}", clip(text))
    if "\\u0000" in text and any(isinstance(v, str) and "\x00" in v for v in flat.values()):
        return Reject(source, number, "NUL byte: in the row", clip(text))
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        bad = _lone_surrogate(flat)
        if bad is not None:
            return Reject(source, number, f"invalid Unicode: {bad[0]} holds a lone surrogate "
                          f"(\\u{bad[1]:04x}), half of a UTF-16 pair, which is no character",
                          clip(text), bad[0])
        # A key the mapping does not read is still listed in messages about columns.
        obj = {_escaped(k): v for k, v in obj.items()}
    return obj, flat, kinds


def _escaped(text: str) -> str:
    """Text that can be written: a lone surrogate as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _lone_surrogate(flat: dict[str, Any]) -> tuple[str, int] | None:
    """(the field, the code point) of the first lone surrogate in what the line would load:
    a kept column's name (shown escaped: it cannot be written as it is) or value."""
    for name, value in flat.items():
        for text in (name, value):
            if isinstance(text, str) and not text.isascii():
                code = _first_surrogate(text)
                if code is not None:
                    return _escaped(name), code
    return None


def _first_surrogate(text: str) -> int | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ord(text[exc.start])
    return None


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of the line; a key written twice in it (which json.loads would settle by
    keeping the last, silently) makes the line a reject. About 0.45 us a line."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKeyError
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


class _Pairs(list[tuple[str, Any]]):
    """An object's pairs as written (a rejected line is parsed again to name its key)."""


def _duplicate_key(text: str, source: str, number: int) -> Reject:
    """The reject of a line with a key written twice, naming the key (parsed again, slowly:
    only such lines pay for it)."""
    try:
        where = _first_duplicate(json.loads(text, object_pairs_hook=_Pairs)) or "a key"
    except RecursionError:
        where = "a key"
    return Reject(source, number, f"duplicate key: {where} given twice", clip(text),
                  where if where != "a key" else "")


def _first_duplicate(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key written twice in one object (``context.page``)."""
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        children = []
        for key, item in value:
            here = f"{path}.{key}" if path else key
            if key in seen:
                return here
            seen.add(key)
            children.append((here, item))
    elif isinstance(value, list):
        children = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    else:
        return None
    for here, item in children:
        found = _first_duplicate(item, here)
        if found:
            return found
    return None


def _flatten(obj: dict[str, Any], projection: _Projection, kinds: dict[str, str],
             prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Wanted columns of one object: nested objects become ``parent_child`` columns and stay
    available whole as JSON text; lists stay JSON text; scalars become text. ``kinds`` gets
    the columns whose value is not text or a whole number (see the module's docstring)."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if projection.keeps(name):
                flat[name] = json.dumps(value, ensure_ascii=False, sort_keys=True)
                kinds[name] = "a JSON object"
            if projection.descends(name, depth):
                flat.update(_flatten(value, projection, kinds, f"{name}_", depth + 1))
        elif not projection.keeps(name):
            continue
        elif isinstance(value, list):
            flat[name] = json.dumps(value, ensure_ascii=False)
            kinds[name] = "a JSON list"
        elif value is None:
            flat[name] = None
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
            kinds[name] = "true or false"
        elif isinstance(value, float):
            flat[name] = _float_text(value, name, kinds)
        else:
            flat[name] = str(value)
    return flat


def _float_text(value: float, name: str, kinds: dict[str, str]) -> str:
    """A JSON number read as a float: integral ones as a CSV would spell them (1.0 -> "1")."""
    if value.is_integer() and abs(value) <= MAX_EXACT_FLOAT:
        return str(int(value))
    kinds[name] = ("not a finite number" if not math.isfinite(value)
                   else "a number too large to be exact" if value.is_integer()
                   else "a number with a fraction")
    return str(value)


def non_text_ids(table: pa.Table,
                 ids: dict[str, tuple[str, ...]]) -> dict[int, tuple[str, str, str]]:
    """{line: (field, reason, value)} of the rows whose id (``ids``: field -> its columns, a
    row taking the first non-empty one) was a JSON value with no text spelling: ``{"a": 1}``
    stored as an id would never match the customer's other events, nor 1.5 a CSV's "1.50"."""
    kinds = json_kinds(table)
    bad: dict[int, tuple[str, str, str]] = {}
    if not kinds:
        return bad
    rows = {line: i for i, line in enumerate(table[LINE_COLUMN].to_pylist())}
    for name, columns in ids.items():
        tagged = {line for c in columns for line in kinds.get(c, {})}
        for line in sorted(tagged - bad.keys()):
            for column in columns:
                value = table[column][rows[line]].as_py()
                if value is None or not value.strip(" \t\n\r"):  # missing: the next column
                    continue
                kind = kinds.get(column, {}).get(line)
                if kind is not None:
                    bad[line] = (name, f"{name} is {kind}, not text or a whole number",
                                 value[:80])
                break
    return bad


def json_kinds(table: pa.Table) -> Kinds:
    """{column: {line: kind}} of the cells of a JSON-lines batch that held no text or whole
    number (an object, a list, true/false, a fractional number); {} for other formats."""
    meta = table.schema.metadata or {}
    raw = meta.get(KINDS_KEY)
    if raw is None:
        return {}
    return {col: {int(line): kind for line, kind in cells.items()}
            for col, cells in json.loads(raw).items()}
