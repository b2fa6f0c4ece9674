"""Checks of a mapping's values that need more than their shape: a strptime pattern must read
a year, and channel renames must leave one name per channel as the store spells it.

Both fail when the mapping is loaded, before a row is read: a pattern without a year puts
every row in 1900, and the load would reject all of them as out of range, which names the
symptom, not the mapping line that causes it. Also here: which fields ``defaults:`` may set,
and the wording of messages about a file's columns.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from features.errors import MappingError
from features.schema import MAX_LABEL_CHARS
from features.taxonomy import TRIMMED

# DuckDB's strptime directives (``%`` then an optional ``-`` then one letter; ``%%`` is a
# literal %). Those that read a year: %Y, %y (and %-y), %G (ISO year), and %c and %x, which
# DuckDB reads as "%Y-%m-%d %H:%M:%S" and "%Y-%m-%d". DuckDB has no %s (epoch seconds): the
# epoch_s / epoch_ms / epoch_us keywords read epochs, and always give a year.
DIRECTIVE = re.compile(r"%-?(.)")
YEAR_DIRECTIVES = frozenset("YyGcx")
DEFAULTABLE = ("channel",)  # the fields `defaults:` can set (a row without one gets it)


def has_year(pattern: str) -> bool:
    """Whether a strptime pattern reads a year."""
    return any(m.group(1) in YEAR_DIRECTIVES for m in DIRECTIVE.finditer(pattern))


def no_year(where: str, pattern: str) -> str:
    """The error for a pattern without a year (``where``: file, line and field)."""
    return (f"{where}: {pattern!r} has no year (%Y, %y, or %G; %c and %x include %Y): every "
            "row would be read as a date in 1900 and rejected; give a pattern with the year, "
            "or add the year to the column (a file without one cannot be placed in time)")


def normal_channel_name(text: str) -> str:
    """A channel as the loader stores it: trimmed and lower-case ("Email " is email)."""
    return text.strip(TRIMMED).lower()


def channel_renames(pairs: Mapping[str, str], at: Callable[[str], str]) -> dict[str, str]:
    """``channels:`` of a mapping: source value -> channel, both as the store spells them.

    Source values are matched as stored (trimmed, lower-case), so ``FB`` and ``fb`` are one
    value: two renames of it would leave which one wins to the order of the file, so that is
    refused. ``at(path)``: "file: line N: path" for errors."""
    out: dict[str, str] = {}
    first: dict[str, str] = {}  # stored spelling -> the key that gave it
    for key, target in pairs.items():
        where = at(f"channels.{key}")
        src, dst = normal_channel_name(key), normal_channel_name(target)
        if not src:
            raise MappingError(f"{where}: an empty source value renames nothing")
        if not dst:
            raise MappingError(f"{where}: give the channel to store {key!r} as, not empty text")
        if len(dst) > MAX_LABEL_CHARS:
            raise MappingError(f"{where}: {target[:40]!r}... is longer than {MAX_LABEL_CHARS} "
                               "characters, the longest channel the store keeps")
        if src in first:
            raise MappingError(f"{where}: renames {src!r} again ({first[src]!r} did already; "
                               "channels are matched trimmed and in any case)")
        first[src] = key
        out[src] = dst
    return out


def excluded_customers(raw: object, at: Callable[[str], str]) -> frozenset[str]:
    """``exclude_customers:`` of a mapping: customer ids whose rows a load leaves out (a
    stream's catch-all or test user), trimmed as the loader trims ids."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise MappingError(f"{at('exclude_customers')}: give a list of customer ids")
    out = []
    for i, item in enumerate(raw):
        text = item.strip(" \t\r\n") if isinstance(item, str) else ""
        if not text:
            raise MappingError(f"{at(f'exclude_customers[{i}]')}: {item!r} is not a customer "
                               "id (give the id as text)")
        out.append(text)
    return frozenset(out)


def defaults_of(value: Any, source: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise MappingError(f"{source}: defaults: expected field: value, got {value!r}")
    for key in value:
        if key not in DEFAULTABLE:
            close = difflib.get_close_matches(str(key), DEFAULTABLE, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MappingError(f"{source}: defaults.{key}: not a field defaults can set{hint}; "
                               f"they can set {list(DEFAULTABLE)}")
    return {k: str(v) for k, v in value.items()}


def delimiter_hint(available: list[str]) -> str:
    """A header read as one column often means another delimiter (a European CSV's `;`)."""
    if len(available) != 1:
        return ""
    for d in (";", "\t", "|", ","):
        if d in available[0]:
            return (f"; a header of one column holding {d!r} suggests the file is delimited by "
                    f"{d!r}: pass --delimiter {'tab' if d == chr(9) else repr(d)} (or "
                    "`delimiter:` in a mapping file)")
    return ""


def column_names(named: tuple[str, ...]) -> str:
    return repr(named[0]) if len(named) == 1 else f"none of {list(named)}"
