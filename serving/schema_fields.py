"""The fields of request bodies, checked and cleaned as the file loader checks and stores
them (``features.schema``'s bounds, ``features.normalize``'s spellings), so an event sent to
the API is stored as the same row a file would give."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from features.normalize import normal_action, normal_channel, normal_event_type
from features.schema import (
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_PROPERTIES_CHARS,
    MAX_TS,
    MAX_VALUE,
    MIN_TS,
)

Id = Field(min_length=1, max_length=MAX_ID_CHARS)
ID_TRIMMED = " \t\n\r"  # what the loader's clean_text trims


def _clean_id(text: str) -> str:
    """An id as the file loader reads it: surrounding spaces, tabs and line breaks trimmed
    (" C1 " is customer C1, not another one), blank refused, NUL refused (C strings end there)."""
    out = text.strip(ID_TRIMMED)
    if not out:
        raise ValueError("must not be blank")
    if "\x00" in out:
        raise ValueError("must not contain a NUL character")
    return out


CleanId = Annotated[str, Id, AfterValidator(_clean_id)]


def _text(value: object) -> object:
    """ISO 8601 text only (or a datetime, from Python): pydantic also reads a number, or a
    string of digits, as Unix seconds or milliseconds by its size (803 became
    1970-01-01T00:13:23Z), which the schema does not offer and a sender never means."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    raise ValueError("expected a date-time as ISO 8601 text with a time zone")


def _utc(when: datetime) -> datetime:
    try:
        return when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00: before year 1 in UTC
        raise ValueError("outside the years 1 to 9999 once converted to UTC") from None


# A request time, converted to UTC as it is read: a time that has no UTC equivalent is a bad
# field (422), not an overflow in the scoring clock or the store later (500).
UtcTime = Annotated[AwareDatetime, BeforeValidator(_text), AfterValidator(_utc)]
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _as_of_text(value: object) -> object:
    """A date alone is its midnight UTC, as every `journey` command reads one; a time without
    a zone is refused saying how to write it (the service cannot guess the sender's zone)."""
    if isinstance(value, str) and DATE_ONLY.fullmatch(value.strip()):
        return f"{value.strip()}T00:00:00Z"
    if isinstance(value, str):
        try:
            naive = datetime.fromisoformat(value).tzinfo is None
        except ValueError:
            naive = False
        if naive:
            raise ValueError(f"{value!r} has no time zone: add one (e.g. {value}Z for UTC), or "
                             "give a date alone (midnight UTC)")
    return value


# An `as_of`: a UtcTime, or a date (its midnight UTC).
AsOfTime = Annotated[UtcTime, BeforeValidator(_as_of_text)]
_FIRST, _END = (datetime.fromisoformat(d).replace(tzinfo=UTC) for d in (MIN_TS, MAX_TS))


def _storable(when: datetime) -> datetime:
    """The file loader's range (features/normalize.py): an event dated year 1 would pass as
    a valid time, then turn every gap and rate of its customer's features into nonsense."""
    if not _FIRST <= when < _END:
        raise ValueError(f"outside the years {MIN_TS[:4]}-{MAX_TS[:4]} the store accepts")
    return when


EventTime = Annotated[UtcTime, AfterValidator(_storable)]


def _not_bool(v: Any) -> Any:
    """JSON true is not a number: pydantic would read it as 1.0 revenue."""
    if isinstance(v, bool):
        raise ValueError("must be a number, not true or false")
    return v


def _event_value(v: float | None) -> float | None:
    if v is None:
        return v
    if not math.isfinite(v):
        raise ValueError("value must be a finite number")
    if not 0 <= v <= MAX_VALUE:
        raise ValueError(f"value must be between 0 and {MAX_VALUE:,.0f}")
    return v


def _event_properties(props: dict[str, Any] | None) -> dict[str, Any] | None:
    if props is not None:
        try:  # NaN and Infinity parse from a request body but are not JSON: never stored
            size = len(json.dumps(props, separators=(",", ":"), allow_nan=False))
        except ValueError:
            raise ValueError("properties hold a number that is not finite (NaN or Infinity), "
                             "which JSON cannot carry; send null or leave the key out") from None
        if size > MAX_PROPERTIES_CHARS:
            raise ValueError(f"properties take {size:,} characters as JSON; the limit is "
                             f"{MAX_PROPERTIES_CHARS:,}")
    return props


def _spelled(normal: Callable[[str], str]) -> Callable[[str], str]:
    def check(text: str) -> str:
        out = normal(text)
        if not out:
            raise ValueError("must not be blank")
        return out
    return check


# Spelled as the file loader spells them: "Add to Cart" is add_to_cart, "Email" is email.
EventType = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS,
                                 examples=["page_view", "add_to_cart", "purchase"]),
                      AfterValidator(_spelled(normal_event_type))]
Channel = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS),
                    AfterValidator(_spelled(normal_channel))]
Value = Annotated[float | None, BeforeValidator(_not_bool), AfterValidator(_event_value)]


def _clean_action(value: object) -> object:
    """As the file loader stores an action (features.normalize.normal_action): trimmed, and
    blank is none. Before the length check, which the loader makes on the trimmed text."""
    return normal_action(value) if isinstance(value, str) else value


Action = Annotated[Annotated[str, Field(max_length=MAX_LABEL_CHARS)] | None,
                   BeforeValidator(_clean_action)]
Properties = Annotated[dict[str, Any] | None, AfterValidator(_event_properties)]
