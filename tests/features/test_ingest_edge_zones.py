"""Time zones and offsets in a file's timestamps: abbreviations are refused with the zone to
name instead (DuckDB read BST as Bangladesh, PST in July as PDT), offsets stay within ±14:00,
and the ISO spellings the API takes load too (features/iso_time.py lists what a file takes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pyarrow as pa
import pytest
from pydantic import TypeAdapter, ValidationError

from features.iso_time import BAD_OFFSET
from features.mapping import identity_mapping
from features.normalize import Normalizer
from features.readers import LINE_COLUMN
from features.taxonomy import Taxonomy
from features.zone_names import REFUSED_ZONE
from serving.schema_fields import EventTime
from tests.features.loader_cases import utc

Outcome = datetime | tuple[str, str]  # the stored instant, or (field, reason) of the reject


def _normalise(texts: list[str], taxonomy: Taxonomy,
               formats: tuple[str, ...] = ("ISO8601",)) -> list[Outcome]:
    """Each text's outcome, in order, as one batch (rows are read on their own)."""
    raw = pa.table({"customer_id": ["c"] * len(texts), "ts": texts,
                    "event_type": ["page_view"] * len(texts),
                    LINE_COLUMN: pa.array(range(len(texts)), pa.int64())})
    normalizer = Normalizer(replace(identity_mapping(), ts_format=formats), taxonomy)
    try:
        valid, rejects = normalizer(raw, "t.csv")
    finally:
        normalizer.close()
    got: dict[int, Outcome] = {
        line: (field, reason) for line, field, reason in zip(
            rejects["line"].to_pylist(), rejects["field"].to_pylist(),
            rejects["reason"].to_pylist(), strict=True)}
    stored = iter(valid["ts"].to_pylist())
    return [got[i] if i in got else next(stored) for i in range(len(texts))]


def _zone(text: str) -> tuple[str, str]:
    return ("ts", f"{REFUSED_ZONE}: {text}")


ZONES: list[tuple[str, Outcome]] = [
    ("2026-07-10 10:00:00 BST", _zone("BST is ambiguous: name the zone, e.g. Europe/London")),
    ("2026-07-10 10:00:00 CST", _zone("CST is ambiguous: name the zone, e.g. America/Chicago "
                                      "or Asia/Shanghai")),
    ("2026-07-10 10:00:00 PST", _zone("PST is ambiguous: name the zone, e.g. "
                                      "America/Los_Angeles")),
    ("2026-07-10 10:00:00 PDT", _zone("PDT is ambiguous: name the zone, e.g. "
                                      "America/Los_Angeles")),
    ("2026-07-10 10:00:00 ist", _zone("ist is ambiguous: name the zone, e.g. Asia/Kolkata, "
                                      "Europe/Dublin or Asia/Jerusalem")),
    ("2026-07-10 10:00:00 EST", _zone("EST is ambiguous: name the zone, e.g. America/New_York")),
    ("2026-07-10 10:00:00 Japan", _zone("Japan is an old alias: name the zone, Asia/Tokyo")),
    ("2026-07-10 10:00:00 Zulu", _zone("Zulu is an alias of UTC: write UTC or Z")),
    ("2026-07-10 10:00:00 SystemV/AST4", _zone(
        "SystemV/AST4 does not name one zone: name it as Region/City (e.g. Europe/London), UTC, "
        "or give an offset (+01:00)")),
    ("2026-07-10 10:00:00 Europe/London", utc(2026, 7, 10, 9)),
    ("2026-07-10 10:00:00 america/los_angeles", utc(2026, 7, 10, 17)),
    ("2026-07-10 10:00:00 US/Eastern", utc(2026, 7, 10, 14)),
    ("2026-07-10 10:00:00 America/Argentina/Buenos_Aires", utc(2026, 7, 10, 13)),
    ("2026-07-10 10:00:00 Etc/GMT+2", utc(2026, 7, 10, 12)),  # POSIX sign: UTC-2
    ("2026-07-10 10:00:00 UTC", utc(2026, 7, 10, 10)),
    ("2026-07-10 10:00:00 GMT", utc(2026, 7, 10, 10)),
    ("2026-07-10 10:00:00 Nowhere/Zone", ("ts", "unparseable timestamp")),
]


def test_zone_names_must_name_one_zone(taxonomy: Taxonomy) -> None:
    assert _normalise([t for t, _ in ZONES], taxonomy) == [want for _, want in ZONES]


def test_a_percent_z_pattern_refuses_abbreviations_too(taxonomy: Taxonomy) -> None:
    """The file-level way of naming zones: a strptime pattern ending in %Z (DuckDB's %Z takes
    every name it knows, BST as Bangladesh)."""
    texts = ["10/07/2026 10:00 BST", "10/07/2026 10:00 Europe/London", "10/07/2026 10:00 PST"]
    assert _normalise(texts, taxonomy, ("%d/%m/%Y %H:%M %Z",)) == [
        _zone("BST is ambiguous: name the zone, e.g. Europe/London"), utc(2026, 7, 10, 9),
        _zone("PST is ambiguous: name the zone, e.g. America/Los_Angeles")]


OFFSETS: list[tuple[str, Outcome]] = [
    ("2026-01-10T10:00:00+25:00", ("ts", BAD_OFFSET)),
    ("2026-01-10T10:00:00+99:99", ("ts", BAD_OFFSET)),
    ("2026-01-10T10:00:00-24:00", ("ts", BAD_OFFSET)),
    ("2026-01-10T10:00:00+05:60", ("ts", BAD_OFFSET)),
    ("2026-01-10T10:00:00+05:30:15", ("ts", BAD_OFFSET)),  # seconds: neither ISO nor RFC 3339
    ("2026-01-10T10:00+25:00", ("ts", BAD_OFFSET)),
    ("2026-01-10T10:00:00+23:59", ("ts", BAD_OFFSET)),  # RFC 3339 spells it; no zone has it
    ("2026-01-10T10:00:00-14:01", ("ts", BAD_OFFSET)),
    ("2026-01-10T10:00:00+1401", ("ts", BAD_OFFSET)),
    ("2026-01-10T10:00:00+14:00", utc(2026, 1, 9, 20)),  # Kiribati
    ("2026-01-10T10:00:00-14:00", utc(2026, 1, 11)),
    ("2026-01-10T10:00:00-12:00", utc(2026, 1, 10, 22)),  # Baker Island
    ("2026-01-10T10:00:00+13:59", utc(2026, 1, 9, 20, 1)),
    ("2026-01-10T10:00+05:45", utc(2026, 1, 10, 4, 15)),  # Nepal, without seconds
]


def test_offsets_stay_within_those_of_time_zones(taxonomy: Taxonomy) -> None:
    assert _normalise([t for t, _ in OFFSETS], taxonomy) == [want for _, want in OFFSETS]


def test_a_percent_lower_z_pattern_checks_its_offset(taxonomy: Taxonomy) -> None:
    texts = ["2026-01-10 10:00:00 +25:00", "2026-01-10 10:00:00 -0800"]
    assert _normalise(texts, taxonomy, ("%Y-%m-%d %H:%M:%S %z",)) == [
        ("ts", BAD_OFFSET), utc(2026, 1, 10, 18)]


# Spellings the API (pydantic) takes, with the instant both read.
SHARED: list[tuple[str, datetime]] = [
    ("2026-01-10T10:00Z", utc(2026, 1, 10, 10)),
    ("2026-01-10T10:00+05:30", utc(2026, 1, 10, 4, 30)),
    ("2026-01-10T10:00-0530", utc(2026, 1, 10, 15, 30)),
    ("2026-01-10T10:00:00z", utc(2026, 1, 10, 10)),
    ("2026-01-10t10:00:00Z", utc(2026, 1, 10, 10)),
    ("2026-01-10t10:00:00+01:00", utc(2026, 1, 10, 9)),
    ("2026-01-10T10:00:00,5Z", utc(2026, 1, 10, 10, 0, 0, 500000)),
    ("2026-01-10T10:00:00,25+01:00", utc(2026, 1, 10, 9, 0, 0, 250000)),
    ("2026-01-10T10:00:00.123456789+01:00", utc(2026, 1, 10, 9, 0, 0, 123456)),
    ("2026-01-10 10:00:00Z", utc(2026, 1, 10, 10)),
    ("2026-01-10T10:00:00+0530", utc(2026, 1, 10, 4, 30)),
    ("2026-01-10T10:00:00-00:00", utc(2026, 1, 10, 10)),
    ("2026-01-10T10:00:00+14:00", utc(2026, 1, 9, 20)),
]
# What a file takes and the API does not (features/iso_time.py says why), and the reverse.
FILE_ONLY = ["2026-01-10T10:00:00", "2026-01-10", "2026-01-10T10:00:00-08",
             "2026-01-10T24:00:00Z", "2026-01-10 10:00:00 Asia/Tokyo"]
API_ONLY: list[str] = []
NEITHER = ["2026-01-10T10:00:00+25:00", "2026-01-10T10:00:00+15:00",
           "2026-01-10T10:00:00+05:30:15", "2026-01-10T10Z",
           "2026-01-10 10:00:00 BST", "2026-01-10T10:00:00 +05:30"]


def _api(text: str) -> datetime | None:
    try:
        out: datetime = TypeAdapter(EventTime).validate_python(text)
    except ValidationError:
        return None
    return out


def test_the_file_reads_what_the_api_reads(taxonomy: Taxonomy) -> None:
    texts = [t for t, _ in SHARED]
    assert _normalise(texts, taxonomy) == [want for _, want in SHARED]
    assert [_api(t) for t in texts] == [want for _, want in SHARED]


@pytest.mark.parametrize(("texts", "file", "api"), [
    (FILE_ONLY, True, False), (API_ONLY, False, True), (NEITHER, False, False)])
def test_the_differences_are_the_listed_ones(taxonomy: Taxonomy, texts: list[str], file: bool,
                                             api: bool) -> None:
    got = _normalise(texts, taxonomy) if texts else []
    assert [isinstance(g, datetime) for g in got] == [file] * len(texts)
    assert [_api(t) is not None for t in texts] == [api] * len(texts)
