"""ISO 8601 text to a UTC instant in DuckDB SQL, each row read on its own (the loaders'
``ts_format: ISO8601``)."""

from __future__ import annotations

# ISO text: what follows the time (HH:MM[:SS[.f]]), an offset, and a zone name after a space.
AFTER_TIME = r"^[^:]*\d:\d\d(?::\d\d(?:\.\d*)?)?(.*)$"
_OFFSET = r"^(?:Z|[+-]\d\d(?::?\d\d){0,2})$"
ZONE_NAME = r"^ ([A-Za-z][A-Za-z0-9_/+-]*)$"


def iso_expr(text: str, zones: str) -> str:
    """ISO 8601 text as a UTC instant, each row on its own. DuckDB's text -> TIMESTAMPTZ
    cast keeps the last zone name it read for later rows of the query that have none
    (after `10:00 Asia/Tokyo`, `10:00` read as Tokyo time), so it only gets rows with an
    offset: zone-less text is read as TIMESTAMP (which takes only `Z` and `UTC` besides;
    it would drop an offset, hence the test for `+` and a `-` after the time), a named
    zone goes through timezone(zone, local time). DuckDB also reads words ('epoch' is
    1970-01-01, 'infinity'): a date starts with a digit. ``zones``: the zone names DuckDB
    knows, lower case, as an SQL list literal."""
    local = f"TRY_CAST({text} AS TIMESTAMP)"
    zone_less = f"NOT ({text} LIKE '%:%-%' OR contains({text}, '+')) AND {local} IS NOT NULL"
    tail = f"regexp_extract({text}, '{AFTER_TIME}', 1)"
    zone = f"regexp_extract({tail}, '{ZONE_NAME}', 1)"
    known = f"list_contains({zones}, lower({zone}))"
    # timezone() fails the whole query on a name it does not know: only known ones reach it.
    named = (f"timezone(CASE WHEN {known} THEN {zone} ELSE 'UTC' END, "
             f"TRY_CAST(left({text}, length({text}) - length({tail})) AS TIMESTAMP))")
    return (f"CASE WHEN ord({text}) NOT BETWEEN 48 AND 57 THEN NULL "
            f"WHEN {zone_less} THEN make_timestamptz(epoch_us({local})) "
            f"WHEN NOT contains({text}, ':') THEN NULL "
            f"WHEN regexp_matches({tail}, '{_OFFSET}') THEN TRY_CAST({text} AS TIMESTAMPTZ) "
            f"WHEN {known} THEN {named} END")
