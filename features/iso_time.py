"""ISO 8601 text to a UTC instant in DuckDB SQL, each row read on its own (the loaders'
``ts_format: ISO8601``).

What a file's ISO 8601 timestamp may be, exactly:

- a date, ``YYYY-MM-DD``, alone (its midnight UTC) or followed by ``T``, ``t`` or a space and
  a time ``hh:mm``, ``hh:mm:ss`` or ``hh:mm:ss`` with a fraction after ``.`` or ``,``
  (``10:00:00,5``; digits past microseconds are dropped). ``24:00`` / ``24:00:00`` is the
  end of the day, ISO 8601's spelling of the next day's midnight;
- then nothing (UTC), or an offset: ``Z`` / ``z``, ``±hh:mm``, ``±hhmm`` or ``±hh``, at
  most ±14:00 (minutes 00-59; the offsets time zones have, and the API's limit), or a space
  and a zone name (``Asia/Tokyo``, ``UTC``; ``features.zone_names`` says which: never an
  abbreviation such as ``BST``), never both;
- DuckDB reads the date and time leniently, and the loader lets it: one-digit months, days
  and time fields (``2024-1-5 9:5:0``), ``/`` between date fields, repeated spaces, an
  empty fraction (``10:00:00.Z``).

Refused: an offset with seconds (``+05:30:15``), one past ±14:00 (``+15:00``), a time
without minutes (``T10Z``), a zone name that is an abbreviation or alias (``BST``,
``Japan``), a time that does not exist (``25:00``, ``10:60``, a 30 February) and text that
is not a date.
"""

from __future__ import annotations

# ISO text: what follows the time (HH:MM[:SS[.f]]), an offset, and a zone name after a space.
AFTER_TIME = r"^[^:]*\d:\d\d(?::\d\d(?:[.,]\d*)?)?(.*)$"
# ±hh[[:]mm] up to ±14:00: no zone is further from UTC (Kiribati +14:00, Baker Island
# -12:00), so +15:00 is a typing error (minutes as hours), not a time; the API's limit too
# (serving/schema_fields.py MAX_OFFSET).
_NUMERIC_OFFSET = r"[+-](?:(?:0\d|1[0-3])(?::?[0-5]\d)?|14(?::?00)?)"
OFFSET = rf"^(?:[Zz]|{_NUMERIC_OFFSET})$"
# What is written like an offset, in or out of range, with or without seconds: past what
# OFFSET takes, such a row is rejected naming the offset as its fault, not as "unparseable".
OFFSET_LIKE = r"^[+-]\d\d(?::?\d\d){0,2}$"
ZONE_NAME = r"^ ([A-Za-z][A-Za-z0-9_/+-]*)$"
# Text DuckDB's TIMESTAMPTZ cast reads right as it is: seconds, a point before a fraction, `Z`
# or an offset OFFSET takes, straight after them. Python's isoformat() writes this.
CAST_READY = rf":\d\d:\d\d(?:\.\d*)?(?:Z|{_NUMERIC_OFFSET})$"
_TIME_THEN_OFFSET = r":\d\d(?:[.,]\d*)? ?([+-]\d[\d:]*)$"  # the offset ending a time
_EPOCH_2000 = 946_684_800_000_000  # 2000-01-01 UTC in microseconds
BAD_OFFSET = ("timestamp offset out of range or with seconds: write ±hh:mm, at most ±14:00 "
              "(no time zone is further from UTC)")


def tail_of(text: str) -> str:
    """SQL: what follows the time in ISO text (an offset, a zone name), '' when nothing."""
    return f"regexp_extract({text}, '{AFTER_TIME}', 1)"


def local_part(text: str, tail: str) -> str:
    """SQL: the date and time before ``tail`` as a TIMESTAMP, spelt as DuckDB reads one
    (``t`` -> ``T``, a decimal comma -> a point)."""
    return (f"TRY_CAST(replace(upper(left({text}, length({text}) - length({tail}))), ',', '.')"
            " AS TIMESTAMP)")


def offset_micros(tail: str) -> str:
    """SQL: the offset of a tail OFFSET matched, in microseconds east of UTC: DuckDB reads
    such an offset right, so it reads it after a fixed time (one mention of the tail, whose
    regular expression DuckDB computes again for every mention inside a CASE)."""
    return (f"({_EPOCH_2000} - epoch_us(TRY_CAST('2000-01-01 00:00:00' || upper({tail}) "
            "AS TIMESTAMPTZ)))")


def bad_offset(text: str) -> str:
    """SQL: text whose time ends in what is written as an offset (after a space or not: ISO
    text, or a strptime pattern ending in %z) but not one OFFSET takes."""
    last = f"regexp_extract({text}, '{_TIME_THEN_OFFSET}', 1)"
    return (f"(regexp_matches({last}, '{OFFSET_LIKE}') "
            f"AND NOT regexp_matches({last}, '{OFFSET}'))")


def iso_expr(text: str, zones: str) -> str:
    """ISO 8601 text (the module's docstring says which) as a UTC instant, each row on its
    own; NULL when it is not such text. ``zones``: the zone names taken, lower case, as an
    SQL list literal.

    DuckDB's text -> TIMESTAMPTZ cast keeps the last zone name it read for later rows of the
    query that have none (after `10:00 Asia/Tokyo`, `10:00` read as Tokyo time), takes any
    offset (+99:99) and none without seconds (10:00Z) or after a lower-case `t`, so it only
    gets text matching CAST_READY. The usual zone-less text (`…Z`, `… UTC` or nothing after
    the time) is read as TIMESTAMP, the one cast over every row (it would drop an offset,
    hence the test for `+` and a `-` after the time). The rest is split into its local time
    and what follows: an offset is subtracted, a named zone goes through timezone(zone,
    local time). DuckDB also reads words ('epoch' is 1970-01-01, 'infinity'): a date starts
    with a digit."""
    local = f"TRY_CAST({text} AS TIMESTAMP)"
    zone_less = f"NOT ({text} LIKE '%:%-%' OR contains({text}, '+')) AND {local} IS NOT NULL"
    tail = tail_of(text)
    head = local_part(text, tail)
    zone = f"regexp_extract({tail}, '{ZONE_NAME}', 1)"
    known = f"list_contains({zones}, lower({zone}))"
    # timezone() fails the whole query on a name it does not know: only known ones reach it.
    named = f"timezone(CASE WHEN {known} THEN {zone} ELSE 'UTC' END, {head})"
    # Split: lower-case t or z, a decimal comma, no seconds before an offset, a zone name.
    split = (f"CASE WHEN {tail} = '' THEN make_timestamptz(epoch_us({head})) "
             f"WHEN regexp_matches({tail}, '{OFFSET}') "
             f"THEN make_timestamptz(epoch_us({head}) - {offset_micros(tail)}) "
             f"WHEN {known} THEN {named} END")
    # coalesce() reads its second argument only for the rows the first left NULL.
    return (f"CASE WHEN ord({text}) NOT BETWEEN 48 AND 57 THEN NULL "
            f"WHEN {zone_less} THEN make_timestamptz(epoch_us({local})) "
            f"WHEN NOT contains({text}, ':') THEN NULL "
            f"WHEN regexp_matches({text}, '{CAST_READY}') "
            f"THEN coalesce(TRY_CAST({text} AS TIMESTAMPTZ), {split}) "
            f"ELSE {split} END")


def ends_in_good_offset(text: str) -> str:
    """SQL: text ending in an offset OFFSET takes (after a space or not): the check a
    strptime pattern ending in ``%z`` adds, as DuckDB's %z reads +99:99 and +05:30:15."""
    last = f"regexp_extract({text}, '([+-][0-9:]+|[Zz])$', 1)"
    return f"regexp_matches({last}, '{OFFSET}')"
