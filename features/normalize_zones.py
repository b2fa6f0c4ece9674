"""Local times a daylight-saving change skips: text such as ``2024-03-10 02:30:00
America/New_York`` names a wall-clock time that never happened in that zone.

DuckDB (ICU) still reads one: it moves the time forward by the gap (02:30 above becomes 07:30
UTC, 03:30 EDT), so a bad clock or a local time computed with a wrong offset would be stored
an hour off without a word. Such rows are rejected instead, asking for an offset.

A repeated local time (``2024-11-03 01:30:00 America/New_York``, when the clocks go back) is
kept: both readings are real moments and a log in local time has events in both, so
rejecting them would drop an hour of real data every year. DuckDB reads the later one
(standard time after the change, as PostgreSQL does: 06:30 UTC above), at most an hour off;
README "Events in" says so.
"""

from __future__ import annotations

from features.iso_time import ZONE_NAME, ends_in_good_offset, local_part, tail_of
from features.mapping import ISO8601

SKIPPED_LOCAL_TIME = ("local time skipped by a daylight-saving change: it never happened in that "
                      "zone; give an offset")


# A zone name at the end of a timestamp, after a space (as ISO text and %Z patterns put it).
TRAILING_NAME = r" ([A-Za-z][A-Za-z0-9_/+-]*)$"


def refused_zone(text: str, refused: str) -> str:
    """SQL: ``text`` ends in a zone name the loader refuses (``features.zone_names``: an
    abbreviation or alias). ``refused``: those names, lower case, as an SQL list literal."""
    return f"list_contains({refused}, lower(regexp_extract({text}, '{TRAILING_NAME}', 1)))"


def strptime_guard(text: str, fmt: str, refused: str) -> str | None:
    """SQL a strptime pattern's reading of ``text`` must pass, None when it needs none.
    DuckDB's %Z takes every name it knows (BST as Bangladesh), so no word of the text may be
    a refused name; its %z takes any offset (+99:99), so one ending the pattern must be in
    range (ISO text's rule, ``features.iso_time``)."""
    conditions = []
    if "%Z" in fmt:
        words = f"regexp_extract_all(lower({text}), '[a-z][a-z0-9_/+-]*')"
        conditions.append(f"NOT list_has_any({refused}, {words})")
    if fmt.rstrip().endswith("%z"):
        conditions.append(ends_in_good_offset(text))
    return " AND ".join(conditions) or None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _local_readings(text: str, tail: str, formats: tuple[str, ...]) -> list[str]:
    """SQL reading the local time before a zone name, one per format that reads zone names,
    in the mapping's order (the order that read the row): ISO 8601 (as ``iso_expr`` reads
    it), and strptime patterns ending in %Z, without it."""
    local_text = f"left({text}, length({text}) - length({tail}))"
    out = []
    for fmt in formats:
        if fmt == ISO8601:
            out.append(local_part(text, tail))
        elif fmt.endswith("%Z") and fmt[:-2].strip():
            out.append(f"TRY_STRPTIME({local_text}, {_quote(fmt[:-2].rstrip())})")
    return out


def skipped_local_time(text: str, ts: str, zones: str, formats: tuple[str, ...]) -> str:
    """SQL: true when ``text`` (a column of text timestamps) is a local time followed by a
    zone name DuckDB knows, and that time does not exist in the zone: the instant DuckDB
    read (``ts``), shown in the zone, is another local time. ``zones``: the known names,
    lower case, as an SQL list literal; ``formats``: the mapping's, whose %Z patterns read
    the local part too.

    Cheap for the rows that name no zone: a name ends in two letters (``…Z`` and ``…+05:30``
    do not), which is tested before any regular expression runs. A row that names one pays
    one more time zone conversion (about 3.5 s per million rows), the price of knowing."""
    tail = tail_of(text)
    zone = f"regexp_extract({tail}, '{ZONE_NAME}', 1)"
    readings = _local_readings(text, tail, formats)
    if not readings:  # epochs, patterns without %Z: no zone names to check
        return "false"
    local = readings[0] if len(readings) == 1 else f"coalesce({', '.join(readings)})"
    looks_named = (f"length({text}) > 2 AND ord({text}[-1]) >= 65 "
                   f"AND ord({text}[-2]) >= 65")
    # timezone() fails the whole query on a name it does not know: only known ones reach it.
    known = f"list_contains({zones}, lower({zone})) AND {local} IS NOT NULL"
    return (f"(CASE WHEN {looks_named} THEN (CASE WHEN {known} THEN "
            f"timezone({zone}, {ts}) <> {local} ELSE false END) "
            "ELSE false END)")
