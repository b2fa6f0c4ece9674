"""Which time zone names a file's timestamps may carry, and what to say about the others.

DuckDB (ICU) knows ~640 names, among them Java's legacy three-letter IDs and old aliases:
``BST`` there is Bangladesh (+6), ``IST`` India, ``CST`` US Central, ``SST`` the Solomon
Islands, and ``PST`` is Los Angeles time (so in July it reads as PDT), while ``PDT`` and
``EDT`` are unknown. An abbreviation does not say which zone it means, so a row carrying one
would be stored hours off without a word. The loader takes only names that do:

- IANA ``Region/City`` names (``Europe/London``, ``America/Argentina/Buenos_Aires``), the
  old ``Region/Name`` links (``US/Eastern``) included: they name one zone. Not ``SystemV/…``,
  which are fixed offsets under a misleading name.
- ``Etc/…`` (``Etc/UTC``, ``Etc/GMT+2``: POSIX signs, +2 is two hours *behind* UTC).
- ``UTC`` and ``GMT`` (``Z`` is an offset, read with the offsets).

In any case (``europe/london``), as DuckDB reads them. Every other name DuckDB knows, and the
usual abbreviations it does not (PDT, EDT, AEST...), is refused with the zone to name instead.
"""

from __future__ import annotations

import re

import duckdb

ALWAYS = ("utc", "gmt")
REFUSED_PREFIXES = ("systemv/",)
UTC_ALIASES = ("UCT", "Universal", "Zulu", "GMT0", "GMT+0", "GMT-0", "Greenwich")
# What an abbreviation or alias most likely means, to name in the message (lower-case keys).
# Where one abbreviation is used for several zones, the message lists them.
SUGGESTIONS: dict[str, str] = {k.lower(): v for k, v in {
    "BST": "Europe/London", "IST": "Asia/Kolkata, Europe/Dublin or Asia/Jerusalem",
    "CST": "America/Chicago or Asia/Shanghai", "CDT": "America/Chicago",
    "EST": "America/New_York", "EDT": "America/New_York", "MST": "America/Denver "
    "(America/Phoenix: no summer time)", "MDT": "America/Denver",
    "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage", "HST": "Pacific/Honolulu",
    "AST": "America/Halifax or Asia/Riyadh", "ADT": "America/Halifax",
    "NST": "America/St_Johns", "NDT": "America/St_Johns", "WET": "Europe/Lisbon",
    "WEST": "Europe/Lisbon", "CET": "Europe/Paris", "CEST": "Europe/Paris",
    "MET": "Europe/Paris", "MEST": "Europe/Paris", "EET": "Europe/Athens",
    "EEST": "Europe/Athens", "MSK": "Europe/Moscow", "JST": "Asia/Tokyo", "KST": "Asia/Seoul",
    "HKT": "Asia/Hong_Kong", "SGT": "Asia/Singapore", "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney", "ACST": "Australia/Adelaide", "ACDT": "Australia/Adelaide",
    "AWST": "Australia/Perth", "NZST": "Pacific/Auckland", "NZDT": "Pacific/Auckland",
    "SAST": "Africa/Johannesburg", "WAT": "Africa/Lagos", "CAT": "Africa/Maputo",
    "EAT": "Africa/Nairobi", "PKT": "Asia/Karachi", "ICT": "Asia/Bangkok",
    "WIB": "Asia/Jakarta", "PHT": "Asia/Manila", "BRT": "America/Sao_Paulo",
    "ART": "America/Argentina/Buenos_Aires or Africa/Cairo", "SST": "Pacific/Pago_Pago",
    # Java's legacy IDs, which DuckDB knows.
    "ACT": "Australia/Darwin", "AET": "Australia/Sydney",
    "AGT": "America/Argentina/Buenos_Aires", "BET": "America/Sao_Paulo",
    "CNT": "America/St_Johns", "CTT": "Asia/Shanghai", "ECT": "Europe/Paris or "
    "America/Guayaquil", "IET": "America/Indiana/Indianapolis", "MIT": "Pacific/Apia",
    "NET": "Asia/Yerevan", "PLT": "Asia/Karachi", "PNT": "America/Phoenix",
    "PRT": "America/Puerto_Rico", "VST": "Asia/Ho_Chi_Minh",
}.items()}
# Old aliases (country names, POSIX-style rules): one zone each, named the current way.
ALIASES: dict[str, str] = {k.lower(): v for k, v in {
    "Cuba": "America/Havana", "Egypt": "Africa/Cairo", "Eire": "Europe/Dublin",
    "GB": "Europe/London", "GB-Eire": "Europe/London", "Hongkong": "Asia/Hong_Kong",
    "Iceland": "Atlantic/Reykjavik", "Iran": "Asia/Tehran", "Israel": "Asia/Jerusalem",
    "Jamaica": "America/Jamaica", "Japan": "Asia/Tokyo", "Kwajalein": "Pacific/Kwajalein",
    "Libya": "Africa/Tripoli", "NZ": "Pacific/Auckland", "NZ-CHAT": "Pacific/Chatham",
    "Navajo": "America/Denver", "PRC": "Asia/Shanghai", "ROC": "Asia/Taipei",
    "ROK": "Asia/Seoul", "Poland": "Europe/Warsaw", "Portugal": "Europe/Lisbon",
    "Singapore": "Asia/Singapore", "Turkey": "Europe/Istanbul", "W-SU": "Europe/Moscow",
    "CST6CDT": "America/Chicago", "EST5EDT": "America/New_York", "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
    **dict.fromkeys(UTC_ALIASES, "UTC"),
}.items()}
REFUSED_ZONE = "time zone abbreviation or alias"  # a reject's reason (its category)
# The zone name at the end of a timestamp (after a space), as the ISO reader extracts it.
_TRAILING_NAME = re.compile(r" ([A-Za-z][A-Za-z0-9_/+-]*)$")


def accepted(name: str) -> bool:
    """Whether a zone name (one DuckDB knows) names one zone unambiguously."""
    low = name.lower()
    return low in ALWAYS or ("/" in low and not low.startswith(REFUSED_PREFIXES))


def zone_lists(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
    """(accepted, refused) zone names, lower case: the names DuckDB knows that name one zone,
    and those it knows that do not plus the abbreviations it lacks (PDT), for the message."""
    rows = con.execute("SELECT DISTINCT lower(name) FROM pg_timezone_names() "
                       "ORDER BY 1").fetchall()
    known = [name for (name,) in rows]
    good = [n for n in known if accepted(n)]
    bad = sorted({n for n in known if not accepted(n)} | SUGGESTIONS.keys() | ALIASES.keys())
    return good, bad


def refused_zone_reason(value: str | None) -> str:
    """The reject reason of a timestamp whose zone name is an abbreviation or alias."""
    hit = _TRAILING_NAME.search(value or "")
    name = hit.group(1) if hit else (value or "").strip()
    low = name.lower()
    if low in ALIASES:
        target = ALIASES[low]
        if target == "UTC":
            return f"{REFUSED_ZONE}: {name} is an alias of UTC: write UTC or Z"
        return f"{REFUSED_ZONE}: {name} is an old alias: name the zone, {target}"
    if low in SUGGESTIONS:
        return f"{REFUSED_ZONE}: {name} is ambiguous: name the zone, e.g. {SUGGESTIONS[low]}"
    return (f"{REFUSED_ZONE}: {name} does not name one zone: name it as Region/City "
            "(e.g. Europe/London), UTC, or give an offset (+01:00)")
