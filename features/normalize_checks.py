"""The checks a loaded row must pass, each declared once: condition, field, reason and the
offending value; the first that fails names why the row is rejected."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from features.iso_time import BAD_OFFSET
from features.normalize_zones import SKIPPED_LOCAL_TIME
from features.schema import (
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_PROPERTIES_CHARS,
    MAX_TS,
    MAX_VALUE,
    MIN_TS,
)
from features.spec import SCORE_NUMBER
from features.zone_names import REFUSED_ZONE, refused_zone_reason


def is_json_object(expr: str) -> str:
    """SQL: true when ``expr`` is a JSON object. json_type() raises on malformed JSON (and AND does
    not short-circuit in DuckDB), so it is only evaluated behind json_valid() in a CASE."""
    return f"(CASE WHEN json_valid({expr}) THEN json_type({expr}) = 'OBJECT' ELSE false END)"


UNKNOWN_TYPE = "event_type unknown to the taxonomy"  # a reject's reason
# A value written as text: a plain decimal number, the project's one rule for numbers in text
# (features.spec.SCORE_NUMBER: ASCII digits, no "1_000", no "٣"; the loader has trimmed the
# surrounding whitespace, as it does every text field). NaN and infinities are read so that
# they are rejected as "not finite", which says more than "not a number".
VALUE_TEXT = f"(?:{SCORE_NUMBER})|[+-]?(?i:nan|inf|infinity)"


@dataclass(frozen=True)
class Check:
    field: str
    reason: str
    condition: str  # SQL over the `n` (normalised) relation
    value: str  # SQL giving the offending value as text
    # The reason of one rejected row from its offending value, when it says more than
    # ``reason`` (which zone to name instead of BST); run in Python for rejected rows only.
    explain: Callable[[str | None], str] | None = None

    def reason_of(self, value: str | None) -> str:
        return self.reason if self.explain is None else self.explain(value)


def when_unread(condition: str) -> str:
    """SQL: ``condition``, tested only for rows whose timestamp was not read (``ts`` NULL):
    a reason for those rows that says more than "unparseable", at no cost for the others."""
    return f"(CASE WHEN ts IS NULL THEN {condition} ELSE false END)"


NOT_TEXT_ID = "{}, not text or a whole number"  # as features.read_jsonl words it for JSON


def typed_id_reason(name: str) -> Callable[[str | None], str]:
    """The reason of a row whose id came from a typed (Parquet) column as a value with no
    text spelling: true/false, a fraction, not finite, or a number too large to be exact."""
    def explain(value: str | None) -> str:
        text = (value or "").strip().lower()
        if text in ("true", "false"):
            kind = "true or false"
        elif text.startswith(("[", "{")):
            kind = "a list" if text.startswith("[") else "a struct or map"
        else:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            kind = ("not a finite number" if not math.isfinite(number)
                    else "a number too large to be exact" if number.is_integer()
                    else "a number with a fraction")
        return f"{name} is " + NOT_TEXT_ID.format(kind)
    return explain


def out_of_range(ts: str) -> str:
    return f"{ts} < TIMESTAMPTZ '{MIN_TS}' OR {ts} >= TIMESTAMPTZ '{MAX_TS}'"


def row_checks(policy: str, skipped_time: str = "false", bad_offset: str = "false",
               refused_zone: str = "false") -> list[Check]:
    """Every check of a row, in the order that names a row's first problem. ``policy``: the
    taxonomy's for unknown event types; SQL over ``ts_raw``: ``skipped_time``, true for a
    local time a daylight-saving change skipped, ``refused_zone`` for one naming a zone by
    an abbreviation (``features.normalize_zones``), ``bad_offset`` for one with an offset
    past ±14:00 or with seconds (``features.iso_time``). The `n` relation has, besides the
    fields, ``customer_id_typed`` and ``event_id_typed``: true when the id came from a typed
    column as a value with no text spelling (1.5, NaN, true)."""
    out = [
        Check("customer_id", "missing customer_id", "customer_id IS NULL", "NULL"),
        Check("customer_id", "customer_id is not text or a whole number",
              "customer_id_typed", "customer_id", typed_id_reason("customer_id")),
        Check("customer_id", f"customer_id longer than {MAX_ID_CHARS} characters",
              f"length(customer_id) > {MAX_ID_CHARS}", "left(customer_id, 80)"),
        Check("event_id", "event_id is not text or a whole number",
              "event_id_typed", "event_id_raw", typed_id_reason("event_id")),
        Check("event_id", f"event_id longer than {MAX_ID_CHARS} characters",
              f"length(event_id_raw) > {MAX_ID_CHARS}", "left(event_id_raw, 80)"),
        Check("ts", "missing timestamp", "ts_raw IS NULL", "NULL"),
        Check("ts", BAD_OFFSET, when_unread(bad_offset), "left(ts_raw, 80)"),
        Check("ts", REFUSED_ZONE, when_unread(refused_zone), "ts_raw", refused_zone_reason),
        Check("ts", "unparseable timestamp", "ts IS NULL", "left(ts_raw, 80)"),
        Check("ts", SKIPPED_LOCAL_TIME, skipped_time, "left(ts_raw, 80)"),
        Check("ts", f"timestamp outside {MIN_TS[:4]}-{MAX_TS[:4]}", out_of_range("ts"),
              "ts_raw"),
        Check("event_type", "missing event_type", "event_type IS NULL", "NULL"),
        Check("event_type", f"event_type longer than {MAX_LABEL_CHARS} characters",
              f"length(event_type) > {MAX_LABEL_CHARS}", "left(event_type, 80)"),
    ]
    if policy == "reject":
        out.append(Check("event_type", UNKNOWN_TYPE, "NOT known_type", "event_type_raw"))
    out += [
        # Read by DuckDB ("1_000" is 1000) but not the project's rule for a number in text.
        Check("value", "value is not a plain decimal number: ASCII digits, a point and an "
              "exponent only (no _)",
              "value_raw IS NOT NULL AND value IS NULL AND TRY_CAST(value_raw AS DOUBLE) "
              "IS NOT NULL", "left(value_raw, 80)"),
        Check("value", "value is not a number", "value_raw IS NOT NULL AND value IS NULL",
              "left(value_raw, 80)"),
        Check("value", "value is not finite", "NOT isfinite(value)", "value_raw"),
        Check("value", "negative value", "value < 0", "value_raw"),
        Check("value", f"value above {MAX_VALUE:,.0f}", f"value > {MAX_VALUE!r}", "value_raw"),
        Check("channel", f"channel longer than {MAX_LABEL_CHARS} characters",
              f"length(channel) > {MAX_LABEL_CHARS}", "left(channel, 80)"),
        Check("action", f"action longer than {MAX_LABEL_CHARS} characters",
              f"length(action) > {MAX_LABEL_CHARS}", "left(action, 80)"),
        Check("properties", f"properties longer than {MAX_PROPERTIES_CHARS} characters",
              f"length(properties) > {MAX_PROPERTIES_CHARS}", "left(properties, 80)"),
        Check("properties", "properties is not a JSON object",
              f"properties IS NOT NULL AND NOT {is_json_object('properties')}",
              "left(properties, 80)"),
    ]
    return out


def check_code(checks: list[Check]) -> str:
    """The number of the first failing check (NULL when the row is valid)."""
    whens = " ".join(f"WHEN {c.condition} THEN {i}" for i, c in enumerate(checks))
    return f"CASE {whens} END"


def offending_value(checks: list[Check]) -> str:
    whens = " ".join(f"WHEN {i} THEN CAST({c.value} AS VARCHAR)" for i, c in enumerate(checks))
    return f"CASE check_no {whens} END"
