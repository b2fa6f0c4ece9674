"""The fields of request bodies, checked and cleaned as the file loader checks and stores
them (``features.schema``'s bounds, ``features.normalize``'s spellings), so an event sent to
the API is stored as the same row a file would give."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from features.normalize import normal_action, normal_channel, normal_event_type
from features.read_jsonl import MAX_EXACT_FLOAT
from features.schema import (
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_PROPERTIES_CHARS,
    MAX_TS,
    MAX_VALUE,
    MIN_TS,
)

ID_TRIMMED = " \t\n\r"  # what the loader's clean_text trims
_TOO_LONG = 10 ** MAX_ID_CHARS  # an integer this large has more digits than an id may have
TOO_LONG = "String should have at most {max_length} characters"


def _trimmed(value: object) -> object:
    """An id's text trimmed as the file loader trims it (" C1 " is customer C1, not another
    one), before the length is checked: the loader checks the trimmed text, so a 256-character
    id with a trailing space is one both accept. Blank is refused here, saying so (the length
    check would say "at least 1 character" of text the sender sees is not empty)."""
    if not isinstance(value, str):
        return value  # the string check refuses it
    out = value.strip(ID_TRIMMED)
    if not out:
        raise ValueError("must not be blank")
    if "\x00" in out:  # C strings end there
        raise ValueError("must not contain a NUL character")
    return out


# An id as the file loader reads it: trimmed, then at most MAX_ID_CHARS characters, not
# blank, no NUL. (Field's constraints apply to the str it wraps, after the trimming.)
CleanId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), BeforeValidator(_trimmed)]


def _id_text(value: object) -> object:
    """A JSON number as the file loader reads it in an id column (features.read_jsonl): a
    whole number is its digits (7 and 7.0 are "7", -3 is "-3"); a fraction, a float too large
    to be exact, NaN or Infinity, and true or false have no text spelling a CSV would give
    the same customer, so they are refused, naming what they are."""
    if isinstance(value, bool):
        raise ValueError("is true or false, not text or a whole number")
    if isinstance(value, int):
        if abs(value) >= _TOO_LONG:  # str() of a 4,301-digit int raises; no id is that long
            raise PydanticCustomError("string_too_long", TOO_LONG,
                                      {"max_length": MAX_ID_CHARS})
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= MAX_EXACT_FLOAT:
            return str(int(value))
        kind = ("not a finite number" if not math.isfinite(value)
                else "a number too large to be exact" if value.is_integer()
                else "a number with a fraction")
        raise ValueError(f"is {kind}, not text or a whole number")
    return _trimmed(value)


# A request body's id: a CleanId, or a whole JSON number read as its digits (the file loader
# stores {"customer_id": 7} as "7": the API must find the same customer).
BodyId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS),
                   BeforeValidator(_id_text),
                   WithJsonSchema({"anyOf": [
                       {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
                       {"type": "integer"}]})]


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


# No zone's offset is beyond it (Kiribati +14:00, Baker Island -12:00); the parser reads up
# to +23:59, so +15:00 is a mistake (minutes typed as hours), not a time to store.
MAX_OFFSET = timedelta(hours=14)


def _utc(when: datetime) -> datetime:
    offset = when.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise ValueError("has a UTC offset beyond +/-14:00, which no time zone has")
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
